//! What pacing operations take and give: permits, decisions, reservations, feedback, snapshots and errors. Every
//! backend speaks these types.

use crate::classify::Classification;
use crate::vocab::{Category, FailurePolicy, RateLimitProblem, Reason, human_duration, refusal_in_words};

/// Tenant ids are Xero GUIDs; anything much longer is a caller's bug, refused before it costs memory.
pub const MAX_TENANT_ID_BYTES: usize = 256;

/// Refuses a tenant id over [`MAX_TENANT_ID_BYTES`] before it costs memory or a round trip (every backend).
pub(crate) fn check_tenant(tenant: &str) -> Result<(), PacingError> {
    if tenant.len() > MAX_TENANT_ID_BYTES { Err(PacingError::TenantIdTooLong) } else { Ok(()) }
}

pub use super::bounds::{MAX_APP_BOOKINGS, MAX_BOOKING_AHEAD_MS, MAX_BOOKINGS};

/// A concurrency slot held by one call in flight. Id 0 is a tenantless call's, which holds no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permit {
    pub id: u64,
    /// Set when a shared store could not decide and the limiter's failure policy did (see [`FailurePolicy`]).
    pub fallback: Option<FailurePolicy>,
}

impl Permit {
    pub const fn new(id: u64) -> Self {
        Permit { id, fallback: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Exactly how long until the call would be admitted, if nothing else changes.
    pub wait_ms: u64,
    pub reason: Reason,
    /// Set when a shared store could not decide and the limiter's failure policy did (see [`FailurePolicy`]).
    pub fallback: Option<FailurePolicy>,
}

impl Refusal {
    pub const fn new(wait_ms: u64, reason: Reason) -> Self {
        Refusal { wait_ms, reason, fallback: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Granted(Permit),
    Refused(Refusal),
}

/// A call booked for a future instant: it counts in every window from now on. It takes no concurrency permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub id: u64,
    pub at_ms: u64,
    pub wait_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacingError {
    TenantIdTooLong,
    TooManyTenants,
    UnknownPermit,
    UnknownReservation,
    NotManualClock,
    ClockBackwards,
    InvalidLimits(String),
    /// The shared store's options cannot be used (URL, key prefix, TLS files, deadline).
    InvalidOptions(String),
    /// `acquire_wait` could not be granted in time; the last refusal says why.
    Timeout(Refusal),
    /// The limiter was interrupted (`Limiter::interrupt`): waits end at once.
    Interrupted,
    /// The next free slot lies beyond [`MAX_BOOKING_AHEAD_MS`]; the wait until it is in the error.
    BookingTooFar {
        wait_ms: u64,
    },
    /// The tenant already holds [`MAX_BOOKINGS`] bookings ahead (or the app [`MAX_APP_BOOKINGS`]); the next one
    /// comes due, and another can be booked, in `wait_ms`.
    TooManyBookings {
        wait_ms: u64,
    },
    /// The shared store could not be reached in time (and the failure policy did not decide instead).
    StoreUnavailable(String),
    /// The shared store answered with an error: another clock or prefix setup, a bad script, a protocol mismatch.
    Store(String),
    /// The shared store did not accept the credentials (WRONGPASS, NOAUTH): the URL's user or password is wrong.
    StoreAuth(String),
    /// The shared store's ACL does not allow a command the limiter needs (NOPERM, an unknown or renamed command).
    StoreForbidden(String),
    /// The limits given differ from those stored for the key prefix (the message names both); set
    /// `replace_limits` to write these over them, or `adopt_stored_limits` to pace by the stored ones.
    LimitsDiffer(String),
    /// A read-only look at a key prefix that holds no limits (nothing was ever stored there, or the store lost it).
    NoStoredLimits,
    /// A limiter opened for inspection only reads: the operation would write.
    ReadOnly,
}

impl std::fmt::Display for PacingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacingError::TenantIdTooLong => write!(f, "tenant id longer than {MAX_TENANT_ID_BYTES} bytes"),
            PacingError::TooManyTenants => f.write_str("the limiter tracks max_tenants tenants and none is idle"),
            PacingError::UnknownPermit => f.write_str("unknown permit: never granted, already released, or expired"),
            PacingError::UnknownReservation => {
                f.write_str("unknown reservation: never made, already cancelled, or its time has come")
            }
            PacingError::NotManualClock => f.write_str("only a limiter with the manual clock can be moved by hand"),
            PacingError::ClockBackwards => f.write_str("the manual clock cannot move backwards"),
            PacingError::InvalidLimits(why) => write!(f, "invalid limits: {why}"),
            PacingError::InvalidOptions(why) => write!(f, "invalid store options: {why}"),
            PacingError::Timeout(r) => {
                write!(f, "no permit in time ({})", refusal_in_words(r.reason, r.wait_ms, None))
            }
            PacingError::Interrupted => f.write_str("interrupted: the limiter is shutting down"),
            PacingError::StoreUnavailable(why) => write!(f, "the shared store is unavailable: {why}"),
            PacingError::Store(why) => write!(f, "the shared store refused: {why}"),
            PacingError::StoreAuth(why) => write!(
                f,
                "the shared store did not accept the credentials ({why}): check the user and password in the store \
                 URL (redis://user:password@host:port)"
            ),
            PacingError::StoreForbidden(why) => write!(
                f,
                "the shared store's ACL does not allow a command the limiter needs ({why}): give the URL's user the \
                 commands the README's Redis section lists"
            ),
            PacingError::LimitsDiffer(why) => f.write_str(why),
            PacingError::NoStoredLimits => f.write_str(
                "no limits are stored for this key prefix (no limiter has started on it, or the store lost them)",
            ),
            PacingError::ReadOnly => f.write_str("this limiter was opened for inspection: it only reads"),
            PacingError::BookingTooFar { wait_ms } => write!(
                f,
                "the next free slot is {} away, beyond the booking horizon of {}",
                human_duration(*wait_ms),
                human_duration(MAX_BOOKING_AHEAD_MS)
            ),
            PacingError::TooManyBookings { wait_ms } => write!(
                f,
                "too many calls booked ahead (at most {MAX_BOOKINGS} per tenant, {MAX_APP_BOOKINGS} per app); the \
                 next one comes due in {wait_ms} ms"
            ),
        }
    }
}

impl std::error::Error for PacingError {}

/// What `observe` needs from a classification (the C struct carries exactly these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feedback {
    pub status: u16,
    pub category: Category,
    pub rate_limit_problem: Option<RateLimitProblem>,
    pub recommended_wait_ms: Option<u64>,
    pub minute_remaining: Option<u32>,
    pub day_remaining: Option<u32>,
    pub app_minute_remaining: Option<u32>,
}

