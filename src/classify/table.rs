//! The decision table of xero-reference §6: what a status and the body's facts mean, what to do, and how long to
//! wait when the server does not say.

use super::facts::BodyFacts;
use super::headers::HeaderFacts;
use crate::vocab::{Action, AuthProblem, Category, RateLimitProblem};

/// How long to wait before retrying when the server sends no Retry-After (xero-reference §6; the rate-limit waits
/// are [`RateLimitProblem::default_wait_ms`]).
const ORGANISATION_OFFLINE_WAIT_MS: u64 = 300_000;
const OUTAGE_WAIT_MS: u64 = 60_000;
const SERVER_ERROR_WAIT_MS: u64 = 5_000;

pub(super) struct Verdict {
    pub category: Category,
    pub action: Action,
    pub default_wait_ms: u64,
    pub rate_limit_problem: Option<RateLimitProblem>,
    pub auth_problem: Option<AuthProblem>,
    /// The server certainly did not carry the request out (xero-reference §8: rate limits, an offline organisation,
    /// maintenance, a used nonce). False wherever it may have.
    pub certainly_not_processed: bool,
}

impl Verdict {
    fn new(category: Category, action: Action) -> Self {
        Verdict {
            category,
            action,
            default_wait_ms: 0,
            rate_limit_problem: None,
            auth_problem: None,
            certainly_not_processed: false,
        }
    }

    fn retry(category: Category, wait_ms: u64) -> Self {
        Verdict { default_wait_ms: wait_ms, ..Verdict::new(category, Action::Retry) }
    }

    fn auth(category: Category, action: Action, problem: AuthProblem) -> Self {
        Verdict { auth_problem: Some(problem), ..Verdict::new(category, action) }
    }

    fn certainly_not_processed(self) -> Self {
        Verdict { certainly_not_processed: true, ..self }
    }
}

/// The decision table of xero-reference §6. Specific statuses come before the ranges that hold them.
#[allow(clippy::match_overlapping_arm)]
pub(super) fn decide(status: u16, head: &HeaderFacts<'_>, facts: &BodyFacts) -> Verdict {
    use Category as C;
    match status {
        200..=299 if facts.request_failed => Verdict::new(C::BadRequest, Action::FixRequest),
        200..=299 if facts.has_element_errors() => Verdict::new(C::PartialSuccess, Action::FixRequest),
        200..=299 => Verdict::new(C::Success, Action::None),
        _ if let Some(verdict) = finance_problem(head, facts) => verdict,
        429 => rate_limited(head),
        // OAuth 1.0a sent these on 503, and SDK tests on 401 too: a rate limit or an offline organisation is never
        // fixed by reconnecting, whatever the status.
        _ if oauth_problem_is(facts, "rate limit exceeded") => rate_limited(head),
        _ if oauth_problem_is(facts, "organisation offline") => organisation_offline(),
        503 if names_one_organisation(facts) => organisation_offline(),
        503 => Verdict::retry(C::ServiceUnavailable, OUTAGE_WAIT_MS).certainly_not_processed(),
        400 | 401 | 403 if let Some(verdict) = oauth_or_token_problem(status, facts) => verdict,
        400 if is_validation(facts) => Verdict::new(C::ValidationError, Action::FixRequest),
        400 => Verdict::new(C::BadRequest, Action::FixRequest),
        401 => unauthorized(head, facts),
        403 if problem_says(facts, "AuthenticationUnsuccessful") => {
            Verdict::auth(C::Forbidden, Action::Reauthorize, AuthProblem::TenantNotAuthorized)
        }
        403 => Verdict::new(C::Forbidden, Action::FixRequest),
        404 => Verdict::new(C::NotFound, Action::FixRequest),
        405 => Verdict::new(C::MethodNotAllowed, Action::FixRequest),
        409 => Verdict::new(C::Conflict, Action::FixRequest),
        412 => Verdict::new(C::PreconditionFailed, Action::FixRequest),
        413 => Verdict::new(C::PayloadTooLarge, Action::FixRequest),
        422 => Verdict::new(C::ValidationError, Action::FixRequest),
        501 => Verdict::new(C::NotImplemented, Action::FixRequest),
        500 => Verdict::retry(C::InternalError, SERVER_ERROR_WAIT_MS),
        502 | 504 => Verdict::retry(C::ServiceUnavailable, SERVER_ERROR_WAIT_MS),
        400..=499 => Verdict::new(C::Unknown, Action::FixRequest),
        500..=599 => Verdict::retry(C::Unknown, SERVER_ERROR_WAIT_MS),
        _ => Verdict::new(C::Unknown, Action::FixRequest),
    }
}

fn organisation_offline() -> Verdict {
    Verdict::retry(Category::OrganisationOffline, ORGANISATION_OFFLINE_WAIT_MS).certainly_not_processed()
}

/// Finance API problem types that decide whatever the status (xero-reference §6).
fn finance_problem(head: &HeaderFacts<'_>, facts: &BodyFacts) -> Option<Verdict> {
    match facts.problem_type.as_deref()?.trim().to_ascii_lowercase().as_str() {
        "rate-limit-error" => Some(rate_limited(head)),
        "request-timeout" => Some(Verdict::retry(Category::ServiceUnavailable, SERVER_ERROR_WAIT_MS)),
        "organisation-offline" => Some(organisation_offline()),
        _ => None,
    }
}

