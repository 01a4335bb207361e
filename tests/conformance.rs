//! Every case of `../shared/conformance/classify-cases.json` and of the project's own
//! `tests/conformance/classify-cases.json` through the Rust API, the raw-response parser, and the §5 key set.
mod common;

use std::time::SystemTime;

use xeroguard::ffi::{XG_STATUS_OK, xg_classify_flat, xg_string_free};
use xeroguard::pacing::{Clock, Feedback, Limiter, Limits};
use xeroguard::{Reason, classify, classify_raw};

/// A case through `xg_classify_flat` (the bindings' fast path): headers as one NUL-separated buffer.
fn classify_flat_json(case: &common::Case) -> serde_json::Value {
    serde_json::from_str(&classify_flat_text(case)).unwrap()
}

fn classify_flat_text(case: &common::Case) -> String {
    let headers: Vec<&str> = case.header_refs().into_iter().flat_map(|(name, value)| [name, value]).collect();
    let headers = headers.join("\0");
    let mut json = std::ptr::null_mut();
    let status = unsafe {
        xg_classify_flat(
            case.status,
            headers.as_ptr(),
            headers.len(),
            case.body.as_ptr(),
            case.body.len(),
            0,
            std::ptr::null_mut(),
            &mut json,
        )
    };
    assert_eq!(status, XG_STATUS_OK, "{}: {}", case.name, common::last_error());
    let text = unsafe { std::ffi::CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    unsafe { xg_string_free(json) };
    text
}

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
fn flat_export_passes_every_conformance_case() {
    common::assert_conformance("xg_classify_flat", classify_flat_json);
}

#[test]
fn flat_export_passes_every_project_case() {
    common::assert_project_conformance("xg_classify_flat", classify_flat_json);
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

/// A 503 that names one organisation (Finance's `Cannot process org … at this time`) blocks that tenant only;
/// a maintenance 503 blocks the app.
#[test]
fn a_503_naming_one_organisation_blocks_only_its_tenant() {
    let feedback = |name: &str| {
        let case = common::load_project_cases().into_iter().find(|c| c.name == name).expect("project case");
        Feedback::from(&classify(case.status, &case.header_refs(), &case.body, SystemTime::now()))
    };
    let limiter = Limiter::new(Limits::exact(), Clock::Manual).unwrap();
    limiter.observe("offline-org", &feedback("finance_503_cannot_process_org_problem"), 0).unwrap();
    limiter.observe("text-org", &feedback("finance_503_cannot_process_org_text"), 0).unwrap();
    for tenant in ["offline-org", "text-org"] {
        let refusal = limiter.peek(tenant, 0).unwrap().map(|r| (r.reason, r.wait_ms));
        assert_eq!(refusal, Some((Reason::OrganisationOffline, 300_000)), "{tenant}");
    }
    assert_eq!(limiter.peek("other-org", 0).unwrap(), None, "other tenants are not blocked");
    limiter.observe("any", &feedback("payrolluk_503_service_unavailable_envelope"), 0).unwrap();
    assert_eq!(limiter.peek("other-org", 0).unwrap().map(|r| r.reason), Some(Reason::Outage));
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
        // In the section's order too: the JSON text of every interface lists them so.
        assert_eq!(object.keys().map(String::as_str).collect::<Vec<_>>(), KEYS, "{}", case.name);
        let text: serde_json::Value = serde_json::from_str(&classify_flat_text(&case)).unwrap();
        assert_eq!(text, json, "{}: the C ABI's JSON text is to_json()", case.name);
    }
}
