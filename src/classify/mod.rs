//! Classification: (status, headers, body) in, a [`Classification`] out. Pure: no I/O, no global state, and the
//! only clock is the `now` argument (used for a `Retry-After` HTTP-date when the response has no `Date`).

mod body;
mod headers;
mod json;
mod raw;
mod scan;
mod xml;

use std::time::SystemTime;

pub use body::MAX_BODY_BYTES;
pub use headers::RETRY_AFTER_CAP_MS;
pub use raw::{MAX_HEADERS, RawError, RawResponse, parse_raw};

use crate::vocab::{Action, AuthProblem, Category, RateLimitProblem};
use body::BodyFacts;
use headers::HeaderFacts;

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
}

impl Classification {
    /// True exactly when the action is `retry`.
    pub fn retryable(&self) -> bool {
        self.action.is_retry()
    }

    /// The §5 JSON object, every key present.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "category": self.category.as_str(),
            "action": self.action.as_str(),
            "retryable": self.retryable(),
            "rate_limit_problem": self.rate_limit_problem.map(RateLimitProblem::as_str),
            "retry_after_ms": self.retry_after_ms,
            "recommended_wait_ms": self.recommended_wait_ms,
            "minute_remaining": self.minute_remaining,
            "day_remaining": self.day_remaining,
            "app_minute_remaining": self.app_minute_remaining,
            "error_number": self.error_number,
            "error_type": self.error_type,
            "message": self.message,
            "validation_messages": self.validation_messages,
            "warnings": self.warnings,
            "failed_elements": self.failed_elements,
            "oauth_problem": self.oauth_problem,
            "oauth_problem_advice": self.oauth_problem_advice,
            "auth_problem": self.auth_problem.map(AuthProblem::as_str),
            "problem_title": self.problem_title,
            "problem_detail": self.problem_detail,
            "correlation_id": self.correlation_id,
        })
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
    let message = message.or(facts.text);
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
    }
}

/// Classifies a raw HTTP response (status line, headers, blank line, body), as `curl -i` saves it.
pub fn classify_raw(raw: &[u8], now: SystemTime) -> Result<Classification, RawError> {
    let response = parse_raw(raw)?;
    let headers: Vec<(&str, &str)> = response.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref())).collect();
    Ok(classify(response.status, &headers, response.body, now))
}

struct Verdict {
    category: Category,
    action: Action,
    default_wait_ms: u64,
    rate_limit_problem: Option<RateLimitProblem>,
    auth_problem: Option<AuthProblem>,
}

impl Verdict {
    fn new(category: Category, action: Action) -> Self {
        Verdict { category, action, default_wait_ms: 0, rate_limit_problem: None, auth_problem: None }
    }

    fn retry(category: Category, wait_ms: u64) -> Self {
        Verdict { default_wait_ms: wait_ms, ..Verdict::new(category, Action::Retry) }
    }

    fn auth(category: Category, action: Action, problem: AuthProblem) -> Self {
        Verdict { auth_problem: Some(problem), ..Verdict::new(category, action) }
    }
}

/// The decision table of xero-reference §6. Specific statuses come before the ranges that hold them.
#[allow(clippy::match_overlapping_arm)]
fn decide(status: u16, head: &HeaderFacts<'_>, facts: &BodyFacts) -> Verdict {
    use Category as C;
    match status {
        200..=299 if facts.has_element_errors() => Verdict::new(C::PartialSuccess, Action::FixRequest),
        200..=299 => Verdict::new(C::Success, Action::None),
        429 => rate_limited(head),
        503 if facts.oauth_problem.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("rate limit exceeded")) => {
            rate_limited(head)
        }
        503 if facts.text.as_deref().is_some_and(is_organisation_offline) => {
            Verdict::retry(C::OrganisationOffline, 300_000)
        }
        503 => Verdict::retry(C::ServiceUnavailable, 60_000),
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
        501 => Verdict::new(C::NotImplemented, Action::FixRequest),
        500 => Verdict::retry(C::InternalError, 5_000),
        502 | 504 => Verdict::retry(C::ServiceUnavailable, 5_000),
        400..=499 => Verdict::new(C::Unknown, Action::FixRequest),
        500..=599 => Verdict::retry(C::Unknown, 5_000),
        _ => Verdict::new(C::Unknown, Action::FixRequest),
    }
}

fn is_organisation_offline(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("organisation is offline") || text.contains("organization is offline")
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
}

/// OAuth 1.0a form problems and token-endpoint errors, on 400, 401 or 403.
fn oauth_or_token_problem(status: u16, facts: &BodyFacts) -> Option<Verdict> {
    use AuthProblem as P;
    let unauthorized = |action, problem| Some(Verdict::auth(Category::Unauthorized, action, problem));
    if let Some(problem) = facts.oauth_problem.as_deref() {
        return match problem.to_ascii_lowercase().as_str() {
            "token_expired" => unauthorized(Action::RefreshToken, P::TokenExpired),
            "token_rejected" => unauthorized(Action::Reauthorize, P::TokenRejected),
            "nonce_used" => {
                Some(Verdict { auth_problem: Some(P::NonceUsed), ..Verdict::retry(Category::Unauthorized, 0) })
            }
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
    let (action, problem) = if problem_says(facts, "TokenExpired") {
        (Action::RefreshToken, P::TokenExpired)
    } else if problem_says(facts, "AuthorizationUnsuccessful") || challenge.contains("error=insufficient_scope") {
        (Action::Reauthorize, P::InsufficientScope)
    } else if problem_says(facts, "AuthenticationUnsuccessful") || challenge.contains("error=invalid_token") {
        (Action::RefreshToken, P::InvalidToken)
    } else {
        (Action::Reauthorize, P::Other)
    };
    Verdict::auth(Category::Unauthorized, action, problem)
}
