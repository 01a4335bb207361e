//! Classification: (status, headers, body) in, a [`Classification`] out. Pure: no I/O, no global state, and the
//! only clock is the `now` argument (used for a `Retry-After` HTTP-date when the response has no `Date`).

mod body;
mod dom;
mod facts;
mod headers;
mod json;
mod raw;
mod scan;
mod table;
mod xml;

use std::time::SystemTime;

pub use body::MAX_BODY_BYTES;
pub use headers::RETRY_AFTER_CAP_MS;
pub use raw::{MAX_HEADERS, RawError, RawResponse, parse_raw};

use crate::vocab::{Action, AuthProblem, Category, RateLimitProblem};
use facts::BodyFacts;
use headers::HeaderFacts;
use table::decide;

/// The classification of one response: every key of xero-reference §5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    pub status: u16,
    pub category: Category,
    pub action: Action,
    pub rate_limit_problem: Option<RateLimitProblem>,
    pub retry_after_ms: Option<u64>,
    pub recommended_wait_ms: Option<u64>,
    pub minute_remaining: Option<u32>,
    pub day_remaining: Option<u32>,
    pub app_minute_remaining: Option<u32>,
    pub error_number: Option<i64>,
    pub error_type: Option<String>,
    pub message: Option<String>,
    pub validation_messages: Vec<String>,
    pub warnings: Vec<String>,
    pub failed_elements: Vec<u32>,
    pub oauth_problem: Option<String>,
    pub oauth_problem_advice: Option<String>,
    pub auth_problem: Option<AuthProblem>,
    pub problem_title: Option<String>,
    pub problem_detail: Option<String>,
    pub correlation_id: Option<String>,
    /// From the decision table: the server certainly did not carry the request out (see `may_have_been_processed`).
    certainly_not_processed: bool,
}

impl Classification {
    /// True exactly when the action is `retry`.
    pub fn retryable(&self) -> bool {
        self.action.is_retry()
    }

    /// Whether the server may have carried the request out (xero-reference §8), which decides whether a write
    /// without an Idempotency-Key may be resent. For a retryable result: false when it certainly did not (429, a
    /// 503 OAuth1 rate limit, an offline organisation, a 503 maintenance or not-available outage, OAuth1
    /// `nonce_used`, Finance `rate-limit-error`); true when it may have (500, 502, 504, other 5xx, Finance
    /// `request-timeout`). For a result that is not retryable the question does not arise and the answer is the
    /// cautious one, true: nothing here proves the request was not carried out (a summarizing 400 batch, for one,
    /// may have created its valid elements).
    pub fn may_have_been_processed(&self) -> bool {
        !self.certainly_not_processed
    }

    /// The §5 JSON object, every key present (its text: `serde_json::to_string`, which skips the `Value`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a classification always serializes")
    }

    /// The most useful one-line explanation: the message, problem detail, first validation message or OAuth advice.
    pub fn detail(&self) -> Option<&str> {
        self.validation_messages
            .first()
            .or(self.message.as_ref())
            .or(self.problem_detail.as_ref())
            .or(self.oauth_problem_advice.as_ref())
            .or(self.oauth_problem.as_ref())
            .map(String::as_str)
    }
}

/// The §5 keys in their order, every one present (null where unknown).
impl serde::Serialize for Classification {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut o = serializer.serialize_struct("Classification", 22)?;
        o.serialize_field("status", &self.status)?;
        o.serialize_field("category", self.category.as_str())?;
        o.serialize_field("action", self.action.as_str())?;
        o.serialize_field("retryable", &self.retryable())?;
        o.serialize_field("rate_limit_problem", &self.rate_limit_problem.map(RateLimitProblem::as_str))?;
        o.serialize_field("retry_after_ms", &self.retry_after_ms)?;
        o.serialize_field("recommended_wait_ms", &self.recommended_wait_ms)?;
        o.serialize_field("minute_remaining", &self.minute_remaining)?;
        o.serialize_field("day_remaining", &self.day_remaining)?;
        o.serialize_field("app_minute_remaining", &self.app_minute_remaining)?;
        o.serialize_field("error_number", &self.error_number)?;
        o.serialize_field("error_type", &self.error_type)?;
        o.serialize_field("message", &self.message)?;
        o.serialize_field("validation_messages", &self.validation_messages)?;
        o.serialize_field("warnings", &self.warnings)?;
        o.serialize_field("failed_elements", &self.failed_elements)?;
        o.serialize_field("oauth_problem", &self.oauth_problem)?;
        o.serialize_field("oauth_problem_advice", &self.oauth_problem_advice)?;
        o.serialize_field("auth_problem", &self.auth_problem.map(AuthProblem::as_str))?;
        o.serialize_field("problem_title", &self.problem_title)?;
        o.serialize_field("problem_detail", &self.problem_detail)?;
        o.serialize_field("correlation_id", &self.correlation_id)?;
        o.end()
    }
}

