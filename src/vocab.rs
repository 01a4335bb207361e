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
