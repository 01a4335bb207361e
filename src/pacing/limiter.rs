//! The thread-safe limiter. Tenants live in shards (one lock each) so independent tenants do not contend; the app
//! window has its own lock, always taken after a shard lock, so it stays exact. Time never runs backwards inside:
//! each operation's `now` is raised to the latest `now` any operation has used.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::fast::RandomState;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::config::{Limits, TenantLimits, WindowLimit};
use super::window::Window;
use crate::classify::Classification;
use crate::vocab::{Category, RateLimitProblem, Reason};

const SHARD_BITS: u32 = 5;
const SHARDS: usize = 1 << SHARD_BITS;
/// How often (in limiter time) a shard looks for idle tenants to evict, on the call path. A tenant turns idle only
/// when its day window empties, so a minute is prompt enough and keeps the sweep's cost per call tiny.
const SWEEP_INTERVAL_MS: u64 = 60_000;
/// Tenant ids are Xero GUIDs; anything much longer is a caller's bug, refused before it costs memory.
pub const MAX_TENANT_ID_BYTES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system's monotonic clock, from the limiter's creation.
    Monotonic,
    /// Time moves only when told (`advance`, `set_now`): for tests.
    Manual,
}

/// A concurrency slot held by one call in flight. Id 0 is a tenantless call's, which holds no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permit {
    pub id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Exactly how long until the call would be admitted, if nothing else changes.
    pub wait_ms: u64,
    pub reason: Reason,
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
    /// `acquire_wait` could not be granted in time; the last refusal says why.
    Timeout(Refusal),
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
            PacingError::Timeout(r) => write!(f, "timed out: would need {} ms more ({})", r.wait_ms, r.reason),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    until: u64,
    reason: Reason,
}

/// Keeps the later of two blocks.
fn extend_block(slot: &mut Option<Block>, until: u64, reason: Reason) {
    if slot.is_none_or(|b| until > b.until) {
        *slot = Some(Block { until, reason });
    }
}

/// Maps keyed by tenant ids the app itself supplies: a fast seeded hash, no need for SipHash's DoS resistance.
type FastMap<K, V> = HashMap<K, V, RandomState>;

#[derive(Debug, Default)]
struct TenantState {
    /// The tenant id, shared with the map key and the permit table (no allocation per permit).
    name: Arc<str>,
    minute: Window,
    day: Window,
    /// (permit id, expiry) of calls in flight.
    in_flight: Vec<(u64, u64)>,
    block: Option<Block>,
}

impl TenantState {
    fn refresh(&mut self, now: u64, limits: &Limits) {
        self.minute.prune(now, limits.tenant_minute.span());
        self.day.prune(now, limits.tenant_day.span());
        self.in_flight.retain(|&(_, expires)| expires > now);
        self.block = self.block.filter(|b| b.until > now);
    }

    /// Idle after `refresh`: nothing it holds can affect a decision any more.
    fn is_idle(&self) -> bool {
        self.minute.is_empty() && self.day.is_empty() && self.in_flight.is_empty() && self.block.is_none()
    }
}

#[derive(Default)]
struct Shard {
    tenants: FastMap<Arc<str>, TenantState>,
    overrides: FastMap<Box<str>, TenantLimits>,
    /// permit id → (tenant, expiry)
    permits: FastMap<u64, (Arc<str>, u64)>,
    /// reservation id → (tenant, booked instant)
    reservations: FastMap<u64, (Arc<str>, u64)>,
    next_sweep: u64,
    /// The latest instant any operation on this shard used (see `later`).
    floor: u64,
}

#[derive(Default)]
struct App {
    minute: Window,
    block: Option<Block>,
    /// The latest instant any operation on the app window used (see `later`).
    floor: u64,
}

/// Time never runs backwards for a window: each lock keeps the latest instant its holders used, and an operation
/// decides at no earlier instant than that, read while it holds the lock. (An instant fixed before taking the
/// lock could be older than one a previous holder already pruned the window to, and admit a call too many.)
fn later(floor: &mut u64, now: u64) -> u64 {
    *floor = (*floor).max(now);
    *floor
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

/// A tenant's shard and the app window, locked, for one operation at `now`.
struct Entered<'l> {
    index: usize,
    now: u64,
    limits: TenantLimits,
    shard: parking_lot::MutexGuard<'l, Shard>,
    app: parking_lot::MutexGuard<'l, App>,
}

