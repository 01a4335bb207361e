//! Every case of `../shared/conformance/classify-cases.json` through the Rust API, the raw-response parser, and
//! the §5 key set.
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
    for case in common::load_cases() {
        let json = classify(case.status, &case.header_refs(), &case.body, SystemTime::now()).to_json();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), KEYS.len(), "{}", case.name);
        for key in KEYS {
            assert!(object.contains_key(key), "{}: missing {key}", case.name);
        }
    }
}