fn oauth_problem_is(facts: &BodyFacts, problem: &str) -> bool {
    facts.oauth_problem.as_deref().is_some_and(|p| p.trim().eq_ignore_ascii_case(problem))
}

/// A 503 whose text names one organisation: `The Organisation is offline`, Finance's `Cannot process org … at this
/// time`. Only that tenant is affected, so pacing blocks the tenant rather than the app.
fn names_one_organisation(facts: &BodyFacts) -> bool {
    [&facts.text, &facts.problem_detail, &facts.message].into_iter().flatten().any(|text| {
        let text = text.to_ascii_lowercase();
        text.contains("organisation is offline")
            || text.contains("organization is offline")
            || text.contains("cannot process org")
    })
}

fn is_validation(facts: &BodyFacts) -> bool {
    facts.error_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("ValidationException"))
        || facts.field_error_count > 0
        || facts.validation_error_count > 0
}

/// Whether the problem body's detail (or an ApiException message) names `word`, e.g. `TokenExpired: …`.
fn problem_says(facts: &BodyFacts, word: &str) -> bool {
    let word = word.to_ascii_lowercase();
    [&facts.problem_detail, &facts.problem_title, &facts.message]
        .into_iter()
        .flatten()
        .any(|text| text.to_ascii_lowercase().contains(&word))
}

/// The rate-limit problem: the header's word, else inferred from which remaining count is zero (§4).
fn rate_limited(head: &HeaderFacts<'_>) -> Verdict {
    let problem = match head.rate_limit_problem.filter(|p| !p.is_empty()) {
        Some(value) => RateLimitProblem::from_header(value),
        None if head.minute_remaining == Some(0) => RateLimitProblem::Minute,
        None if head.day_remaining == Some(0) => RateLimitProblem::Day,
        None if head.app_minute_remaining == Some(0) => RateLimitProblem::AppMinute,
        None => RateLimitProblem::Unknown,
    };
    Verdict { rate_limit_problem: Some(problem), ..Verdict::retry(Category::RateLimited, problem.default_wait_ms()) }
        .certainly_not_processed()
}

/// OAuth 1.0a form problems and token-endpoint errors, on 400, 401 or 403.
fn oauth_or_token_problem(status: u16, facts: &BodyFacts) -> Option<Verdict> {
    use AuthProblem as P;
    let unauthorized = |action, problem| Some(Verdict::auth(Category::Unauthorized, action, problem));
    if let Some(problem) = facts.oauth_problem.as_deref() {
        return match problem.to_ascii_lowercase().as_str() {
            "token_expired" => unauthorized(Action::RefreshToken, P::TokenExpired),
            "token_rejected" => unauthorized(Action::Reauthorize, P::TokenRejected),
            "nonce_used" => Some(
                Verdict { auth_problem: Some(P::NonceUsed), ..Verdict::retry(Category::Unauthorized, 0) }
                    .certainly_not_processed(),
            ),
            "signature_invalid" => unauthorized(Action::FixRequest, P::SignatureInvalid),
            "signature_method_rejected" => unauthorized(Action::FixRequest, P::SignatureMethodRejected),
            _ if status == 401 => unauthorized(Action::Reauthorize, P::Other),
            _ => None,
        };
    }
    match facts.token_error.as_deref()?.to_ascii_lowercase().as_str() {
        "invalid_grant" => unauthorized(Action::Reauthorize, P::InvalidGrant),
        "invalid_client" => unauthorized(Action::FixRequest, P::InvalidClient),
        "unsupported_grant_type" => unauthorized(Action::FixRequest, P::UnsupportedGrantType),
        _ => None,
    }
}

fn unauthorized(head: &HeaderFacts<'_>, facts: &BodyFacts) -> Verdict {
    use AuthProblem as P;
    let challenge = head.www_authenticate.unwrap_or("").to_ascii_lowercase().replace('"', "");
    // The same RFC 6750 words may come in the JSON body instead of the challenge: {"error": "invalid_token"}.
    let error_word = facts.token_error.as_deref().unwrap_or("").trim().to_ascii_lowercase();
    let (action, problem) = if problem_says(facts, "TokenExpired") {
        (Action::RefreshToken, P::TokenExpired)
    } else if problem_says(facts, "AuthorizationUnsuccessful")
        || challenge.contains("error=insufficient_scope")
        || error_word == "insufficient_scope"
    {
        (Action::Reauthorize, P::InsufficientScope)
    } else if problem_says(facts, "AuthenticationUnsuccessful")
        || challenge.contains("error=invalid_token")
        || error_word == "invalid_token"
    {
        (Action::RefreshToken, P::InvalidToken)
    } else {
        (Action::Reauthorize, P::Other)
    };
    Verdict::auth(Category::Unauthorized, action, problem)
}