impl Entered<'_> {
    /// The tenant's state and the app window, borrowed together.
    fn parts(&mut self, tenant: &str) -> (&mut TenantState, &mut App) {
        (self.shard.tenants.get_mut(tenant).expect("created by enter"), &mut self.app)
    }
}

struct ClockSource {
    kind: Clock,
    origin: Instant,
    manual_now: AtomicU64,
}

pub struct Limiter {
    limits: Limits,
    clock: ClockSource,
    shards: Box<[Mutex<Shard>]>,
    app: Mutex<App>,
    tenants: AtomicUsize,
    next_id: AtomicU64,
    hasher: RandomState,
    /// Bumped and signalled whenever capacity may have been freed, for `acquire_wait`.
    wake: (Mutex<u64>, Condvar),
    /// Threads inside `acquire_wait`; with none, a release signals nobody.
    waiters: AtomicUsize,
}

/// Effective limits of one scope: a tenant, or the tenantless scope (empty id), which only the app window limits.
fn tenant_limits(shard: &Shard, tenant: &str, limits: &Limits) -> TenantLimits {
    if tenant.is_empty() {
        return TenantLimits { minute_limit: 0, day_limit: 0, concurrency: 0 };
    }
    shard.overrides.get(tenant).copied().unwrap_or_else(|| limits.tenant())
}