/// How much of a 2xx body a guard reads to classify it when the body could be a large download.
pub const SUCCESS_BODY_READ_CAP: usize = 1 << 20;

/// How many body bytes a guard (an HTTP client integration) should read to classify a response, given its status
/// and `Content-Type` (the one rule every binding follows, so none decides for itself): every error body, up to
/// [`MAX_BODY_BYTES`]; a 2xx body that can carry errors (JSON, XML or text: a `summarizeErrors=false` batch, an XPM
/// `<Status>ERROR</Status>`), up to [`SUCCESS_BODY_READ_CAP`] (a longer one is classified from what was read and
/// must reach the caller whole); nothing of a 2xx download (PDF, image, attachment, no type), which is classified
/// from its status and headers and streamed to the caller untouched.
pub fn body_bytes_to_classify(status: u16, content_type: Option<&str>) -> usize {
    if !(200..300).contains(&status) {
        return MAX_BODY_BYTES;
    }
    let Some(media) = content_type.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase()) else {
        return 0;
    };
    let structured = media.starts_with("text/")
        || media.ends_with("/json")
        || media.ends_with("/xml")
        || media.ends_with("+json")
        || media.ends_with("+xml");
    if structured { SUCCESS_BODY_READ_CAP } else { 0 }
}

/// Classifies one response. Header names match case-insensitively and values are trimmed; the body is bytes in any
/// family of xero-reference §2 (or none), read as best it can be: malformed input never fails, it only tells less.
pub fn classify(status: u16, headers: &[(&str, &str)], body: &[u8], now: SystemTime) -> Classification {
    let head = HeaderFacts::read(headers);
    let facts = body::read(body, (200..300).contains(&status));
    let verdict = decide(status, &head, &facts);
    let retry_after_ms = head.retry_after_ms(now);
    let recommended_wait_ms = match verdict.action {
        Action::Retry => Some(retry_after_ms.unwrap_or(verdict.default_wait_ms)),
        Action::None => Some(0),
        _ => None,
    };
    let BodyFacts { error_number, error_type, message, validation_messages, warnings, failed_elements, .. } = facts;
    let message = facts.first_field_message.or(message).or(facts.text);
    Classification {
        status,
        category: verdict.category,
        action: verdict.action,
        rate_limit_problem: verdict.rate_limit_problem,
        retry_after_ms,
        recommended_wait_ms,
        minute_remaining: head.minute_remaining,
        day_remaining: head.day_remaining,
        app_minute_remaining: head.app_minute_remaining,
        error_number,
        error_type,
        message,
        validation_messages: validation_messages.into_vec(),
        warnings: warnings.into_vec(),
        failed_elements,
        oauth_problem: facts.oauth_problem,
        oauth_problem_advice: facts.oauth_problem_advice,
        auth_problem: verdict.auth_problem,
        problem_title: facts.problem_title,
        problem_detail: facts.problem_detail,
        correlation_id: head.correlation_id.map(str::to_owned).or(facts.problem_instance),
        certainly_not_processed: verdict.certainly_not_processed,
    }
}

/// Classifies a raw HTTP response (status line, headers, blank line, body), as `curl -i` saves it.
pub fn classify_raw(raw: &[u8], now: SystemTime) -> Result<Classification, RawError> {
    let response = parse_raw(raw)?;
    let headers: Vec<(&str, &str)> = response.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref())).collect();
    Ok(classify(response.status, &headers, response.body, now))
}

#[cfg(test)]
mod body_rule_tests {
    use super::*;

    #[test]
    fn errors_are_read_whole_documents_up_to_a_cap_downloads_not_at_all() {
        assert_eq!(body_bytes_to_classify(400, None), MAX_BODY_BYTES);
        assert_eq!(body_bytes_to_classify(503, Some("text/html")), MAX_BODY_BYTES);
        assert_eq!(body_bytes_to_classify(302, Some("application/pdf")), MAX_BODY_BYTES, "not a 2xx");
        for t in ["application/json; charset=utf-8", "text/xml", "Application/Problem+JSON", "text/html", "text/plain"]
        {
            assert_eq!(body_bytes_to_classify(200, Some(t)), SUCCESS_BODY_READ_CAP, "{t}");
        }
        for t in [None, Some("application/pdf"), Some("image/png"), Some("application/octet-stream")] {
            assert_eq!(body_bytes_to_classify(200, t), 0, "{t:?}");
        }
    }
}
