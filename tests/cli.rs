//! The `xeroguard` command: it reproduces every conformance case from the raw response on stdin, fails clearly on
//! unreadable input, and its demo covers the decision table.
mod common;

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

#[test]
fn classify_stdin_reproduces_every_conformance_case() {
    common::assert_conformance("xeroguard classify -", |case| {
        let (code, stdout, stderr) = xeroguard(&["classify", "-"], &case.raw());
        assert_eq!(code, 0, "{}: {stderr}", case.name);
        serde_json::from_str(&stdout).expect("JSON on stdout")
    });
}

#[test]
fn classify_reads_fixture_files_saved_by_curl() {
    let path = common::shared_dir().join("fixtures/xero/401_authentication_unsuccessful_headers.txt");
    let (code, stdout, _) = xeroguard(&["classify", path.to_str().unwrap()], b"");
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["auth_problem"], "invalid_token");
    assert_eq!(json["correlation_id"], "e3ec736b-3932-4630-a701-89098e09d5c9");
}

#[test]
fn unreadable_input_fails_with_a_message() {
    let (code, stdout, stderr) = xeroguard(&["classify", "/nonexistent/response.txt"], b"");
    assert_ne!(code, 0);
    assert!(stdout.is_empty() && stderr.contains("cannot read"), "{stderr}");
    let (code, _, stderr) = xeroguard(&["classify", "-"], b"{\"not\": \"http\"}");
    assert_ne!(code, 0);
    assert!(stderr.contains("status line"), "{stderr}");
    let (code, _, stderr) = xeroguard(&["bogus"], b"");
    assert_eq!(code, 2);
    assert!(stderr.contains("usage"));
}

#[test]
fn demo_prints_a_row_per_table_row() {
    let (code, stdout, _) = xeroguard(&["demo"], b"");
    assert_eq!(code, 0);
    for category in [
        "success",
        "partial_success",
        "validation_error",
        "unauthorized/token_expired",
        "rate_limited/day",
        "organisation_offline",
        "service_unavailable",
    ] {
        assert!(stdout.contains(category), "demo lacks {category}:\n{stdout}");
    }
    assert!(stdout.lines().count() >= 22);
}
