//! The `Limiter` façade: one clock, one wait policy, one set of waiters and one set of statistics over any
//! [`Backend`]. Every public method and every `xg_limiter_*` export goes through it, whatever stores the state, so
//! decisions, waits and responses are counted here once.

use std::time::{Duration, Instant};

use super::Backend;
use super::clock::{Clock, ClockSource};
use super::config::{Limits, TenantLimits};
use super::memory::MemoryBackend;
use super::redis::{RedisBackend, RedisOptions};
use super::stats::{Counters, Stats, WaitEnd};
use super::types::{Decision, Feedback, PacingError, Permit, Refusal, Reservation, Snapshot, check_tenant};
use super::wait::{self, Step, Waiters, Wakeup};
use crate::vocab::Reason;

pub struct Limiter {
    backend: Box<dyn Backend>,
    clock: ClockSource,
    waiters: Waiters,
    counters: Counters,
}

/// Where one wait stands between its steps ([`Limiter::acquire_step`]): the caller keeps it from the first step to
/// the last (in C, the in/out fields of `xg_wait_step`), so the library knows when the wait began without keeping
/// per-wait state of its own, and the caller decides nothing: it hands back what the last step gave it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitProgress {
    /// When the wait's first refusal came, on the limiter's clock; `None` before it, and again once the wait ended.
    pub started_ms: Option<u64>,
    /// How long the wait has lasted through the last step (ms); after its last step, its whole length.
    pub waited_ms: u64,
}

impl Limiter {
    /// An in-process limiter.
    pub fn new(limits: Limits, clock: Clock) -> Result<Self, PacingError> {
        Ok(Self::with_backend(Box::new(MemoryBackend::new(limits)?), clock))
    }

    /// A limiter whose state every process sharing `options.key_prefix` shares, through Redis. `clock` is
    /// [`Clock::Monotonic`] in production (the store's clock decides; this one measures waits) and
    /// [`Clock::Manual`] for tests (the manual reading is the store's clock too).
    pub fn new_redis(limits: Limits, options: RedisOptions, clock: Clock) -> Result<Self, PacingError> {
        Ok(Self::with_backend(Box::new(RedisBackend::connect(limits, options, clock)?), clock))
    }

    /// A read-only view of a shared limiter's state (snapshot and peek; nothing is ever written, see
    /// [`RedisBackend::inspect`]).
    pub fn inspect_redis(options: RedisOptions, clock: Clock) -> Result<Self, PacingError> {
        Ok(Self::with_backend(Box::new(RedisBackend::inspect(options, clock)?), clock))
    }

    /// A limiter over any backend. `clock` is the clock `now` arguments and wait deadlines are read on.
    pub fn with_backend(backend: Box<dyn Backend>, clock: Clock) -> Self {
        Limiter { backend, clock: ClockSource::new(clock), waiters: Waiters::default(), counters: Counters::default() }
    }

    pub fn limits(&self) -> &Limits {
        self.backend.limits()
    }

    pub fn clock(&self) -> Clock {
        self.clock.kind()
    }

    /// Now on the limiter's clock, in milliseconds.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Moves a manual clock forward.
    pub fn advance(&self, ms: u64) -> Result<u64, PacingError> {
        let now = self.clock.advance(ms)?;
        self.waiters.wake();
        Ok(now)
    }

    /// Sets a manual clock; it never moves backwards.
    pub fn set_now(&self, now: u64) -> Result<(), PacingError> {
        self.clock.set_now(now)?;
        self.waiters.wake();
        Ok(())
    }

    /// Admits a call now, or says exactly how long to wait and why. A refusal changes nothing.
    pub fn acquire(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        let decision = self.backend.acquire(tenant, now)?;
        self.counters.decision(&decision);
        Ok(decision)
    }

    /// What `acquire` would answer now, without taking anything: `None` when it would be granted.
    pub fn peek(&self, tenant: &str, now: u64) -> Result<Option<Refusal>, PacingError> {
        Ok(match self.peek_decision(tenant, now)? {
            Decision::Granted(_) => None,
            Decision::Refused(refusal) => Some(refusal),
        })
    }

    /// As [`Limiter::peek`], as a decision: granted with permit id 0, flagged (`fallback`) when the failure policy
    /// decided because a shared store could not be reached.
    pub fn peek_decision(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        self.backend.peek(tenant, now)
    }

