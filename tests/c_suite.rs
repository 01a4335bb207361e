//! Builds the C and C++ programs in tests/c/ and examples/c/ against include/xeroguard.h and the library this
//! test run built, runs them, and fails on any failed check. Flags: C99 and C++17 with warnings as errors.
//!
//! The same programs as an older ABI's callers had them (tests/abi/N/: that release's header, C suite and examples)
//! are built against their own header and run against this library too (the `abi2_*` tests): an older caller must
//! keep working unchanged (README "Versions and compatibility").
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::path::{Path, PathBuf};
use std::process::Command;

const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-D_POSIX_C_SOURCE=200809L"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding libxeroguard.so (target/<profile>/, above deps/). `cargo test` builds the shared library
/// but leaves it in deps/ under a hashed name, so it is built here once more as a root (a no-op when it is fresh).
fn library_dir() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // With this test target, so that features resolve as for the test build (dev-dependencies included): the
        // library `cargo test` just built is reused, not relinked with other features.
        build.args(["build", "--lib", "--test", "c_suite", "--quiet"]).current_dir(repo());
        // Without what cargo set for this test process: a build script that watches one of these (ring's watches
        // CARGO_MANIFEST_DIR and OUT_DIR) would rebuild here, and the next `cargo test` would rebuild it back.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_crate = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
            ];
            if per_crate.iter().any(|prefix| name.starts_with(prefix))
                || ["CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"].contains(&&*name)
            {
                build.env_remove(&*name);
            }
        }
        if dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build --lib");
        assert!(status.success(), "cargo build --lib failed");
        // Programs linked against it load it by its SONAME (set by build.rs): the link `make` makes.
        if let Some(soname) = option_env!("XEROGUARD_SONAME") {
            let link = dir.join(soname);
            if link.symlink_metadata().is_err() {
                std::os::unix::fs::symlink("libxeroguard.so", &link).expect("the SONAME link beside libxeroguard.so");
            }
        }
    });
    assert!(dir.join("libxeroguard.so").exists(), "{} has no libxeroguard.so", dir.display());
    dir
}

/// `XEROGUARD_C_SANITIZE=1` builds the C/C++ programs with AddressSanitizer + UndefinedBehaviorSanitizer (any
/// report aborts the program, leaks included); scripts/test.sh runs the suite once this way.
fn sanitize_flags() -> &'static [&'static str] {
    match std::env::var("XEROGUARD_C_SANITIZE").as_deref() {
        Ok("1") => &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"],
        _ => &[],
    }
}

/// Where one set of C programs and the header they were written against live.
struct Suite {
    /// Distinguishes its build directories: "" for this checkout's, "abi2" for ABI 2's.
    name: &'static str,
    include: &'static str,
    c: &'static str,
    examples: &'static str,
}

/// This checkout's programs and header.
const CURRENT: Suite = Suite { name: "", include: "include", c: "tests/c", examples: "examples/c" };
/// ABI 2's callers, as they were (tests/abi/README.md).
const ABI2: Suite =
    Suite { name: "abi2", include: "tests/abi/2", c: "tests/abi/2/c", examples: "tests/abi/2/examples" };

impl Suite {
    fn source(&self, dir: &str, file: &str) -> PathBuf {
        repo().join(dir).join(file)
    }

    fn test_program(&self, file: &str) -> PathBuf {
        self.source(self.c, file)
    }

    fn example(&self, file: &str) -> PathBuf {
        self.source(self.examples, file)
    }

    fn work_dir(&self, name: &str) -> PathBuf {
        let mode = if sanitize_flags().is_empty() { "c-tests" } else { "c-tests-asan" };
        let dir = library_dir().join(mode).join(self.name).join(name);
        std::fs::create_dir_all(&dir).expect("c-tests dir");
        dir
    }

    /// Compiles `sources` (one program) as `name` in its own directory and runs it with `args`; returns its output.
    fn run_program(&self, name: &str, sources: &[PathBuf], args: &[&str]) -> String {
        let exe = self.work_dir(name).join(name);
        let cpp = sources.iter().any(|s| s.extension().is_some_and(|e| e == "cpp"));
        let (compiler, flags) = if cpp { ("g++", CXX_FLAGS) } else { ("cc", C_FLAGS) };
        compile(compiler, flags, self, sources, &exe);
        run(&exe, args)
    }
}

/// Compiles `sources` into an executable and returns its path; panics with the compiler's output on failure. A
/// program is compiled once per mode: the valgrind run (same flags) reuses what the plain run built, unless a source,
/// the headers or the library changed since, or the command line differs (kept beside it in a `.cmd` file).
fn compile(compiler: &str, flags: &[&str], suite: &Suite, sources: &[PathBuf], exe: &Path) {
    let lib = library_dir();
    let mut command = Command::new(compiler);
    command
        .args(flags)
        .args(sanitize_flags())
        .arg("-I")
        .arg(repo().join(suite.include))
        .arg("-I")
        .arg(repo().join(suite.c))
        .args(sources)
        .arg("-o")
        .arg(exe)
        .arg(format!("-L{}", lib.display()))
        .arg("-lxeroguard")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-pthread");
    let line = format!("{command:?}");
    let stamp = exe.with_extension("cmd");
    let inputs =
        [suite.source(suite.include, "xeroguard.h"), suite.test_program("check.h"), lib.join("libxeroguard.so")];
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = std::fs::read_to_string(&stamp).is_ok_and(|previous| previous == line)
        && modified(exe)
            .is_some_and(|built| sources.iter().chain(&inputs).all(|i| modified(i).is_some_and(|m| m <= built)));
    if fresh {
        return;
    }
    let output = command.output().unwrap_or_else(|e| panic!("running {compiler}: {e} (install gcc/g++)"));
    assert!(output.status.success(), "{compiler} failed for {sources:?}:\n{}", String::from_utf8_lossy(&output.stderr));
    std::fs::write(&stamp, line).expect("writing the compile stamp");
}

