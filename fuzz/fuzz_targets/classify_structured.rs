//! Structured responses (status, header list, body) through the Rust API: never a panic, and the result keeps
//! its own rules whatever the input.
#![no_main]

use std::time::SystemTime;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use xeroguard::{Action, classify};

#[derive(Arbitrary, Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fuzz_target!(|r: Response| {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let c = classify(r.status, &headers, &r.body, SystemTime::UNIX_EPOCH);
    assert_eq!(c.retryable(), c.action == Action::Retry);
    assert_eq!(c.recommended_wait_ms.is_some(), matches!(c.action, Action::Retry | Action::None));
    assert!(c.retry_after_ms.is_none_or(|ms| ms <= 86_400_000));
    assert_eq!(c.rate_limit_problem.is_some(), c.category == xeroguard::Category::RateLimited);
    let mut sorted = c.failed_elements.clone();
    sorted.dedup();
    assert_eq!(sorted, c.failed_elements, "failed elements are distinct and in order");
    assert_eq!(c.to_json().as_object().map(|o| o.len()), Some(22));
});
