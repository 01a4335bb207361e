//! The stable vocabulary of xero-reference.md §4. The same words name the C constants, the JSON values and the
//! Python/C# enums, so every enum here carries its wire name and a fixed numeric code for the C ABI.

macro_rules! vocabulary {
    ($name:ident { $($variant:ident => $wire:literal,)+ }) => {
        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The vocabulary word (the JSON value).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }

            /// The vocabulary word as a NUL-terminated C string with static lifetime.
            pub const fn c_name(self) -> &'static std::ffi::CStr {
                match self {
                    $($name::$variant => match std::ffi::CStr::from_bytes_with_nul(concat!($wire, "\0").as_bytes()) {
                        Ok(name) => name,
                        Err(_) => panic!("vocabulary words contain no NUL"),
                    },)+
                }
            }

            /// The numeric code used over the C ABI.
            pub const fn code(self) -> u32 {
                self as u32
            }

            /// The value for a C code; `None` for a code this version does not know.
            pub fn from_code(code: u32) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == code)
            }

            /// The value for a vocabulary word (exact match).
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What kind of response this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Category {
    Success = 0,
    PartialSuccess = 1,
    ValidationError = 2,
    BadRequest = 3,
    Unauthorized = 4,
    Forbidden = 5,
    NotFound = 6,
    MethodNotAllowed = 7,
    Conflict = 8,
    PreconditionFailed = 9,
    RateLimited = 10,
    InternalError = 11,
    NotImplemented = 12,
    ServiceUnavailable = 13,
    OrganisationOffline = 14,
    Unknown = 15,
    /// 413: the request (a batch or a file) is over the size limit. Added after `unknown`: codes are never renumbered.
    PayloadTooLarge = 16,
}

vocabulary! {
    Category {
        Success => "success",
        PartialSuccess => "partial_success",
        ValidationError => "validation_error",
        BadRequest => "bad_request",
        Unauthorized => "unauthorized",
        Forbidden => "forbidden",
        NotFound => "not_found",
        MethodNotAllowed => "method_not_allowed",
        Conflict => "conflict",
        PreconditionFailed => "precondition_failed",
        RateLimited => "rate_limited",
        InternalError => "internal_error",
        NotImplemented => "not_implemented",
        ServiceUnavailable => "service_unavailable",
        OrganisationOffline => "organisation_offline",
        Unknown => "unknown",
        PayloadTooLarge => "payload_too_large",
    }
}

/// What the caller should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Action {
    None = 0,
    Retry = 1,
    RefreshToken = 2,
    Reauthorize = 3,
    FixRequest = 4,
}

vocabulary! {
    Action {
        None => "none",
        Retry => "retry",
        RefreshToken => "refresh_token",
        Reauthorize => "reauthorize",
        FixRequest => "fix_request",
    }
}

/// Which rate limit a 429 (or an OAuth1 503) reports. Code 0 is reserved for "none" in C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RateLimitProblem {
    Minute = 1,
    Day = 2,
    AppMinute = 3,
    Concurrent = 4,
    Unknown = 5,
}

vocabulary! {
    RateLimitProblem {
        Minute => "minute",
        Day => "day",
        AppMinute => "app_minute",
        Concurrent => "concurrent",
        Unknown => "unknown",
    }
}

/// Why authentication or authorisation failed. Code 0 is reserved for "none" in C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AuthProblem {
    TokenExpired = 1,
    InvalidToken = 2,
    InsufficientScope = 3,
    TenantNotAuthorized = 4,
    InvalidGrant = 5,
    InvalidClient = 6,
    UnsupportedGrantType = 7,
    NonceUsed = 8,
    SignatureInvalid = 9,
    SignatureMethodRejected = 10,
    TokenRejected = 11,
    Other = 12,
}

vocabulary! {
    AuthProblem {
        TokenExpired => "token_expired",
        InvalidToken => "invalid_token",
        InsufficientScope => "insufficient_scope",
        TenantNotAuthorized => "tenant_not_authorized",
        InvalidGrant => "invalid_grant",
        InvalidClient => "invalid_client",
        UnsupportedGrantType => "unsupported_grant_type",
        NonceUsed => "nonce_used",
        SignatureInvalid => "signature_invalid",
        SignatureMethodRejected => "signature_method_rejected",
        TokenRejected => "token_rejected",
        Other => "other",
    }
}