    /// Counts a call made without the limiter (it happened, so it counts even over a limit).
    pub fn record(&self, tenant: &str, now: u64) -> Result<(), PacingError> {
        self.backend.record(tenant, now)
    }

    /// Gives back a concurrency slot. Releasing twice, or after the permit expired, is `UnknownPermit`.
    pub fn release(&self, permit: Permit, now: u64) -> Result<(), PacingError> {
        self.backend.release(permit, now)?;
        if self.backend.sees_every_release() {
            self.waiters.wake();
        } else {
            self.waiters.wake_one();
        }
        Ok(())
    }

    /// Books the tenant's next free slot: the earliest instant every window and block allows, after the slots
    /// already booked (so reservations are served in order, without a queue). Concurrency is not reserved.
    pub fn reserve(&self, tenant: &str, now: u64) -> Result<Reservation, PacingError> {
        self.backend.reserve(tenant, now)
    }

    /// Frees a reserved slot whose time has not yet come.
    pub fn cancel(&self, reservation_id: u64, now: u64) -> Result<(), PacingError> {
        self.backend.cancel(reservation_id, now)?;
        self.waiters.wake();
        Ok(())
    }

    /// Takes the server's word: remaining counts raise local usage (never lower it), 429s block the scope they
    /// name, an offline organisation blocks its tenant, and an outage (503) blocks the app.
    pub fn observe(&self, tenant: &str, feedback: &Feedback, now: u64) -> Result<(), PacingError> {
        // Counted even when the store cannot take it (the response happened), but not for a tenant id refused.
        check_tenant(tenant)?;
        self.counters.observed(feedback);
        self.backend.observe(tenant, feedback, now)
    }

    /// Counts, remaining calls, blocks and permits for one tenant (the empty id: the tenantless scope).
    pub fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, PacingError> {
        self.backend.snapshot(tenant, now)
    }

    /// Sets (or with `None` clears) a tenant's own limits. Its recorded calls are kept.
    pub fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError> {
        self.backend.set_tenant_limits(tenant, limits)?;
        self.waiters.wake();
        Ok(())
    }

    /// The deadline `timeout_ms` from now on the limiter's clock, for [`Limiter::acquire_until`].
    pub fn deadline(&self, timeout_ms: u64) -> u64 {
        wait::deadline(self.now(), timeout_ms)
    }

    /// Blocks the calling thread until a permit is granted, or fails with the last refusal once `timeout_ms` (on
    /// the limiter's clock) would be exceeded (see [`wait::after_refusal`]), or with `Interrupted`.
    pub fn acquire_wait(&self, tenant: &str, timeout_ms: u64) -> Result<Permit, PacingError> {
        let mut progress = WaitProgress::default();
        match self.acquire_step(tenant, self.deadline(timeout_ms), None, &mut progress)? {
            Step::Granted(permit) => Ok(permit),
            // An unbounded wait never asks again; both mean it ended without a permit.
            Step::GiveUp(refusal) | Step::AskAgain { refusal, .. } => Err(PacingError::Timeout(refusal)),
        }
    }

    /// One bounded step of a wait with `deadline` on the limiter's clock: blocks at most `max_block` (None: until
    /// granted or given up; zero: not at all) and answers granted, give up, or ask again after `sleep_ms`. Bindings
    /// call it with a short block so their thread stays interruptible, or with none from async code, which then
    /// sleeps `sleep_ms`: for a concurrency slot that is a short, jittered poll (no release can wake such a caller),
    /// spaced out between waiters on a shared store (see [`wait::CONCURRENCY_POLL_MS`]).
    ///
    /// Each call stands alone, so the statistics see its first answer as a decision but no wait: a wait of several
    /// steps is [`Limiter::acquire_step`].
    pub fn acquire_until(&self, tenant: &str, deadline: u64, max_block: Option<Duration>) -> Result<Step, PacingError> {
        self.step_counted(tenant, deadline, max_block, &mut WaitProgress::default(), false)
    }

    /// [`Limiter::acquire_until`] as one step of a wait the caller tracks with `progress` (default at the first
    /// step, then as the previous step left it), so the statistics count the wait once, with its length: it starts
    /// at its first refusal and ends granted, given up, or interrupted (an error ends it too).
    pub fn acquire_step(
        &self,
        tenant: &str,
        deadline: u64,
        max_block: Option<Duration>,
        progress: &mut WaitProgress,
    ) -> Result<Step, PacingError> {
        self.step_counted(tenant, deadline, max_block, progress, true)
    }

