//! Shared by the integration tests: the language-neutral conformance cases of `../shared/conformance/` and the
//! project's own in `tests/conformance/` (same format).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

/// `../shared` beside the checkout (override with `XEROGUARD_SHARED`).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("XEROGUARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// The directory holding the project's own `conformance/classify-cases.json` and the `fixtures/` it names.
pub fn project_tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

pub struct Case {
    pub name: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub expect: serde_json::Map<String, Value>,
}

impl Case {
    pub fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    /// The case as a raw HTTP response, the way `curl -i` saves one.
    pub fn raw(&self) -> Vec<u8> {
        let mut raw = format!("HTTP/1.1 {} Xero\r\n", self.status).into_bytes();
        for (name, value) in &self.headers {
            raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&self.body);
        raw
    }
}

/// The shared cases (`../shared/conformance/classify-cases.json`).
pub fn load_cases() -> Vec<Case> {
    load_cases_from(&shared_dir())
}

/// The project's own cases (`tests/conformance/classify-cases.json`).
pub fn load_project_cases() -> Vec<Case> {
    load_cases_from(&project_tests_dir())
}

/// The cases of `dir/conformance/classify-cases.json`; a case's `body_file` is relative to `dir`.
pub fn load_cases_from(dir: &Path) -> Vec<Case> {
    let path = dir.join("conformance/classify-cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("conformance JSON");
    let cases = doc["cases"].as_array().expect("cases array");
    cases
        .iter()
        .map(|case| {
            let body = if let Some(file) = case["body_file"].as_str() {
                std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
            } else if let Some(b64) = case["body_base64"].as_str() {
                base64::engine::general_purpose::STANDARD.decode(b64).expect("base64 body")
            } else {
                case["body"].as_str().unwrap_or("").as_bytes().to_vec()
            };
            Case {
                name: case["name"].as_str().expect("name").to_owned(),
                status: case["status"].as_u64().expect("status") as u16,
                headers: case["headers"]
                    .as_array()
                    .expect("headers")
                    .iter()
                    .map(|pair| (pair[0].as_str().unwrap().to_owned(), pair[1].as_str().unwrap().to_owned()))
                    .collect(),
                body,
                expect: case["expect"].as_object().expect("expect").clone(),
            }
        })
        .collect()
}

/// The expectation keys whose values differ from `actual` (a §5 JSON object), as readable lines.
pub fn mismatches(case: &Case, actual: &Value) -> Vec<String> {
    case.expect
        .iter()
        .filter(|(key, want)| actual.get(key.as_str()) != Some(want))
        .map(|(key, want)| {
            format!("{}: {key}: want {want}, got {}", case.name, actual.get(key.as_str()).unwrap_or(&Value::Null))
        })
        .collect()
}

/// Runs every shared case through `classify_json` and panics listing every mismatch.
pub fn assert_conformance(label: &str, classify_json: impl FnMut(&Case) -> Value) {
    let cases = load_cases();
    assert_eq!(cases.len(), 70, "the conformance file holds 70 cases");
    assert_cases(label, &cases, classify_json);
}

/// Runs every project case through `classify_json` and panics listing every mismatch.
pub fn assert_project_conformance(label: &str, classify_json: impl FnMut(&Case) -> Value) {
    let cases = load_project_cases();
    assert!(!cases.is_empty(), "the project conformance file holds no cases");
    assert_cases(label, &cases, classify_json);
}

fn assert_cases(label: &str, cases: &[Case], mut classify_json: impl FnMut(&Case) -> Value) {
    let failures: Vec<String> = cases.iter().flat_map(|case| mismatches(case, &classify_json(case))).collect();
    assert!(failures.is_empty(), "{label}: {} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// The calling thread's last FFI error message.
pub fn last_error() -> String {
    let mut buf = [0 as std::ffi::c_char; 1024];
    unsafe { xeroguard::ffi::xg_last_error_message(buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) };
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// The most calls of a sorted log within any window of `span` ms (calls closer together than `span`).
pub fn max_in_any_window(log: &[u64], span: u64) -> usize {
    let (mut start, mut best) = (0, 0);
    for end in 0..log.len() {
        while log[end] - log[start] >= span {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}