impl From<&Classification> for Feedback {
    fn from(c: &Classification) -> Self {
        Feedback {
            status: c.status,
            category: c.category,
            rate_limit_problem: c.rate_limit_problem,
            recommended_wait_ms: c.recommended_wait_ms,
            minute_remaining: c.minute_remaining,
            day_remaining: c.day_remaining,
            app_minute_remaining: c.app_minute_remaining,
        }
    }
}

/// One window's view in a [`Snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSnapshot {
    pub limit: u32,
    pub window_ms: u64,
    /// Calls in the window ending now.
    pub count: u32,
    /// Calls still allowed in the window ending now.
    pub remaining: u32,
    /// Calls booked (reserved) for later instants.
    pub booked: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub tenant: String,
    pub now_ms: u64,
    pub minute: WindowSnapshot,
    pub day: WindowSnapshot,
    pub app_minute: WindowSnapshot,
    pub in_flight: u32,
    pub concurrency_limit: u32,
    pub blocked_until_ms: Option<u64>,
    pub block_reason: Option<Reason>,
    pub app_blocked_until_ms: Option<u64>,
    pub app_block_reason: Option<Reason>,
    /// What `peek` would answer now.
    pub wait_ms: u64,
    pub wait_reason: Option<Reason>,
    pub tenants_tracked: u64,
}

impl Snapshot {
    pub fn to_json(&self) -> serde_json::Value {
        let window = |w: &WindowSnapshot| serde_json::json!({"limit": w.limit, "window_ms": w.window_ms, "count": w.count, "remaining": w.remaining, "booked": w.booked});
        serde_json::json!({
            "tenant": self.tenant,
            "now_ms": self.now_ms,
            "minute": window(&self.minute),
            "day": window(&self.day),
            "app_minute": window(&self.app_minute),
            "in_flight": self.in_flight,
            "concurrency_limit": self.concurrency_limit,
            "blocked_until_ms": self.blocked_until_ms,
            "block_reason": self.block_reason.map(Reason::as_str),
            "app_blocked_until_ms": self.app_blocked_until_ms,
            "app_block_reason": self.app_block_reason.map(Reason::as_str),
            "wait_ms": self.wait_ms,
            "wait_reason": self.wait_reason.map(Reason::as_str),
            "tenants_tracked": self.tenants_tracked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_in_errors_are_in_human_units_with_the_limit_named() {
        let timeout = PacingError::Timeout(Refusal::new(43_199_942, Reason::Day));
        assert_eq!(timeout.to_string(), "no permit in time (day limit: next call in 11 h 59 min)");
        let timeout = PacingError::Timeout(Refusal::new(37_000, Reason::RetryAfter));
        assert_eq!(timeout.to_string(), "no permit in time (retry_after: the server asked to wait; next call in 37 s)");
        let too_far = PacingError::BookingTooFar { wait_ms: 30 * 86_400_000 };
        assert_eq!(
            too_far.to_string(),
            "the next free slot is 30 days away, beyond the booking horizon of 24 days 20 h"
        );
    }
}
