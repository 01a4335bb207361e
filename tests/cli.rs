//! The `xeroguard` command as a shell user meets it: every conformance case from stdin, files saved by curl, redirect
//! chains, `--pretty`, the exit-code mode for every method and Idempotency-Key, `--version`, help for every command,
//! clear failures (empty input too), closed pipes and full disks, and a demo of both jobs that fits 100 columns.
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::io::Write;
use std::process::{Command, Stdio};

fn xeroguard(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xeroguard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running xeroguard");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("JSON on stdout ({e}): {stdout}"))
}

const MINUTE_429: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 17\r\nX-Rate-Limit-Problem: minute\r\n\r\n";

#[test]
fn classify_stdin_reproduces_every_conformance_case() {
    common::assert_conformance("xeroguard classify (stdin)", |case| {
        let (code, stdout, stderr) = xeroguard(&["classify"], &case.raw());
        assert_eq!(code, 0, "{}: {stderr}", case.name);
        json(&stdout)
    });
}

#[test]
fn a_dash_also_means_stdin() {
    let (code, stdout, _) = xeroguard(&["classify", "-"], MINUTE_429);
    assert_eq!(code, 0);
    assert_eq!(json(&stdout)["recommended_wait_ms"], 17000);
}

#[test]
fn classify_reads_fixture_files_saved_by_curl() {
    let path = common::shared_dir().join("fixtures/xero/401_authentication_unsuccessful_headers.txt");
    let (code, stdout, _) = xeroguard(&["classify", path.to_str().unwrap()], b"");
    assert_eq!(code, 0);
    let json = json(&stdout);
    assert_eq!(json["auth_problem"], "invalid_token");
    assert_eq!(json["correlation_id"], "e3ec736b-3932-4630-a701-89098e09d5c9");
}

#[test]
fn a_redirect_chain_from_curl_follow_is_classified_by_its_last_response() {
    let chain = [
        &b"HTTP/1.1 302 Found\r\nLocation: https://api.xero.com/api.xro/2.0/Invoices\r\nContent-Length: 0\r\n\r\n"[..],
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: /api.xro/2.0/Invoices/\r\n\r\n",
        MINUTE_429,
    ]
    .concat();
    let (code, stdout, stderr) = xeroguard(&["classify"], &chain);
    assert_eq!(code, 0, "{stderr}");
    let json = json(&stdout);
    assert_eq!((json["status"].as_u64(), json["category"].as_str()), (Some(429), Some("rate_limited")));
}

#[test]
fn pretty_prints_the_same_json_indented() {
    let (_, compact, _) = xeroguard(&["classify"], MINUTE_429);
    let (code, pretty, _) = xeroguard(&["classify", "--pretty"], MINUTE_429);
    assert_eq!(code, 0);
    assert_eq!(json(&pretty), json(&compact));
    assert_eq!(compact.lines().count(), 1);
    assert!(pretty.lines().count() > 20 && pretty.contains("\n  \"category\": \"rate_limited\""), "{pretty}");
}

/// The documented codes of `--exit-code` (README, `--help`).
fn documented_exit_code(action: &str) -> i32 {
    match action {
        "none" => 0,
        "retry" => 10,
        "fix_request" => 11,
        "refresh_token" => 12,
        "reauthorize" => 13,
        other => panic!("an action the exit codes do not cover: {other}"),
    }
}

/// "Check before resending": a write without an Idempotency-Key that the server may have carried out.
const CHECK_BEFORE_RESENDING: i32 = 14;

