//! The decision table of xero-reference §6: what a status and the body's facts mean, what to do, and how long to
//! wait when the server does not say.

use super::facts::BodyFacts;
use super::headers::HeaderFacts;
use crate::vocab::{Action, AuthProblem, Category, RateLimitProblem};

pub(super) struct Verdict {
    pub category: Category,
    pub action: Action,
    pub default_wait_ms: u64,
    pub rate_limit_problem: Option<RateLimitProblem>,
    pub auth_problem: Option<AuthProblem>,
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
pub(super) fn decide(status: u16, head: &HeaderFacts<'_>, facts: &BodyFacts) -> Verdict {
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
