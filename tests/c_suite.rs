//! Builds the C and C++ programs in tests/c/ and examples/c/ against include/xeroguard.h and the library this
//! test run built, runs them, and fails on any failed check. Flags: C99 and C++17 with warnings as errors.
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

fn work_dir(name: &str) -> PathBuf {
    let mode = if sanitize_flags().is_empty() { "c-tests" } else { "c-tests-asan" };
    let dir = library_dir().join(mode).join(name);
    std::fs::create_dir_all(&dir).expect("c-tests dir");
    dir
}

/// Compiles `sources` into an executable and returns its path; panics with the compiler's output on failure. A
/// program is compiled once per mode: the valgrind run (same flags) reuses what the plain run built, unless a source,
/// the headers or the library changed since, or the command line differs (kept beside it in a `.cmd` file).
fn compile(compiler: &str, flags: &[&str], sources: &[PathBuf], exe: &Path) {
    let lib = library_dir();
    let mut command = Command::new(compiler);
    command
        .args(flags)
        .args(sanitize_flags())
        .arg("-I")
        .arg(repo().join("include"))
        .arg("-I")
        .arg(repo().join("tests/c"))
        .args(sources)
        .arg("-o")
        .arg(exe)
        .arg(format!("-L{}", lib.display()))
        .arg("-lxeroguard")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-pthread");
    let line = format!("{command:?}");
    let stamp = exe.with_extension("cmd");
    let inputs = [repo().join("include/xeroguard.h"), repo().join("tests/c/check.h"), lib.join("libxeroguard.so")];
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

fn c_program(name: &str, source: &str, args: &[&str]) -> String {
    let dir = work_dir(name);
    let exe = dir.join(name);
    compile("cc", C_FLAGS, &[repo().join(source)], &exe);
    run(&exe, args)
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
fn run_c_conformance(program: &str, cases: &[common::Case]) {
    let path = work_dir(program).join("cases.txt");
    write_flat_cases(&path, cases);
    let count = cases.len().to_string();
    let out = c_program(program, "tests/c/conformance.c", &[path.to_str().unwrap(), &count]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn c_conformance_cases() {
    run_c_conformance("conformance", &common::load_cases());
}

#[test]
fn c_project_conformance_cases() {
    run_c_conformance("conformance_project", &common::load_project_cases());
}

#[test]
fn c_bad_input_never_crashes() {
    let out = c_program("bad_input", "tests/c/bad_input.c", &[]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn c_threads_classify_and_pace_concurrently() {
    let out = c_program("threads", "tests/c/threads.c", &[]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn c_pacing_functions() {
    let out = c_program("pacing", "tests/c/pacing.c", &[]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn c_resend_follows_the_safe_retry_rules() {
    let out = c_program("resend", "tests/c/resend.c", &[]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn c_shared_limiter_on_redis() {
    let server = redis_support::RedisServer::start();
    let out = c_program("redis", "tests/c/redis.c", &[&server.url()]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn cpp_program_links_and_runs() {
    let dir = work_dir("cpp");
    let exe = dir.join("cpp_smoke");
    compile("g++", CXX_FLAGS, &[repo().join("tests/c/cpp_smoke.cpp")], &exe);
    let out = run(&exe, &[]);
    assert!(out.contains("rate_limited"), "{out}");
}

#[test]
fn readme_c_examples_run() {
    let out = c_program("example_classify", "examples/c/classify.c", &[]);
    assert!(out.contains("rate_limited") && out.contains("17000"), "{out}");
    let out = c_program("example_pacing", "examples/c/pacing.c", &[]);
    assert!(out.contains("granted 60 of 70"), "{out}");
}