    fn step_counted(
        &self,
        tenant: &str,
        deadline: u64,
        max_block: Option<Duration>,
        progress: &mut WaitProgress,
        counts_waits: bool,
    ) -> Result<Step, PacingError> {
        let step = self.step(tenant, deadline, max_block, progress, counts_waits);
        if let Some(started) = progress.started_ms {
            progress.waited_ms = self.now().saturating_sub(started);
            let end = match step {
                Ok(Step::AskAgain { .. }) => None,
                Ok(Step::Granted(_)) => Some(WaitEnd::Granted),
                Ok(Step::GiveUp(_)) => Some(WaitEnd::GaveUp),
                Err(_) => Some(WaitEnd::Interrupted),
            };
            if let Some(end) = end {
                progress.started_ms = None;
                if counts_waits {
                    self.counters.wait_ended(end, progress.waited_ms);
                }
            }
        }
        step
    }

    /// One ask within a wait. Its first answer and a grant after waiting are decisions; the re-asks in between are
    /// the wait's, not callers' (a minute wait polled every 100 ms would otherwise count 600 refusals). The first
    /// refusal starts the wait.
    fn ask_waiting(
        &self,
        tenant: &str,
        now: u64,
        progress: &mut WaitProgress,
        counts_waits: bool,
    ) -> Result<Decision, PacingError> {
        let decision = self.backend.acquire(tenant, now)?;
        match (&decision, progress.started_ms) {
            (Decision::Refused(_), Some(_)) => {}
            (Decision::Refused(_), None) => {
                self.counters.decision(&decision);
                progress.started_ms = Some(now);
                if counts_waits {
                    self.counters.wait_started();
                }
            }
            (Decision::Granted(_), _) => self.counters.decision(&decision),
        }
        Ok(decision)
    }

    fn step(
        &self,
        tenant: &str,
        deadline: u64,
        max_block: Option<Duration>,
        progress: &mut WaitProgress,
        counts_waits: bool,
    ) -> Result<Step, PacingError> {
        let _waiting = self.waiters.enter();
        let started = Instant::now();
        loop {
            if self.waiters.is_interrupted() {
                return Err(PacingError::Interrupted);
            }
            let generation = self.waiters.generation();
            let now = self.now();
            let refusal = match self.ask_waiting(tenant, now, progress, counts_waits)? {
                Decision::Granted(permit) => return Ok(Step::Granted(permit)),
                Decision::Refused(refusal) => refusal,
            };
            let wakeup = if refusal.reason == Reason::Concurrency {
                let blocking = max_block != Some(Duration::ZERO);
                self.waiters.concurrency_poll(tenant, blocking, self.backend.sees_every_release())
            } else {
                Wakeup::OnRelease
            };
            let step = wait::after_refusal_with(refusal, now, deadline, self.clock(), wakeup);
            let Step::AskAgain { sleep_ms, .. } = step else { return Ok(step) };
            let blocked = started.elapsed();
            let sleep_ms = match max_block {
                None => sleep_ms,
                Some(max) if blocked >= max => return Ok(step),
                Some(max) => sleep_ms.min(u64::try_from((max - blocked).as_millis()).unwrap_or(u64::MAX).max(1)),
            };
            self.waiters.sleep(generation, sleep_ms);
        }
    }

    /// Ends every wait on this limiter, now and later, with `Interrupted` (for shutdown: interrupt, join the waiting
    /// threads, then drop the limiter). Other operations keep working.
    pub fn interrupt(&self) {
        self.waiters.interrupt();
    }

    /// Approximate heap bytes held for one tenant's state (for benchmarks and diagnostics); 0 when evicted or
    /// kept outside this process.
    pub fn tenant_heap_bytes(&self, tenant: &str) -> usize {
        self.backend.tenant_heap_bytes(tenant)
    }

    /// Up to `max` tenants with state in the shared store (see [`Backend::tenants_with_state`]).
    pub fn tenants_with_state(&self, max: usize) -> Result<super::TenantListing, PacingError> {
        self.backend.tenants_with_state(max)
    }

    /// What this limiter decided, waited for and was told since it was made, and its store's figures.
    pub fn stats(&self) -> Stats {
        self.counters.read(self.backend.store_stats())
    }
}
