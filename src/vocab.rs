//! The stable vocabulary of xero-reference.md §4. The same words name the C constants, the JSON values and the
//! Python/C# enums, so every enum here carries its wire name and a fixed numeric code for the C ABI.

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal => $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $code,)+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The vocabulary word (the JSON value).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }

            /// The numeric code used over the C ABI.
            pub const fn code(self) -> u32 {
                self as u32
            }

            /// The value for a C code; `None` for a code this version does not know.
            pub const fn from_code(code: u32) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
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

vocabulary! {
    /// What kind of response this is.
    Category {
        Success = 0 => "success",
        PartialSuccess = 1 => "partial_success",
        ValidationError = 2 => "validation_error",
        BadRequest = 3 => "bad_request",
        Unauthorized = 4 => "unauthorized",
        Forbidden = 5 => "forbidden",
        NotFound = 6 => "not_found",
        MethodNotAllowed = 7 => "method_not_allowed",
        Conflict = 8 => "conflict",
        PreconditionFailed = 9 => "precondition_failed",
        RateLimited = 10 => "rate_limited",
        InternalError = 11 => "internal_error",
        NotImplemented = 12 => "not_implemented",
        ServiceUnavailable = 13 => "service_unavailable",
        OrganisationOffline = 14 => "organisation_offline",
        Unknown = 15 => "unknown",
    }
}

vocabulary! {
    /// What the caller should do next.
    Action {
        None = 0 => "none",
        Retry = 1 => "retry",
        RefreshToken = 2 => "refresh_token",
        Reauthorize = 3 => "reauthorize",
        FixRequest = 4 => "fix_request",
    }
}

vocabulary! {
    /// Which rate limit a 429 (or an OAuth1 503) reports. Code 0 is reserved for "none" in C.
    RateLimitProblem {
        Minute = 1 => "minute",
        Day = 2 => "day",
        AppMinute = 3 => "app_minute",
        Concurrent = 4 => "concurrent",
        Unknown = 5 => "unknown",
    }
}

vocabulary! {
    /// Why authentication or authorisation failed. Code 0 is reserved for "none" in C.
    AuthProblem {
        TokenExpired = 1 => "token_expired",
        InvalidToken = 2 => "invalid_token",
        InsufficientScope = 3 => "insufficient_scope",
        TenantNotAuthorized = 4 => "tenant_not_authorized",
        InvalidGrant = 5 => "invalid_grant",
        InvalidClient = 6 => "invalid_client",
        UnsupportedGrantType = 7 => "unsupported_grant_type",
        NonceUsed = 8 => "nonce_used",
        SignatureInvalid = 9 => "signature_invalid",
        SignatureMethodRejected = 10 => "signature_method_rejected",
        TokenRejected = 11 => "token_rejected",
        Other = 12 => "other",
    }
}

vocabulary! {
    /// Why the limiter refused (or would refuse) a call. Code 0 is reserved for "none" (granted) in C.
    Reason {
        Minute = 1 => "minute",
        Day = 2 => "day",
        AppMinute = 3 => "app_minute",
        Concurrency = 4 => "concurrency",
        RetryAfter = 5 => "retry_after",
        OrganisationOffline = 6 => "organisation_offline",
        Outage = 7 => "outage",
    }
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

impl Action {
    /// `retryable` in the result is exactly `action == retry`.
    pub const fn is_retry(self) -> bool {
        matches!(self, Action::Retry)
    }
}