impl RateLimitProblem {
    /// Reads an `X-Rate-Limit-Problem` value (xero-reference §4): case-insensitive, unknown words map to `Unknown`.
    pub fn from_header(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "minute" => Self::Minute,
            "day" | "daily" => Self::Day,
            "appminute" | "app_minute" | "app-minute" | "app" => Self::AppMinute,
            "concurrent" | "concurrency" => Self::Concurrent,
            _ => Self::Unknown,
        }
    }

    /// The wait xero-reference §6 recommends for this problem when the server sent no Retry-After.
    pub const fn default_wait_ms(self) -> u64 {
        match self {
            Self::Day => 3_600_000,
            Self::Concurrent => 1_000,
            Self::Minute | Self::AppMinute | Self::Unknown => 60_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use crate::classify::classify;
    use crate::vocab::Category;

    fn processed(status: u16, headers: &[(&str, &str)], body: &str) -> (Category, bool, bool) {
        let c = classify(status, headers, body.as_bytes(), SystemTime::UNIX_EPOCH);
        (c.category, c.retryable(), c.may_have_been_processed())
    }

    #[test]
    fn retryable_results_that_were_certainly_not_processed() {
        use Category as C;
        let finance = |kind: &str| format!(r#"{{"type": "{kind}", "title": "t", "status": 503}}"#);
        let cases: &[(u16, String, Category)] = &[
            (429, String::new(), C::RateLimited),
            (503, "oauth_problem=rate%20limit%20exceeded&oauth_problem_advice=wait".into(), C::RateLimited),
            (503, "The Organisation is offline".into(), C::OrganisationOffline),
            (503, "Cannot process org 42 at this time. Apologies for inconvenience.".into(), C::OrganisationOffline),
            (503, finance("organisation-offline"), C::OrganisationOffline),
            (503, finance("rate-limit-error"), C::RateLimited),
            (503, "The Xero API is currently offline for maintenance".into(), C::ServiceUnavailable),
            (503, "The Xero API is temporarily unavailable".into(), C::ServiceUnavailable),
            (401, "oauth_problem=nonce_used&oauth_problem_advice=used".into(), C::Unauthorized),
        ];
        for (status, body, category) in cases {
            assert_eq!(processed(*status, &[], body), (*category, true, false), "{status} {body}");
        }
    }

    #[test]
    fn retryable_results_that_may_have_been_processed() {
        use Category as C;
        let timeout = r#"{"type": "request-timeout", "title": "RequestTimeout"}"#;
        let cases: &[(u16, &str, Category)] = &[
            (500, "", C::InternalError),
            (502, "", C::ServiceUnavailable),
            (504, "", C::ServiceUnavailable),
            (520, "", C::Unknown),
            (599, "", C::Unknown),
            (503, timeout, C::ServiceUnavailable),
            (408, timeout, C::ServiceUnavailable),
        ];
        for (status, body, category) in cases {
            assert_eq!(processed(*status, &[], body), (*category, true, true), "{status} {body}");
        }
    }

    #[test]
    fn results_that_are_not_retryable_answer_the_cautious_true() {
        for (status, body) in [(200, ""), (400, r#"{"Type": "ValidationException"}"#), (404, ""), (413, "")] {
            let (_, retryable, may) = processed(status, &[], body);
            assert!(!retryable && may, "{status}");
        }
    }

    #[test]
    fn finance_problem_types_decide_whatever_the_status() {
        let body = |kind: &str| format!(r#"{{"type": "{kind}", "title": "t", "status": 400}}"#);
        let c =
            classify(400, &[("X-Rate-Limit-Problem", "day")], body("rate-limit-error").as_bytes(), SystemTime::now());
        assert_eq!((c.category, c.rate_limit_problem.map(|p| p.as_str())), (Category::RateLimited, Some("day")));
        assert_eq!(c.recommended_wait_ms, Some(3_600_000));
        let c = classify(400, &[], body("Request-Timeout").as_bytes(), SystemTime::now());
        assert_eq!((c.category, c.recommended_wait_ms), (Category::ServiceUnavailable, Some(5_000)));
        let c = classify(502, &[], body("organisation-offline").as_bytes(), SystemTime::now());
        assert_eq!((c.category, c.recommended_wait_ms), (Category::OrganisationOffline, Some(300_000)));
        // A success is never turned into a failure by a problem type.
        let c = classify(200, &[], body("rate-limit-error").as_bytes(), SystemTime::now());
        assert_eq!(c.category, Category::Success);
        // Other problem types leave the status in charge.
        let c = classify(400, &[], body("invalid-request").as_bytes(), SystemTime::now());
        assert_eq!(c.category, Category::BadRequest);
    }

    #[test]
    fn a_401_error_word_in_the_body_names_the_auth_problem() {
        let c = classify(401, &[], br#"{"error": "insufficient_scope"}"#, SystemTime::now());
        assert_eq!(c.auth_problem.map(|p| p.as_str()), Some("insufficient_scope"));
        assert_eq!(c.action.as_str(), "reauthorize");
        let c = classify(401, &[], br#"{"error": "something_else"}"#, SystemTime::now());
        assert_eq!((c.auth_problem.map(|p| p.as_str()), c.message.as_deref()), (Some("other"), Some("something_else")));
    }
}