/// Why the limiter refused (or would refuse) a call. Code 0 is reserved for "none" (granted) in C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Reason {
    Minute = 1,
    Day = 2,
    AppMinute = 3,
    Concurrency = 4,
    RetryAfter = 5,
    OrganisationOffline = 6,
    Outage = 7,
    /// The shared store (Redis) could not be reached and the limiter's failure policy is `closed`.
    StoreUnavailable = 8,
}

vocabulary! {
    Reason {
        Minute => "minute",
        Day => "day",
        AppMinute => "app_minute",
        Concurrency => "concurrency",
        RetryAfter => "retry_after",
        OrganisationOffline => "organisation_offline",
        Outage => "outage",
        StoreUnavailable => "store_unavailable",
    }
}

/// What a limiter sharing its state through a store does when the store cannot be reached, and which of it applied
/// to a decision. Code 0 is reserved for "none" (the store decided) in C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum FailurePolicy {
    /// Refuse, with reason `store_unavailable`: never more calls than allowed (the default).
    Closed = 1,
    /// Grant, flagged: the app keeps running and risks a 429.
    Open = 2,
    /// Decide in this process with its share of every limit (the limit divided by the configured workers).
    Local = 3,
}

vocabulary! {
    FailurePolicy {
        Closed => "closed",
        Open => "open",
        Local => "local",
    }
}

/// Why an operation on the shared store (Redis) failed, for the statistics (`xg_stats.store_failures`). Code 0 is
/// reserved for "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum StoreFailureKind {
    /// No answer within the deadline.
    Timeout = 1,
    /// The store could not be reached, or the connection broke (refused, reset, DNS, TLS).
    Connection = 2,
    /// It answered with an error waiting will not fix (ACL, another clock on the prefix, a script error).
    Refused = 3,
    /// Its reply was not what the protocol expects (or answered another operation).
    Protocol = 4,
}

vocabulary! {
    StoreFailureKind {
        Timeout => "timeout",
        Connection => "connection",
        Refused => "refused",
        Protocol => "protocol",
    }
}

impl Action {
    /// `retryable` in the result is exactly `action == retry`.
    pub const fn is_retry(self) -> bool {
        matches!(self, Action::Retry)
    }
}

/// Why a retry policy gave up (`xg_backoff_decision.give_up`; 0 means it did not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GiveUp {
    /// The classification's action is not `retry`.
    NotRetryable = 1,
    /// The attempt number exceeds the policy's `max_retries`.
    AttemptsExhausted = 2,
    /// The wait needed (e.g. until a day limit resets) is longer than the policy's `max_wait_ms`.
    WaitTooLong = 3,
    /// The server may have carried out a write that carries no Idempotency-Key: resending could duplicate it.
    UnsafeToResend = 4,
}

vocabulary! {
    GiveUp {
        NotRetryable => "not_retryable",
        AttemptsExhausted => "attempts_exhausted",
        WaitTooLong => "wait_too_long",
        UnsafeToResend => "unsafe_to_resend",
    }
}

/// A duration for people: "850 ms", "17 s", "60.5 s", "5 min", "1 min 30 s", "24 h", "11 h 59 min", "24 days 20 h".
/// Fractions of a second are kept (the limiter's waits are exact), so under 10 minutes those stay in seconds; from
/// an hour on the seconds are left out, from two days on the minutes.
pub fn human_duration(ms: u64) -> String {
    const DAY_2: u64 = 2 * 86_400_000;
    let seconds = |ms: u64| {
        let text = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
    };
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => seconds(ms),
        60_000..600_000 if !ms.is_multiple_of(1000) => seconds(ms),
        60_000..3_600_000 => match ms % 60_000 {
            0 => format!("{} min", ms / 60_000),
            rest => format!("{} min {}", ms / 60_000, seconds(rest)),
        },
        3_600_000..DAY_2 => match (ms % 3_600_000) / 60_000 {
            0 => format!("{} h", ms / 3_600_000),
            minutes => format!("{} h {minutes} min", ms / 3_600_000),
        },
        _ => match (ms % 86_400_000) / 3_600_000 {
            0 => format!("{} days", ms / 86_400_000),
            hours => format!("{} days {hours} h", ms / 86_400_000),
        },
    }
}