impl Limiter {
    pub fn new(limits: Limits, clock: Clock) -> Result<Self, PacingError> {
        limits.validate().map_err(PacingError::InvalidLimits)?;
        Ok(Limiter {
            limits,
            clock: ClockSource { kind: clock, origin: Instant::now(), manual_now: AtomicU64::new(0) },
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            app: Mutex::new(App::default()),
            tenants: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            hasher: RandomState::default(),
            wake: (Mutex::new(0), Condvar::new()),
            waiters: AtomicUsize::new(0),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn clock(&self) -> Clock {
        self.clock.kind
    }

    /// Now on the limiter's clock, in milliseconds.
    pub fn now(&self) -> u64 {
        match self.clock.kind {
            Clock::Manual => self.clock.manual_now.load(Ordering::Acquire),
            Clock::Monotonic => u64::try_from(self.clock.origin.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Moves a manual clock forward.
    pub fn advance(&self, ms: u64) -> Result<u64, PacingError> {
        self.require_manual()?;
        let now = self.clock.manual_now.fetch_add(ms, Ordering::AcqRel).saturating_add(ms);
        self.wake_waiters();
        Ok(now)
    }

    /// Sets a manual clock; it never moves backwards.
    pub fn set_now(&self, now: u64) -> Result<(), PacingError> {
        self.require_manual()?;
        self.clock
            .manual_now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| (now >= current).then_some(now))
            .map_err(|_| PacingError::ClockBackwards)?;
        self.wake_waiters();
        Ok(())
    }

    fn require_manual(&self) -> Result<(), PacingError> {
        match self.clock.kind {
            Clock::Manual => Ok(()),
            Clock::Monotonic => Err(PacingError::NotManualClock),
        }
    }

    fn wake_waiters(&self) {
        // SeqCst pairs with the waiter's increment: either it sees our change, or we see it waiting.
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        let (generation, signal) = &self.wake;
        *generation.lock() += 1;
        signal.notify_all();
    }

    fn shard_index(&self, tenant: &str) -> usize {
        (self.hasher.hash_one(tenant) as usize) & (SHARDS - 1)
    }

    fn new_id(&self, shard: usize) -> u64 {
        (self.next_id.fetch_add(1, Ordering::Relaxed) << SHARD_BITS) | shard as u64
    }

    fn check_tenant(tenant: &str) -> Result<(), PacingError> {
        if tenant.len() > MAX_TENANT_ID_BYTES { Err(PacingError::TenantIdTooLong) } else { Ok(()) }
    }

    /// Locks shard `index` and moves its time to `now` (see `later`).
    fn lock_index(&self, index: usize, now: u64) -> (parking_lot::MutexGuard<'_, Shard>, u64) {
        let mut shard = self.shards[index].lock();
        let now = later(&mut shard.floor, now);
        (shard, now)
    }

    /// Locks the tenant's shard at `now`, sweeping its idle tenants when due.
    fn lock_shard(&self, tenant: &str, now: u64) -> (usize, parking_lot::MutexGuard<'_, Shard>, u64) {
        let index = self.shard_index(tenant);
        let (mut shard, now) = self.lock_index(index, now);
        if now >= shard.next_sweep {
            self.sweep(&mut shard, now);
        }
        (index, shard, now)
    }

    /// Then locks the app window (always after a shard) and returns the instant the operation decides at: the
    /// latest of both locks' floors, which the shard keeps too.
    fn lock_app<'a>(&'a self, shard: &mut Shard, now: u64) -> (parking_lot::MutexGuard<'a, App>, u64) {
        let mut app = self.app.lock();
        let now = later(&mut app.floor, now);
        shard.floor = now;
        (app, now)
    }

    fn sweep(&self, shard: &mut Shard, now: u64) {
        later(&mut shard.floor, now); // also when sweeping another thread's shard at the tenant cap
        shard.permits.retain(|_, (_, expires)| *expires > now);
        shard.reservations.retain(|_, (_, at)| *at > now);
        let before = shard.tenants.len();
        shard.tenants.retain(|_, state| {
            state.refresh(now, &self.limits);
            !state.is_idle()
        });
        self.tenants.fetch_sub(before - shard.tenants.len(), Ordering::AcqRel);
        // Idle tenants should cost no memory: give back table space once most of it is empty.
        if shard.tenants.is_empty() || shard.tenants.capacity() > 4 * shard.tenants.len() + 16 {
            shard.tenants.shrink_to_fit();
        }
        shard.next_sweep = now.saturating_add(SWEEP_INTERVAL_MS);
    }

    /// The tenant's state, created if new (within `max_tenants`), refreshed to `now`.
    fn state<'s>(&self, shard: &'s mut Shard, tenant: &str, now: u64) -> Result<&'s mut TenantState, PacingError> {
        if !shard.tenants.contains_key(tenant) {
            let cap = self.limits.max_tenants as usize;
            if cap > 0 && self.tenants.load(Ordering::Acquire) >= cap {
                self.sweep(shard, now);
                // Other shards too, without waiting: this thread holds a shard lock, so blocking could deadlock.
                for other in self.shards.iter() {
                    if let Some(mut other) = other.try_lock() {
                        self.sweep(&mut other, now);
                    }
                }
                if self.tenants.load(Ordering::Acquire) >= cap {
                    return Err(PacingError::TooManyTenants);
                }
            }
            self.tenants.fetch_add(1, Ordering::AcqRel);
            let name: Arc<str> = tenant.into();
            shard.tenants.insert(Arc::clone(&name), TenantState { name, ..TenantState::default() });
        }
        let state = shard.tenants.get_mut(tenant).expect("inserted above");
        state.refresh(now, &self.limits);
        Ok(state)
    }

    /// The earliest instant ≥ `now` at which every constraint holds, and the constraint that set it.
    fn earliest(
        &self,
        limits: &TenantLimits,
        state: &TenantState,
        app: &App,
        now: u64,
        with_concurrency: bool,
    ) -> (u64, Option<Reason>) {
        let (minute, day, app_minute) = (self.limits.tenant_minute, self.limits.tenant_day, self.limits.app_minute);
        let fit = |w: &Window, limit: u32, spec: WindowLimit, t: u64| w.earliest(t, limit as usize, spec.span());
        let block_end = |b: Option<Block>, t: u64| b.filter(|b| b.until > t).map_or(t, |b| b.until);
        let mut t = now;
        let mut reason = None;
        loop {
            // In priority order: on a tie the first named is the reason reported.
            let constraints = [
                (block_end(app.block, t), app.block.map(|b| b.reason)),
                (block_end(state.block, t), state.block.map(|b| b.reason)),
                (fit(&state.day, limits.day_limit, day, t), Some(Reason::Day)),
                (fit(&app.minute, app_minute.limit, app_minute, t), Some(Reason::AppMinute)),
                (fit(&state.minute, limits.minute_limit, minute, t), Some(Reason::Minute)),
                (
                    if with_concurrency { concurrency_free_at(&state.in_flight, limits.concurrency, t) } else { t },
                    Some(Reason::Concurrency),
                ),
            ];
            let mut next = t;
            let mut why = None;
            for (at, r) in constraints {
                if at > next {
                    next = at;
                    why = r;
                }
            }
            if next == t {
                return (t, reason);
            }
            t = next;
            reason = why;
        }
    }

    /// Locks the tenant's shard and the app window, with the tenant's state created and every window pruned to
    /// `now`.
    fn enter(&self, tenant: &str, now: u64) -> Result<Entered<'_>, PacingError> {
        Self::check_tenant(tenant)?;
        let (index, mut shard, now) = self.lock_shard(tenant, now);
        let limits = tenant_limits(&shard, tenant, &self.limits);
        self.state(&mut shard, tenant, now)?;
        // The tenant's windows were pruned to the shard's instant; deciding at a later one is safe.
        let (mut app, now) = self.lock_app(&mut shard, now);
        app.minute.prune(now, self.limits.app_minute.span());
        Ok(Entered { index, now, limits, shard, app })
    }

    fn record_call(&self, state: &mut TenantState, limits: &TenantLimits, app: &mut App, at: u64, now: u64) {
        state.minute.insert(at, limits.minute_limit as usize, now);
        state.day.insert(at, limits.day_limit as usize, now);
        app.minute.insert(at, self.limits.app_minute.cap(), now);
    }

    /// Admits a call now, or says exactly how long to wait and why. A refusal changes nothing.
    pub fn acquire(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        let mut e = self.enter(tenant, now)?;
        let (now, limits, index) = (e.now, e.limits, e.index);
        let (state, app) = e.parts(tenant);
        let (at, reason) = self.earliest(&limits, state, app, now, true);
        if at > now {
            let reason = reason.expect("a later instant always has a reason");
            return Ok(Decision::Refused(Refusal { wait_ms: at - now, reason }));
        }
        self.record_call(state, &limits, app, now, now);
        if tenant.is_empty() {
            return Ok(Decision::Granted(Permit { id: 0 }));
        }
        let id = self.new_id(index);
        let expires = now.saturating_add(self.limits.permit_timeout_ms);
        state.in_flight.push((id, expires));
        let name = Arc::clone(&state.name);
        e.shard.permits.insert(id, (name, expires));
        Ok(Decision::Granted(Permit { id }))
    }

    /// What `acquire` would answer now, without taking anything: `None` when it would be granted.
    pub fn peek(&self, tenant: &str, now: u64) -> Result<Option<Refusal>, PacingError> {
        self.view(tenant, now, |now, limits, state, app| {
            let (at, reason) = self.earliest(limits, state, app, now, true);
            reason.filter(|_| at > now).map(|reason| Refusal { wait_ms: at - now, reason })
        })
    }

    /// Runs `read` on the tenant's state (an empty one if unknown: reading creates nothing) and the app window.
    fn view<R>(
        &self,
        tenant: &str,
        now: u64,
        read: impl FnOnce(u64, &TenantLimits, &TenantState, &App) -> R,
    ) -> Result<R, PacingError> {
        Self::check_tenant(tenant)?;
        let (_, mut shard, now) = self.lock_shard(tenant, now);
        let (app, now) = self.lock_app(&mut shard, now);
        let limits = tenant_limits(&shard, tenant, &self.limits);
        let empty = TenantState::default();
        let state = shard.tenants.get(tenant).unwrap_or(&empty);
        Ok(read(now, &limits, state, &app))
    }

    /// Counts a call made without the limiter (it happened, so it counts even over a limit).
    pub fn record(&self, tenant: &str, now: u64) -> Result<(), PacingError> {
        let mut e = self.enter(tenant, now)?;
        let (now, limits) = (e.now, e.limits);
        let (state, app) = e.parts(tenant);
        self.record_call(state, &limits, app, now, now);
        Ok(())
    }

    /// Gives back a concurrency slot. Releasing twice, or after the permit expired, is `UnknownPermit`.
    pub fn release(&self, permit: Permit, now: u64) -> Result<(), PacingError> {
        if permit.id == 0 {
            return Ok(());
        }
        let (mut shard, now) = self.lock_index((permit.id as usize) & (SHARDS - 1), now);
        let (tenant, expires) = shard.permits.remove(&permit.id).ok_or(PacingError::UnknownPermit)?;
        let held = shard.tenants.get_mut(&tenant).and_then(|state| {
            let at = state.in_flight.iter().position(|&(id, _)| id == permit.id)?;
            state.in_flight.swap_remove(at);
            Some(())
        });
        drop(shard);
        if held.is_none() || expires <= now {
            return Err(PacingError::UnknownPermit);
        }
        self.wake_waiters();
        Ok(())
    }

    /// Books the tenant's next free slot: the earliest instant every window and block allows, after the slots
    /// already booked (so reservations are served in order, without a queue). Concurrency is not reserved.
    pub fn reserve(&self, tenant: &str, now: u64) -> Result<Reservation, PacingError> {
        let mut e = self.enter(tenant, now)?;
        let (now, limits, index) = (e.now, e.limits, e.index);
        let (state, app) = e.parts(tenant);
        let (at, _) = self.earliest(&limits, state, app, now, false);
        self.record_call(state, &limits, app, at, now);
        let name = Arc::clone(&state.name);
        let id = self.new_id(index);
        e.shard.reservations.insert(id, (name, at));
        Ok(Reservation { id, at_ms: at, wait_ms: at - now })
    }

    /// Frees a reserved slot whose time has not yet come.
    pub fn cancel(&self, reservation_id: u64, now: u64) -> Result<(), PacingError> {
        let (mut guard, now) = self.lock_index((reservation_id as usize) & (SHARDS - 1), now);
        let shard = &mut *guard;
        let (mut app, now) = self.lock_app(shard, now);
        let (tenant, at) = shard.reservations.remove(&reservation_id).ok_or(PacingError::UnknownReservation)?;
        if at <= now {
            return Err(PacingError::UnknownReservation);
        }
        if let Some(state) = shard.tenants.get_mut(&tenant) {
            state.minute.remove(at);
            state.day.remove(at);
        }
        app.minute.remove(at);
        drop(app);
        drop(guard);
        self.wake_waiters();
        Ok(())
    }

    /// Takes the server's word: remaining counts raise local usage (never lower it), 429s block the scope they
    /// name, an offline organisation blocks its tenant, and an outage (503) blocks the app.
    pub fn observe(&self, tenant: &str, feedback: &Feedback, now: u64) -> Result<(), PacingError> {
        let mut e = self.enter(tenant, now)?;
        let (now, limits) = (e.now, e.limits);
        let (state, app) = e.parts(tenant);

        let wait = feedback.recommended_wait_ms.unwrap_or(0);
        let until = now.saturating_add(wait);
        let limited = (feedback.category == Category::RateLimited)
            .then(|| feedback.rate_limit_problem.unwrap_or(RateLimitProblem::Unknown));
        match (feedback.category, limited) {
            (_, Some(RateLimitProblem::AppMinute)) => extend_block(&mut app.block, until, Reason::RetryAfter),
            (_, Some(_)) => extend_block(&mut state.block, until, Reason::RetryAfter),
            (Category::OrganisationOffline, _) => extend_block(&mut state.block, until, Reason::OrganisationOffline),
            (Category::ServiceUnavailable, _) if feedback.status == 503 => {
                extend_block(&mut app.block, until, Reason::Outage)
            }
            _ => {}
        }

        // The window a 429 names is covered by its block; phantoms there would outlast the server's Retry-After.
        let covered = |p: RateLimitProblem| limited == Some(p);
        let spec = &self.limits;
        if !covered(RateLimitProblem::Minute) {
            add_phantoms(&mut state.minute, limits.minute_limit, spec.tenant_minute, feedback.minute_remaining, now);
        }
        if !covered(RateLimitProblem::Day) {
            add_phantoms(&mut state.day, limits.day_limit, spec.tenant_day, feedback.day_remaining, now);
        }
        if !covered(RateLimitProblem::AppMinute) {
            add_phantoms(&mut app.minute, spec.app_minute.limit, spec.app_minute, feedback.app_minute_remaining, now);
        }
        Ok(())
    }

    /// Counts, remaining calls, blocks and permits for one tenant (the empty id: the tenantless scope).
    pub fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, PacingError> {
        self.view(tenant, now, |now, limits, state, app| self.snapshot_of(tenant, now, limits, state, app))
    }

    fn snapshot_of(&self, tenant: &str, now: u64, limits: &TenantLimits, state: &TenantState, app: &App) -> Snapshot {
        let (at, reason) = self.earliest(limits, state, app, now, true);
        let window = |w: &Window, limit: u32, spec: WindowLimit| {
            let count = u32::try_from(w.count_at(now, spec.span())).unwrap_or(u32::MAX);
            WindowSnapshot {
                limit,
                window_ms: spec.window_ms,
                count,
                remaining: limit.saturating_sub(count),
                booked: u32::try_from(w.booked_after(now)).unwrap_or(u32::MAX),
            }
        };
        let live = |b: Option<Block>| b.filter(|b| b.until > now);
        Snapshot {
            tenant: tenant.to_owned(),
            now_ms: now,
            minute: window(&state.minute, limits.minute_limit, self.limits.tenant_minute),
            day: window(&state.day, limits.day_limit, self.limits.tenant_day),
            app_minute: window(&app.minute, self.limits.app_minute.limit, self.limits.app_minute),
            in_flight: state.in_flight.iter().filter(|&&(_, expires)| expires > now).count() as u32,
            concurrency_limit: limits.concurrency,
            blocked_until_ms: live(state.block).map(|b| b.until),
            block_reason: live(state.block).map(|b| b.reason),
            app_blocked_until_ms: live(app.block).map(|b| b.until),
            app_block_reason: live(app.block).map(|b| b.reason),
            wait_ms: at - now,
            wait_reason: reason.filter(|_| at > now),
            tenants_tracked: self.tenants.load(Ordering::Acquire) as u64,
        }
    }

    /// Sets (or with `None` clears) a tenant's own limits. Its recorded calls are kept.
    pub fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError> {
        Self::check_tenant(tenant)?;
        let mut shard = self.shards[self.shard_index(tenant)].lock();
        match limits {
            Some(limits) => shard.overrides.insert(tenant.into(), limits),
            None => shard.overrides.remove(tenant),
        };
        drop(shard);
        self.wake_waiters();
        Ok(())
    }

    /// Blocks the calling thread until a permit is granted, or fails with the last refusal once `timeout_ms`
    /// (on the limiter's clock) would be exceeded. A refusal whose wait ends beyond the deadline fails at once,
    /// except for concurrency, where a release may come sooner.
    pub fn acquire_wait(&self, tenant: &str, timeout_ms: u64) -> Result<Permit, PacingError> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiters);
        let deadline = self.now().saturating_add(timeout_ms);
        loop {
            let generation = *self.wake.0.lock();
            let now = self.now();
            let refusal = match self.acquire(tenant, now)? {
                Decision::Granted(permit) => return Ok(permit),
                Decision::Refused(refusal) => refusal,
            };
            let remaining = deadline.saturating_sub(now);
            if remaining == 0 || (refusal.wait_ms > remaining && refusal.reason != Reason::Concurrency) {
                return Err(PacingError::Timeout(refusal));
            }
            // On a manual clock, time moves only by `advance`, which signals; re-check now and then regardless.
            let sleep_ms = match self.clock.kind {
                Clock::Monotonic => refusal.wait_ms.min(remaining).max(1),
                Clock::Manual => 50,
            };
            let mut current = self.wake.0.lock();
            if *current == generation {
                self.wake.1.wait_for(&mut current, Duration::from_millis(sleep_ms));
            }
        }
    }

    /// Approximate heap bytes held for one tenant's state (for benchmarks and diagnostics); 0 when evicted.
    pub fn tenant_heap_bytes(&self, tenant: &str) -> usize {
        let shard = self.shards[self.shard_index(tenant)].lock();
        shard
            .tenants
            .get(tenant)
            .map_or(0, |s| s.minute.heap_bytes() + s.day.heap_bytes() + s.in_flight.capacity() * 16 + tenant.len())
    }
}

/// When the tenant's in-flight count drops below `limit` by expiry alone (0 means unlimited).
fn concurrency_free_at(in_flight: &[(u64, u64)], limit: u32, t: u64) -> u64 {
    let limit = limit as usize;
    if limit == 0 {
        return t;
    }
    let mut active: Vec<u64> = in_flight.iter().map(|&(_, expires)| expires).filter(|&e| e > t).collect();
    if active.len() < limit {
        return t;
    }
    active.sort_unstable();
    active[active.len() - limit]
}

/// Adds calls the server saw and we did not, at `now` (the conservative place: they expire last).
fn add_phantoms(window: &mut Window, limit: u32, spec: WindowLimit, remaining: Option<u32>, now: u64) {
    let Some(remaining) = remaining else { return };
    if limit == 0 {
        return;
    }
    let server_used = limit.saturating_sub(remaining) as usize;
    let local = window.count_at(now, spec.window_ms);
    for _ in local..server_used {
        window.insert(now, limit as usize, now);
    }
}
