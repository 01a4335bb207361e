//! Pacing: exact rolling windows per tenant and per app, concurrency permits, and blocks from server feedback
//! (xero-reference §3, §7). Every decision takes an explicit `now` in milliseconds on the limiter's clock, so
//! tests run on a manual clock and never sleep.
//!
//! - [`engine`]: the pure decisions (windows, `earliest`, admission, concurrency, feedback → effects);
//! - a [`Backend`] stores the state and makes each whole operation atomic: [`memory`] (in-process, sharded) and
//!   [`redis`] (shared by every process of an app, one script per operation);
//! - [`wait`]: the one wait policy; [`Limiter`]: the façade every caller and every export uses, and counts
//!   ([`stats`]).

mod bounds;
mod clock;
mod config;
pub mod engine;
mod limiter;
pub mod memory;
pub mod redis;
pub mod stats;
mod types;
pub mod wait;
mod window;

pub use clock::Clock;
pub use config::{Limits, MAX_WINDOW_SPAN_MS, TenantLimits, WindowLimit};
pub use engine::Effects;
pub use limiter::{Limiter, WaitProgress};
pub use memory::MemoryBackend;
pub use redis::{RedisBackend, RedisOptions};
pub use stats::{Stats, StoreStats, WaitEnd, WaitStats};
pub use types::{
    Decision, Feedback, MAX_APP_BOOKINGS, MAX_BOOKING_AHEAD_MS, MAX_BOOKINGS, MAX_TENANT_ID_BYTES, PacingError, Permit,
    Refusal, Reservation, Snapshot, WindowSnapshot,
};
pub use wait::Step;

/// Where pacing state lives and how each operation on it is made atomic. Operations are whole (not "read a
/// window, write a window"), so a backend that is a network away decides each in one round trip. `now` is the
/// caller's reading of the limiter's clock; a backend with a clock of its own may use that instead.
pub trait Backend: Send + Sync {
    /// The limits this backend enforces (the defaults; tenants may have their own).
    fn limits(&self) -> &Limits;
    /// Whether every release is made through this process, so a waiter here can be woken by it.
    fn sees_every_release(&self) -> bool;
    fn acquire(&self, tenant: &str, now: u64) -> Result<Decision, PacingError>;
    /// What acquire would answer, changing nothing: granted with permit id 0 (and the failure policy's flag when
    /// it decided), or the refusal.
    fn peek(&self, tenant: &str, now: u64) -> Result<Decision, PacingError>;
    fn record(&self, tenant: &str, now: u64) -> Result<(), PacingError>;
    fn release(&self, permit: Permit, now: u64) -> Result<(), PacingError>;
    fn reserve(&self, tenant: &str, now: u64) -> Result<Reservation, PacingError>;
    fn cancel(&self, reservation_id: u64, now: u64) -> Result<(), PacingError>;
    fn observe(&self, tenant: &str, feedback: &Feedback, now: u64) -> Result<(), PacingError>;
    fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, PacingError>;
    fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError>;
    /// Heap bytes this process holds for the tenant (diagnostics; 0 where state lives elsewhere).
    fn tenant_heap_bytes(&self, _tenant: &str) -> usize {
        0
    }
    /// The store's figures: operations, failures by kind, the breaker, replays pending (see [`StoreStats`]). A
    /// backend without a store keeps this default.
    fn store_stats(&self) -> StoreStats {
        StoreStats::NONE
    }
    /// Up to `max` tenants that have state in the store, for operators' views (`xeroguard snapshot --all`, `top`);
    /// never on a call's path. A backend that keeps its state in this process keeps this default: not supported.
    fn tenants_with_state(&self, _max: usize) -> Result<TenantListing, PacingError> {
        Err(PacingError::InvalidOptions("only a shared store (Redis) lists its tenants".into()))
    }
}

/// What [`Backend::tenants_with_state`] found: tenant ids, in no particular order, and whether that is all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantListing {
    pub tenants: Vec<String>,
    /// Every tenant with state is listed: the scan went through the whole store. False when it stopped at `max`
    /// tenants, or at the backend's bound on scan steps, before the end.
    pub complete: bool,
    /// Scan steps taken (round trips to the store).
    pub scan_steps: u32,
}