/// A limiter's refusal in words, for messages and logs: the reason's vocabulary word first (the limit named), then
/// the wait in [`human_duration`] units: "day limit: next call in 11 h 59 min", "retry_after: the server asked to
/// wait; next call in 37 s", "concurrency: 5 calls in flight; a slot frees in at most 2 min" (a permit released
/// earlier frees it sooner). `in_flight` is the tenant's concurrency limit when the caller knows it; it is used only
/// for `concurrency`.
pub fn refusal_in_words(reason: Reason, wait_ms: u64, in_flight: Option<u32>) -> String {
    let wait = human_duration(wait_ms);
    match reason {
        Reason::Minute | Reason::Day => format!("{reason} limit: next call in {wait}"),
        Reason::AppMinute => format!("app_minute limit (every tenant of the app): next call in {wait}"),
        Reason::Concurrency => match in_flight {
            Some(1) => format!("concurrency: 1 call in flight; it frees its slot in at most {wait}"),
            Some(calls) => format!("concurrency: {calls} calls in flight; a slot frees in at most {wait}"),
            None => format!("concurrency: every slot is in flight; one frees in at most {wait}"),
        },
        Reason::RetryAfter => format!("retry_after: the server asked to wait; next call in {wait}"),
        Reason::OrganisationOffline => {
            format!("organisation_offline: the organisation is offline; next call in {wait}")
        }
        Reason::Outage => format!("outage: the Xero API is unavailable; next call in {wait}"),
        Reason::StoreUnavailable => {
            format!("store_unavailable: the shared store cannot be reached; next try in {wait}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        const DAY_MS: u64 = 86_400_000;
        let cases = [
            (0, "0 ms"),
            (850, "850 ms"),
            (1_000, "1 s"),
            (12_500, "12.5 s"),
            (17_000, "17 s"),
            (60_500, "60.5 s"),
            (59_999, "59.999 s"),
            (60_000, "1 min"),
            (90_000, "1 min 30 s"),
            (300_000, "5 min"),
            (599_999, "599.999 s"),
            (600_500, "10 min 0.5 s"),
            (3_600_000, "1 h"),
            (86_400_000, "24 h"),
            (43_199_942, "11 h 59 min"),
            (DAY_MS * 2 - 1, "47 h 59 min"),
            (DAY_MS * 2, "2 days"),
            (1 << 31, "24 days 20 h"),
            (u64::MAX, "213503982334 days 14 h"),
        ];
        for (ms, text) in cases {
            assert_eq!(human_duration(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn every_refusal_reason_is_said_in_words_with_its_limit_named() {
        for &reason in Reason::ALL {
            let text = refusal_in_words(reason, 12_500, None);
            assert!(text.starts_with(reason.as_str()), "{text}");
            assert!(text.ends_with(" 12.5 s") && !text.contains("12500"), "{text}");
        }
        let said = |reason, wait_ms, in_flight| refusal_in_words(reason, wait_ms, in_flight);
        assert_eq!(said(Reason::Day, 43_199_942, None), "day limit: next call in 11 h 59 min");
        assert_eq!(said(Reason::Minute, 12_500, Some(5)), "minute limit: next call in 12.5 s");
        assert_eq!(
            said(Reason::AppMinute, 3_000, None),
            "app_minute limit (every tenant of the app): next call in 3 s"
        );
        assert_eq!(said(Reason::RetryAfter, 37_000, None), "retry_after: the server asked to wait; next call in 37 s");
        assert_eq!(
            said(Reason::Concurrency, 120_000, Some(5)),
            "concurrency: 5 calls in flight; a slot frees in at most 2 min"
        );
        assert_eq!(
            said(Reason::Concurrency, 850, Some(1)),
            "concurrency: 1 call in flight; it frees its slot in at most 850 ms"
        );
        assert_eq!(
            said(Reason::Concurrency, 120_000, None),
            "concurrency: every slot is in flight; one frees in at most 2 min"
        );
        assert_eq!(
            said(Reason::OrganisationOffline, 300_000, None),
            "organisation_offline: the organisation is offline; next call in 5 min"
        );
        assert_eq!(said(Reason::Outage, 60_000, None), "outage: the Xero API is unavailable; next call in 1 min");
        assert_eq!(
            said(Reason::StoreUnavailable, 1_000, None),
            "store_unavailable: the shared store cannot be reached; next try in 1 s"
        );
    }
}
