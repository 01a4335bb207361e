//! Pacing: exact rolling windows per tenant and per app, concurrency permits, and blocks from server feedback
//! (xero-reference §3, §7). Every decision takes an explicit `now` in milliseconds on the limiter's clock, so
//! tests run on a manual clock and never sleep.

mod config;
mod limiter;
mod window;

pub use config::{Limits, TenantLimits, WindowLimit};
pub use limiter::{
    Clock, Decision, Feedback, Limiter, MAX_TENANT_ID_BYTES, PacingError, Permit, Refusal, Reservation, Snapshot,
    WindowSnapshot,
};