/// xero-reference §8 as the README states it for the exit codes: a retryable outcome that may have been processed
/// is 14, never 10, for a write (POST, PUT, PATCH, a method the library does not know, or none given) without an
/// Idempotency-Key; every other request gets its action's code.
#[test]
fn exit_code_mode_answers_per_method_and_key_for_every_conformance_case() {
    let requests: [(&[&str], bool); 7] = [
        (&[], true),
        (&["--method", "POST"], true),
        (&["--method", "put", "--no-idempotency-key"], true),
        (&["--method", "PROPFIND"], true),
        (&["--method", "GET"], false),
        (&["--method", "DELETE"], false),
        (&["--method", "PATCH", "--idempotency-key"], false),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for case in common::load_cases() {
        for (options, unsafe_without_key) in requests {
            let args = [&["classify", "--exit-code"][..], options].concat();
            let (code, stdout, stderr) = xeroguard(&args, &case.raw());
            let json = json(&stdout);
            let action = json["action"].as_str().expect("an action");
            let maybe_done = json["retryable"] == true && json["may_have_been_processed"] == true;
            let expected =
                if unsafe_without_key && maybe_done { CHECK_BEFORE_RESENDING } else { documented_exit_code(action) };
            assert_eq!(code, expected, "{} {options:?}: {action} {stderr}", case.name);
            seen.insert(code);
        }
    }
    assert_eq!(seen, [0, 10, 11, 12, 13, 14].into(), "the cases cover every code");
    // Without the mode a classified response is a success, whatever it says.
    assert_eq!(xeroguard(&["classify"], MINUTE_429).0, 0);
}

#[test]
fn a_write_after_a_500_is_never_resent_without_a_key() {
    let server_errors: [&[u8]; 3] = [
        b"HTTP/1.1 500 Internal Server Error\r\n\r\nAn unhandled error with the Xero API occurred.",
        b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
        b"HTTP/1.1 504 Gateway Timeout\r\n\r\n",
    ];
    for raw in server_errors {
        let code = |options: &[&str]| xeroguard(&[&["classify", "--exit-code"][..], options].concat(), raw).0;
        for write in
            [&[][..], &["--method", "POST"], &["--method", "post", "--idempotency-key", "--no-idempotency-key"]]
        {
            assert_eq!(code(write), CHECK_BEFORE_RESENDING, "{write:?}");
        }
        assert_eq!(code(&["--method", "POST", "--idempotency-key"]), 10, "with a key the write may go again");
        assert_eq!(code(&["--method", "GET"]), 10, "a read may always go again");
    }
    // What the server certainly did not carry out is resent whatever the method.
    assert_eq!(xeroguard(&["classify", "--exit-code", "--method", "POST"], MINUTE_429).0, 10);
}

#[test]
fn the_json_says_whether_the_request_may_have_been_processed_beside_the_section_5_keys() {
    let cases: [(&[u8], bool); 3] = [
        (b"HTTP/1.1 500 Internal Server Error\r\n\r\n", true),
        (MINUTE_429, false),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n{\"ErrorNumber\":10,\"Type\":\"ValidationException\"}", true),
    ];
    for (raw, processed) in cases {
        let (code, stdout, _) = xeroguard(&["classify"], raw);
        assert_eq!(code, 0);
        let mut json = json(&stdout);
        let object = json.as_object_mut().expect("an object");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let after_retryable = keys.iter().position(|key| *key == "retryable").map(|i| keys[i + 1]);
        assert_eq!(after_retryable, Some("may_have_been_processed"), "{keys:?}");
        assert_eq!(object.shift_remove("may_have_been_processed"), Some(processed.into()), "{stdout}");
        // Every other key is the library's §5 JSON, unchanged and in order.
        let library = xeroguard::classify_raw(raw, std::time::SystemTime::now()).unwrap().to_json();
        assert_eq!(serde_json::to_string(&json).unwrap(), serde_json::to_string(&library).unwrap());
    }
}

#[test]
fn version_is_the_crates() {
    for flag in ["--version", "-V"] {
        let (code, stdout, _) = xeroguard(&[flag], b"");
        assert_eq!((code, stdout.as_str()), (0, format!("xeroguard {}\n", env!("CARGO_PKG_VERSION")).as_str()));
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let (code, stdout, _) = xeroguard(&["--help"], b"");
    assert_eq!(code, 0);
    for text in [
        "--pretty",
        "--exit-code",
        "0 none, 10 retry, 11 fix_request, 12 refresh_token, 13 reauthorize,",
        "14 check before resending",
        "--method METHOD",
        "--idempotency-key",
        "--no-idempotency-key  it carried none (the default)",
        "xeroguard demo",
        "xeroguard snapshot --redis URL",
    ] {
        assert!(stdout.contains(text), "help lacks {text}:\n{stdout}");
    }
    assert!(stdout.lines().all(|line| line.chars().count() <= 100), "{stdout}");
}

#[test]
fn every_command_has_its_own_help() {
    for command in ["classify", "demo", "snapshot", "top"] {
        for args in [[command, "--help"], [command, "-h"], ["help", command]] {
            let (code, stdout, stderr) = xeroguard(&args, b"");
            assert_eq!((code, stderr.as_str()), (0, ""), "{args:?}");
            assert!(stdout.starts_with(&format!("usage: xeroguard {command}")), "{args:?}: {stdout}");
            assert_eq!(stdout.matches("usage:").count(), 1, "that command's usage only: {stdout}");
            assert!(stdout.contains("exit status: 0 done"), "{args:?}: {stdout}");
            assert!(stdout.lines().all(|line| line.chars().count() <= 100), "{stdout}");
        }
    }
    let (_, classify, _) = xeroguard(&["classify", "--help"], b"");
    assert!(classify.contains("14 check before resending") && classify.contains("--method METHOD"), "{classify}");
    // Help wins over the other arguments, even ones that would be wrong.
    assert_eq!(xeroguard(&["classify", "--bogus", "--help"], b"").0, 0);
    assert_eq!(xeroguard(&["snapshot", "--help"], b"").0, 0, "no --redis needed to ask");
}

#[test]
fn empty_input_says_so() {
    for (stdin, says) in [(&b""[..], "standard input is empty"), (b" \r\n\n", "standard input holds only white space")]
    {
        let (code, stdout, stderr) = xeroguard(&["classify", "--exit-code"], stdin);
        assert_eq!(code, 1, "{stderr}");
        assert!(stdout.is_empty() && stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("not a raw HTTP response"), "{stderr}");
    }
    let file = std::env::temp_dir().join(format!("xeroguard-empty-{}.txt", std::process::id()));
    std::fs::write(&file, b"").unwrap();
    let (code, _, stderr) = xeroguard(&["classify", file.to_str().unwrap()], b"");
    std::fs::remove_file(&file).unwrap();
    assert!(code == 1 && stderr.contains(&format!("{} is empty", file.display())), "{code} {stderr}");
}

#[test]
fn unreadable_input_and_bad_usage_fail_with_a_message() {
    let (code, stdout, stderr) = xeroguard(&["classify", "/nonexistent/response.txt"], b"");
    assert_eq!(code, 1);
    assert!(stdout.is_empty() && stderr.contains("cannot read /nonexistent/response.txt"), "{stderr}");
    let (code, _, stderr) = xeroguard(&["classify"], b"{\"not\": \"http\"}");
    assert_eq!(code, 1);
    assert!(stderr.contains("standard input") && stderr.contains("status line"), "{stderr}");
    let bad: [&[&str]; 10] = [
        &["bogus"],
        &[],
        &["classify", "--bogus"],
        &["classify", "a", "b"],
        &["classify", "--method"],
        &["classify", "--method", "--pretty"],
        &["classify", "--method", "GET POST"],
        &["demo", "extra"],
        &["help", "bogus"],
        &["bogus", "--help"],
    ];
    for args in bad {
        let (code, stdout, stderr) = xeroguard(args, b"");
        assert_eq!(code, 2, "{args:?}");
        assert!(stdout.is_empty() && stderr.contains("usage: xeroguard classify"), "{args:?}: {stderr}");
        assert!(stderr.contains("xeroguard demo\n") && stderr.contains("xeroguard snapshot"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [&["classify", "--pretty"][..], &["demo"]] {
        let reads_stdin = args[0] == "classify";
        let mut child = Command::new(env!("CARGO_BIN_EXE_xeroguard"))
            .args(args)
            .stdin(if reads_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running xeroguard");
        // The reader goes away early; classify writes only after reading all of stdin, so surely after that.
        drop(child.stdout.take());
        if reads_stdin {
            child.stdin.take().unwrap().write_all(MINUTE_429).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_write_error_is_reported_not_a_panic() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full (Linux)");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xeroguard"))
        .args(["classify"])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .expect("running xeroguard");
    child.stdin.take().unwrap().write_all(MINUTE_429).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the output") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn demo_shows_both_jobs_within_100_columns() {
    let (code, stdout, _) = xeroguard(&["demo"], b"");
    assert_eq!(code, 0);
    let too_wide: Vec<&str> = stdout.lines().filter(|line| line.chars().count() > 100).collect();
    assert!(too_wide.is_empty(), "lines over 100 columns: {too_wide:#?}");
    // The classification table: a row per kind, waits in human units.
    for row in [
        "success",
        "partial_success",
        "validation_error",
        "unauthorized/token_expired",
        "rate_limited/minute",
        "rate_limited/day",
        "organisation_offline",
        "service_unavailable",
    ] {
        assert!(stdout.contains(row), "demo lacks {row}:\n{stdout}");
    }
    let row = |label: &str| stdout.lines().find(|line| line.starts_with(label)).unwrap_or_else(|| panic!("{label}"));
    assert!(row("429 minute limit").ends_with(" 17 s"), "{}", row("429 minute limit"));
    assert!(row("503 organisation offline").ends_with(" 5 min"), "{}", row("503 organisation offline"));
    // The paced run: 60 granted in the first minute, each refusal's exact wait and reason, the 429's block.
    for text in [
        "2-59  granted, each",
        "29.5 s     60  granted",
        "30 s     61  minute limit: next call in 30.5 s",
        "34.5 s     70  minute limit: next call in 26 s",
        "60 of 70 granted in the first minute",
        "60.5 s     61  granted",
        "60.5 s     71  retry_after: the server asked to wait; next call in 17 s",
        "77.5 s     71  granted",
    ] {
        assert!(stdout.contains(text), "demo lacks {text:?}:\n{stdout}");
    }
}

#[test]
fn snapshot_shows_a_tenants_shared_state_from_redis() {
    let server = redis_support::RedisServer::start();
    let url = server.url();
    let prefix = format!("cli{}", std::process::id());
    // A worker of the app makes three calls for one tenant...
    let limits = xeroguard::Limits::default();
    let options = xeroguard::pacing::RedisOptions::new(url.as_str(), prefix.as_str());
    let worker = xeroguard::Limiter::new_redis(limits, options, xeroguard::Clock::Monotonic).unwrap();
    for _ in 0..3 {
        worker.record("tenant-1", worker.now()).unwrap();
    }
    // ...and the operator sees them from another process.
    let (code, out, err) = xeroguard(&["snapshot", "--redis", &url, "--prefix", &prefix, "--json", "tenant-1"], b"");
    assert_eq!(code, 0, "{err}");
    let snapshot = json(&out);
    assert_eq!(snapshot["tenant"], "tenant-1");
    assert_eq!(snapshot["minute"]["count"], 3);
    assert_eq!(snapshot["minute"]["remaining"], 57);
    let (code, _, err) = xeroguard(&["snapshot", "--redis", "redis://127.0.0.1:1", "--prefix", "p", "t"], b"");
    assert!(code == 1 && err.contains("unavailable"), "{code} {err}");
    let (code, _, err) = xeroguard(&["snapshot", "--prefix", "p"], b"");
    assert!(code == 2 && err.contains("--redis"), "{code} {err}");
}