/// Runs a test program and asserts it succeeded; returns its stdout. `XEROGUARD_C_WRAPPER` runs it under a tool,
/// e.g. valgrind (scripts/test.sh does this for memcheck).
fn run(exe: &Path, args: &[&str]) -> String {
    let wrapper = std::env::var("XEROGUARD_C_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    // Leaks are errors; exit code 23 tells a sanitizer report from a failed check.
    command
        .env("ASAN_OPTIONS", "detect_leaks=1:exitcode=23")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    let output = command.args(args).output().expect("running the C test");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "{} failed:\n{stdout}\n{stderr}", exe.display());
    stdout
}

/// Writes conformance cases in the flat format tests/c/conformance.c reads.
fn write_flat_cases(path: &Path, cases: &[common::Case]) {
    let mut out = Vec::new();
    for case in cases {
        out.extend_from_slice(format!("CASE {}\nSTATUS {}\n", case.name, case.status).as_bytes());
        for (name, value) in &case.headers {
            out.extend_from_slice(format!("HEADER {} {}\n{name}{value}\n", name.len(), value.len()).as_bytes());
        }
        out.extend_from_slice(format!("BODY {}\n", case.body.len()).as_bytes());
        out.extend_from_slice(&case.body);
        out.push(b'\n');
        for (key, value) in &case.expect {
            let value = value.to_string();
            out.extend_from_slice(format!("EXPECT {key} {}\n{value}\n", value.len()).as_bytes());
        }
        out.extend_from_slice(b"END\n");
    }
    std::fs::write(path, out).expect("writing the flat cases");
}

/// Builds tests/c/conformance.c as `program` (one build per test, so the tests can run at once) and runs `cases`.
fn run_c_conformance(suite: &Suite, program: &str, cases: &[common::Case]) {
    let path = suite.work_dir(program).join("cases.txt");
    write_flat_cases(&path, cases);
    let count = cases.len().to_string();
    let out = suite.run_program(program, &[suite.test_program("conformance.c")], &[path.to_str().unwrap(), &count]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

fn conformance_cases(suite: &Suite) {
    run_c_conformance(suite, "conformance", &common::load_cases());
}

fn project_conformance_cases(suite: &Suite) {
    run_c_conformance(suite, "conformance_project", &common::load_project_cases());
}

/// A program of tests/c/ whose own checks must all pass.
fn checks_pass(suite: &Suite, name: &str, args: &[&str]) {
    let out = suite.run_program(name, &[suite.test_program(&format!("{name}.c"))], args);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

fn bad_input_never_crashes(suite: &Suite) {
    checks_pass(suite, "bad_input", &[]);
}

fn threads_classify_and_pace_concurrently(suite: &Suite) {
    checks_pass(suite, "threads", &[]);
}

fn pacing_functions(suite: &Suite) {
    checks_pass(suite, "pacing", &[]);
}

/// New in this ABI (no older suite has it): the figures `xg_limiter_stats` reads after known operations.
#[test]
fn c_stats_after_known_operations() {
    checks_pass(&CURRENT, "stats", &[]);
}

fn resend_follows_the_safe_retry_rules(suite: &Suite) {
    checks_pass(suite, "resend", &[]);
}

fn shared_limiter_on_redis(suite: &Suite) {
    let server = redis_support::RedisServer::start();
    checks_pass(suite, "redis", &[&server.url()]);
}

fn cpp_links_and_runs(suite: &Suite) {
    let out = suite.run_program("cpp_smoke", &[suite.test_program("cpp_smoke.cpp")], &[]);
    assert!(out.contains("rate_limited"), "{out}");
}

fn readme_examples_run(suite: &Suite) {
    let out = suite.run_program("example_classify", &[suite.example("classify.c")], &[]);
    assert!(out.contains("rate_limited") && out.contains("17000"), "{out}");
    let out = suite.run_program("example_pacing", &[suite.example("pacing.c")], &[]);
    assert!(out.contains("granted 60 of 70"), "{out}");
}

/// Each check as a test of this checkout's programs (`c_…`) and of ABI 2's (`abi2_…`).
macro_rules! suites {
    ($($check:ident: $current:ident, $abi2:ident;)*) => {$(
        #[test]
        fn $current() {
            $check(&CURRENT);
        }

        #[test]
        fn $abi2() {
            $check(&ABI2);
        }
    )*};
}

suites! {
    conformance_cases: c_conformance_cases, abi2_c_conformance_cases;
    project_conformance_cases: c_project_conformance_cases, abi2_c_project_conformance_cases;
    bad_input_never_crashes: c_bad_input_never_crashes, abi2_c_bad_input_never_crashes;
    threads_classify_and_pace_concurrently: c_threads_classify_and_pace_concurrently,
        abi2_c_threads_classify_and_pace_concurrently;
    pacing_functions: c_pacing_functions, abi2_c_pacing_functions;
    resend_follows_the_safe_retry_rules: c_resend_follows_the_safe_retry_rules,
        abi2_c_resend_follows_the_safe_retry_rules;
    shared_limiter_on_redis: c_shared_limiter_on_redis, abi2_c_shared_limiter_on_redis;
    cpp_links_and_runs: cpp_program_links_and_runs, abi2_cpp_program_links_and_runs;
    readme_examples_run: readme_c_examples_run, abi2_readme_c_examples_run;
}
