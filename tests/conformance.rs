//! Every case of `../shared/conformance/classify-cases.json` and of the project's own
//! `tests/conformance/classify-cases.json` through the Rust API, the raw-response parser, and the §5 key set.
mod common;

use std::time::SystemTime;

use xeroguard::{classify, classify_raw};

#[test]
fn rust_api_passes_every_conformance_case() {
    common::assert_conformance("classify", |case| {
        classify(case.status, &case.header_refs(), &case.body, SystemTime::now()).to_json()
    });
}

#[test]
fn raw_responses_pass_every_conformance_case() {
    common::assert_conformance("classify_raw", |case| classify_raw(&case.raw(), SystemTime::now()).unwrap().to_json());
}

#[test]
fn rust_api_passes_every_project_case() {
    common::assert_project_conformance("classify", |case| {
        classify(case.status, &case.header_refs(), &case.body, SystemTime::now()).to_json()
    });
}

#[test]
fn raw_responses_pass_every_project_case() {
    common::assert_project_conformance("classify_raw", |case| {
        classify_raw(&case.raw(), SystemTime::now()).unwrap().to_json()
    });
}

#[test]
fn project_cases_have_unique_names_and_sources() {
    let cases = common::load_project_cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    let text = std::fs::read_to_string(common::project_tests_dir().join("conformance/classify-cases.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        assert!(case["source"].as_str().is_some_and(|s| !s.is_empty()), "{} names no source", case["name"]);
    }
}

#[test]
fn every_section_5_key_is_always_present() {
    const KEYS: [&str; 22] = [
        "status",
        "category",
        "action",
        "retryable",
        "rate_limit_problem",
        "retry_after_ms",
        "recommended_wait_ms",
        "minute_remaining",
        "day_remaining",
        "app_minute_remaining",
        "error_number",
        "error_type",
        "message",
        "validation_messages",
        "warnings",
        "failed_elements",
        "oauth_problem",
        "oauth_problem_advice",
        "auth_problem",
        "problem_title",
        "problem_detail",
        "correlation_id",
    ];
    for case in common::load_cases().into_iter().chain(common::load_project_cases()) {
        let json = classify(case.status, &case.header_refs(), &case.body, SystemTime::now()).to_json();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), KEYS.len(), "{}", case.name);
        for key in KEYS {
            assert!(object.contains_key(key), "{}: missing {key}", case.name);
        }
    }
}
