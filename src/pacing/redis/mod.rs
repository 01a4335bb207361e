//! The shared backend: the same windows, permits, blocks and limits for every process and machine of an app, kept
//! in Redis (or Valkey) and decided by the Lua engine on the server's clock (design.md "Shared pacing on Redis").
//! One round trip per decision; every key of an app shares one hash tag, so a Redis Cluster never answers
//! CROSSSLOT; every key but the limits has a TTL.
//!
//! - `scripts`: the engine (engine.lua mirrors `engine.rs` and `window.rs`; its numbers are generated from Rust),
//!   loaded as a Functions library on Redis 7, sent as scripts on Redis 6.
//! - `protocol`: which operation, its KEYS and ARGV, what its reply means; the conventions every call follows.
//! - `fallback`: the failure policy, when the store cannot decide.
//! - `conn`: connections, deadlines, the store's figures; `breaker`: when the store is not asked. `keys`: key names.
//! - `pending`: releases, cancels and unconfirmed acquires the store must still be told, replayed when it answers.
//! - this module: the [`Backend`], joining them: the permits and reservations this process holds, the policy's
//!   decisions when a call failed, the local share's calls counted into the store when it answers again.
//!
//! Why a Lua engine mirroring the Rust one, by measurement (bench/redis_ops.py on one Redis 7.0, BENCHMARKS.md):
//! a paced call is one FCALL (TIME, one HMGET, one HSET: the common grant is decided off small envelopes the engine
//! writes with the scopes' cold fields, and touches only the hot fields; see acquire.lua) and an HDEL for the
//! release. Redis's own share of that is fixed: an FCALL that returns at once, TIME, an HMGET and an HSET of small
//! fields and the HDEL cost 67,000 instructions (`bench/redis_profile.py floor`, callgrind) before any rule is
//! applied, against 85,000 for PyrateLimiter's whole `try_acquire` (the client's clock, no permit to release); a
//! paced call costs about 120,000 (`redis_profile.py compare --instructions`; 162,000 before the envelopes), 1.2-1.3
//! times PyrateLimiter's Redis CPU in the same runs. Sent as scripts
//! (Redis 6, or no `function|load` in the ACL) the engine's functions are defined again on every call: about three
//! times the CPU.
//! The alternatives: a Redis module in Rust would be one engine, but managed Redis services (ElastiCache,
//! Memorystore, Azure Cache) do not load modules; Rust deciding over the state read as blobs and written back by a
//! compare-and-set script (the bench's `blob_alternative`) took 90-100 µs of Redis CPU, two round trips and 121 KB
//! moved per decision at Xero's limits, with every process of the app contending on the one app blob.
//!
//! Failures are bounded: each operation has a deadline covering connect, write and read; the breaker skips Redis for
//! a cooldown after a few failures in a row; a retried mutation is never counted twice (see `protocol`). What
//! happens while Redis is unreachable is the limiter's [`FailurePolicy`]; nothing given back is lost meanwhile: a
//! release or cancel the store did not confirm, and the permit of an acquire whose reply never came, wait in the
//! pending queue and are replayed (a bounded batch before each operation) as soon as the store answers, so no slot
//! stays taken by a permit nobody holds. A release never fails for an outage: it is deferred (`replays_pending` in
//! the store's figures counts what waits).

mod breaker;
mod conn;
mod fallback;
mod inspect;
mod keys;
mod numbers;
mod pending;
mod protocol;
mod scripts;
mod stored;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use self::conn::{Store, StoreFailure, op_id};
use self::fallback::{Fallback, LOCAL_ID};
use self::keys::KeySpace;
pub use self::keys::MAX_PREFIX_BYTES;
use self::pending::{Batch, Pending, PendingQueue};
use self::protocol::{Acquired, Booked, Protocol, failure};
use super::Backend;
use super::clock::Clock;
use super::config::{Limits, TenantLimits};
use super::engine::Effects;
use super::stats::StoreStats;
use super::types::{Decision, Feedback, PacingError, Permit, Reservation, Snapshot, check_tenant};
use crate::vocab::FailurePolicy;

/// How to reach the store and what to do without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), `redis+unix:///path/to/socket`, or a Redis
    /// Cluster as `redis+cluster://host:port,host:port` (`rediss+cluster://` with TLS).
    pub url: String,
    /// Every key of this limiter starts with `xg:{key_prefix}:`. Processes that share a prefix share their limits;
    /// use one per Xero app. Up to 128 characters, without braces, spaces or control characters.
    pub key_prefix: String,
    /// The longest one operation may take (connect, write, read, one retry); then the failure policy decides.
    pub deadline: Duration,
    /// After 3 operations in a row failed the store is not asked again for this long (the failure policy decides
    /// meanwhile); then one probe goes, and its success closes the breaker.
    pub breaker_cooldown: Duration,
    pub on_store_error: FailurePolicy,
    /// For [`FailurePolicy::Local`]: how many processes share the limits; each keeps limit ÷ workers (at least 1).
    pub workers: u32,
    /// Write this limiter's limits to the store even if it holds others (every process adopts them at its next
    /// call). Otherwise these only initialise an empty prefix, and a prefix holding other limits is refused
    /// ([`PacingError::LimitsDiffer`]) unless `adopt_stored_limits`.
    pub replace_limits: bool,
    /// Pace by the limits stored for the prefix when they differ from this limiter's ([`Limiter::limits`] then
    /// reports them). Not with `replace_limits`.
    ///
    /// [`Limiter::limits`]: crate::pacing::Limiter::limits
    pub adopt_stored_limits: bool,
    /// A PEM file of the certificate authorities to trust for `rediss://` (default: the system's roots).
    pub tls_ca_file: Option<String>,
    /// Load the engine as a Redis Functions library (Redis 7+) when the server and its ACL allow `FUNCTION LOAD`;
    /// false sends it as scripts (EVALSHA), as it is sent to Redis 6 anyway.
    pub functions: bool,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>, key_prefix: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            key_prefix: key_prefix.into(),
            deadline: Duration::from_millis(250),
            breaker_cooldown: Duration::from_secs(1),
            on_store_error: FailurePolicy::Closed,
            workers: 1,
            replace_limits: false,
            adopt_stored_limits: false,
            tls_ca_file: None,
            functions: true,
        }
    }
}

/// Bookkeeping of this process's permits and reservations is swept of expired entries this often (in entries).
const SWEEP_EVERY: u32 = 1024;

struct Held {
    tenant: Arc<str>,
    /// On the caller's clock: a permit's expiry, a reservation's instant.
    until: u64,
}

/// The shared backend. `Limits::max_tenants` does not apply: idle tenants leave the store by their keys' TTLs, and
/// snapshots report `tenants_tracked` 0 (counting them would mean scanning the keyspace).
pub struct RedisBackend {
    protocol: Protocol,
    fallback: Fallback,
    permits: Mutex<HashMap<u64, Held>>,
    /// Reservation id → the tenant and the booked instant on the store's clock.
    reservations: Mutex<HashMap<u64, (Held, u64)>>,
    inserts: AtomicU32,
    pending: PendingQueue,
    /// How the store is made ready for this limiter (see [`Self::start`]).
    startup: Startup,
    /// The engine's form was chosen / the store was made ready: false only for a limiter created while the store
    /// was down, until it answers (and, for `started`, holds limits that agree with this limiter's).
    form_chosen: AtomicBool,
    started: AtomicBool,
}

/// What [`RedisBackend::start`] does once: the engine's form, and the limits stored or compared.
#[derive(Clone, Copy)]
struct Startup {
    functions: bool,
    replace: bool,
    adopt: bool,
}

impl RedisBackend {
    /// Connects and stores `limits` for the prefix unless it holds some; limits stored already must be these,
    /// unless [`RedisOptions::replace_limits`] or [`RedisOptions::adopt_stored_limits`] says which win. `clock`
    /// is [`Clock::Manual`] only for tests: the engine then takes the caller's `now`, and the prefix is marked so
    /// that no server-clock limiter can share it.
    ///
    /// When the store cannot be reached (refused, timed out) an `open` or `local` limiter is created all the same:
    /// its policy decides (decisions say `fallback`) until the store first answers, and that call makes the store
    /// ready first (the engine's form, the limits). If the store then holds other limits (and neither option says
    /// which win), that call and every later one fail with [`PacingError::LimitsDiffer`], as creation would have:
    /// pacing by limits nobody chose is not safe, and the check runs again at each call, so storing matching limits
    /// (or replacing the limiter) ends it. A `closed` limiter fails creation with
    /// [`PacingError::StoreUnavailable`]: it decides nothing without the store, and a failed start is what its
    /// user can act on (retry, alert) rather than refusals that look like pacing. Wrong credentials, a forbidding
    /// ACL, invalid options and limits that differ fail creation under every policy.
    pub fn connect(limits: Limits, options: RedisOptions, clock: Clock) -> Result<Self, PacingError> {
        if options.replace_limits && options.adopt_stored_limits {
            return Err(PacingError::InvalidOptions(
                "replace_limits and adopt_stored_limits exclude each other: set one (whose limits win) or neither"
                    .into(),
            ));
        }
        limits.validate().map_err(PacingError::InvalidLimits)?;
        let protocol = Self::protocol(limits, &options, clock)?;
        let startup = Startup {
            functions: options.functions,
            replace: options.replace_limits,
            adopt: options.adopt_stored_limits,
        };
        let backend = Self::with_protocol(protocol, &options, startup)?;
        match backend.start() {
            Err(why) if !why.is_outage() || options.on_store_error == FailurePolicy::Closed => Err(failure(why)),
            _ => Ok(backend),
        }
    }

    /// Opens the prefix for inspection: nothing is written, not even limits to an empty prefix. The stored limits
    /// are adopted (the defaults when it holds none); snapshot and peek answer, and say
    /// [`PacingError::NoStoredLimits`] on a prefix that holds none; every other operation is
    /// [`PacingError::ReadOnly`].
    pub fn inspect(options: RedisOptions, clock: Clock) -> Result<Self, PacingError> {
        // Documented (xg_limiter_inspect_redis): the failure policy and the local share do not apply to a look.
        let options = RedisOptions { on_store_error: FailurePolicy::Closed, workers: 1, ..options };
        let mut protocol = Self::protocol(Limits::default(), &options, clock)?.read_only();
        protocol.store().choose_form(options.functions).map_err(failure)?;
        protocol.read_stored_limits().map_err(failure)?;
        let backend =
            Self::with_protocol(protocol, &options, Startup { functions: false, replace: false, adopt: true })?;
        backend.started.store(true, Ordering::Release);
        Ok(backend)
    }

    fn protocol(limits: Limits, options: &RedisOptions, clock: Clock) -> Result<Protocol, PacingError> {
        let keys = KeySpace::new(&options.key_prefix).map_err(PacingError::InvalidOptions)?;
        if options.deadline.is_zero() {
            return Err(PacingError::InvalidOptions("the store deadline must be positive".into()));
        }
        let store = Store::open(options)?;
        let deadline_ms = u64::try_from(options.deadline.as_millis()).unwrap_or(u64::MAX);
        Ok(Protocol::new(store, keys, limits, clock == Clock::Manual, deadline_ms))
    }

    fn with_protocol(protocol: Protocol, options: &RedisOptions, startup: Startup) -> Result<Self, PacingError> {
        let fallback = Fallback::new(options.on_store_error, options.workers, protocol.limits())?;
        Ok(RedisBackend {
            protocol,
            fallback,
            permits: Mutex::new(HashMap::new()),
            reservations: Mutex::new(HashMap::new()),
            inserts: AtomicU32::new(0),
            pending: PendingQueue::default(),
            startup,
            form_chosen: AtomicBool::new(false),
            started: AtomicBool::new(false),
        })
    }

    /// Makes the store ready for this limiter, once it answers: loads the engine in the form it takes (once) and
    /// stores (or compares, or adopts) the limits (again at each call while they differ). Concurrent first calls may
    /// both run it: each step is idempotent.
    fn start(&self) -> Result<(), StoreFailure> {
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let Startup { functions, replace, adopt } = self.startup;
        if !self.form_chosen.load(Ordering::Acquire) {
            self.protocol.store().choose_form(functions)?;
            self.form_chosen.store(true, Ordering::Release);
        }
        self.protocol.init(replace, adopt)?;
        self.started.store(true, Ordering::Release);
        Ok(())
    }

    /// [`Self::start`] before an operation: an outage there means the operation was not sent.
    fn started(&self) -> Result<(), StoreFailure> {
        self.start().map_err(|why| match why {
            why if why.is_outage() => StoreFailure::Skipped(format!("{} (starting)", failure(why))),
            why => why,
        })
    }

    /// Runs `operation` after replaying (a bounded batch of) what the store must still be told, so that permits given
    /// back during an outage are free before this call is decided; then [`Self::answered`]. A replay the store does
    /// not answer ends the call there (it is not sent: one deadline per call at most).
    fn call<T>(&self, now: u64, operation: impl FnOnce() -> Result<T, StoreFailure>) -> Result<T, StoreFailure> {
        self.started()?;
        let replayed = match self.replay(now) {
            Err(why) if why.is_outage() => Err(StoreFailure::Skipped(format!("{} (replaying)", failure(why)))),
            _ => Ok(()),
        };
        self.answered(replayed.and_then(|()| operation()))
    }

    /// One replay: an HDEL of up to `REPLAY_BATCH` pending permits, then up to `REPLAY_CANCELS` cancels; what the
    /// store did not confirm goes back to the queue, ahead of the rest. A refusal (an ACL without HDEL) drops the
    /// batch: the permits expire in the store, and the caller's own operation meets the same refusal.
    fn replay(&self, now: u64) -> Result<(), StoreFailure> {
        if self.pending.len() == 0 {
            return Ok(());
        }
        let batch = self.pending.take(now);
        if batch.is_empty() {
            return Ok(());
        }
        let Batch { permits, cancels } = batch;
        let ids: Vec<u64> = permits.iter().map(|&(id, ..)| id).collect();
        let released = if ids.is_empty() { Ok(()) } else { self.protocol.release(&ids) };
        let sent = !matches!(&released, Err(why) if why.is_outage());
        let mut outcome = released;
        let mut unsent = Vec::new();
        for (tenant, reservation, until) in cancels {
            if outcome.as_ref().is_err_and(StoreFailure::is_outage) {
                unsent.push((tenant, reservation, until));
                continue;
            }
            match self.protocol.cancel(&tenant, reservation, now) {
                Err(why) if why.is_outage() => {
                    unsent.push((tenant, reservation, until));
                    outcome = Err(why);
                }
                _ => {}
            }
        }
        self.pending.put_back(Batch { permits, cancels: unsent }, sent);
        outcome
    }

    /// After a call the store answered: once after an outage, counts the calls the local share granted into the
    /// store (at now: later than they happened, which is the safe side).
    fn answered<T>(&self, reply: Result<T, StoreFailure>) -> Result<T, StoreFailure> {
        if reply.is_ok() && self.protocol.store().recovered() {
            for (tenant, count) in self.fallback.take_local_calls() {
                if self.protocol.record(&tenant, count, 0).is_err() {
                    // Still failing: keep them for the next recovery.
                    self.fallback.keep_local_calls(tenant, count);
                }
            }
        }
        reply
    }

    fn cooldown(&self) -> Duration {
        self.protocol.store().cooldown_left()
    }

    /// Whether this process's bookkeeping is due a sweep of entries past `now` (every SWEEP_EVERY insertions).
    fn sweep_due(&self) -> bool {
        self.inserts.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_EVERY)
    }

    fn remember_permit(&self, id: u64, tenant: &str, until: u64, now: u64) {
        let mut permits = self.permits.lock();
        if self.sweep_due() {
            permits.retain(|_, held| held.until.saturating_add(1_000) > now);
        }
        permits.insert(id, Held { tenant: tenant.into(), until });
    }
}

impl Backend for RedisBackend {
    fn limits(&self) -> &Limits {
        self.protocol.limits()
    }

    fn sees_every_release(&self) -> bool {
        false
    }

    fn acquire(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        check_tenant(tenant)?;
        let id = op_id();
        match self.call(now, || self.protocol.acquire(tenant, id, now)) {
            Ok(Acquired::Granted { now: store_now, expires }) => {
                if tenant.is_empty() {
                    return Ok(Decision::Granted(Permit::new(0)));
                }
                // When the permit expires on the caller's clock: the store's instant on the manual clock (it is the
                // store's clock), else the timeout from the caller's now.
                let until = if self.protocol.manual_clock() { expires } else { now + (expires - store_now) };
                self.remember_permit(id, tenant, until, now);
                Ok(Decision::Granted(Permit::new(id)))
            }
            Ok(Acquired::Refused(refusal)) => Ok(Decision::Refused(refusal)),
            Err(why) => {
                if let StoreFailure::Unavailable(_) = why
                    && !tenant.is_empty()
                {
                    // Sent, not answered: it may have run, or still run. Its permit is the operation id: given back
                    // when the store answers (until twice its timeout: a permit taken late lives that long at most).
                    let until = now.saturating_add(self.protocol.limits().permit_timeout_ms.saturating_mul(2));
                    self.pending.push(Pending::Permit { id, passes: 2, until });
                }
                let decision = self.fallback.decision(why, self.cooldown(), |local| local.acquire(tenant, now))?;
                if let Decision::Granted(Permit { fallback: Some(FailurePolicy::Local), .. }) = decision {
                    self.fallback.count_local_call(tenant);
                }
                Ok(decision)
            }
        }
    }

    /// When the store cannot decide, the failure policy answers, and says so (`fallback`), as for acquire.
    fn peek(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        check_tenant(tenant)?;
        match self.call(now, || self.protocol.peek(tenant, now)) {
            Ok(refusal) => Ok(refusal.map_or(Decision::Granted(Permit::new(0)), Decision::Refused)),
            Err(why) => self.fallback.decision(why, self.cooldown(), |local| local.peek(tenant, now)),
        }
    }

    fn record(&self, tenant: &str, now: u64) -> Result<(), PacingError> {
        check_tenant(tenant)?;
        match self.call(now, || self.protocol.record(tenant, 1, now)) {
            Ok(()) => Ok(()),
            Err(why) => self.fallback.effect(why, |local| local.record(tenant, now)),
        }
    }

    /// The slot is freed for every process at once (an HDEL of the permit, idempotent); the answer comes from this
    /// process's record of the permit: `UnknownPermit` when it does not hold it or its timeout has passed (on the
    /// server's clock, as this process's clock measured it from the acquire). When the store does not confirm it
    /// (an outage, the breaker open) the release is deferred, not lost: it waits in the pending queue, replayed when
    /// the store answers, and the caller is answered Ok under every policy.
    fn release(&self, permit: Permit, now: u64) -> Result<(), PacingError> {
        if permit.id == 0 {
            return Ok(());
        }
        if permit.id & LOCAL_ID != 0 {
            let local = self.fallback.local().ok_or(PacingError::UnknownPermit)?;
            return local.release(Permit::new(permit.id & !LOCAL_ID), now);
        }
        let held = self.permits.lock().remove(&permit.id).ok_or(PacingError::UnknownPermit)?;
        let expired = held.until <= now;
        let entry = Pending::Permit { id: permit.id, passes: 1, until: held.until };
        let released = if self.pending.len() > 0 && !expired {
            // Behind the releases already waiting, in one HDEL with them.
            self.pending.push(entry);
            self.call(now, || Ok(()))
        } else {
            self.call(now, || self.protocol.release(&[permit.id])).inspect_err(|why| {
                if why.is_outage() && !expired {
                    self.pending.push(entry);
                }
            })
        };
        match released {
            Err(why) if !why.is_outage() => Err(failure(why)),
            _ if expired => Err(PacingError::UnknownPermit),
            _ => Ok(()),
        }
    }

    fn reserve(&self, tenant: &str, now: u64) -> Result<Reservation, PacingError> {
        check_tenant(tenant)?;
        // The reservation's id is the operation's: cancel names the booking by it.
        let id = op_id();
        let (store_now, at) = match self.call(now, || self.protocol.reserve(tenant, id, now)) {
            Ok(Booked::At { now, at }) => (now, at),
            Ok(Booked::TooFar { wait_ms }) => return Err(PacingError::BookingTooFar { wait_ms }),
            Ok(Booked::TooMany { wait_ms }) => return Err(PacingError::TooManyBookings { wait_ms }),
            Err(why) => return self.fallback.reserve(why, tenant, now),
        };
        let wait_ms = at - store_now;
        let mut reservations = self.reservations.lock();
        if self.sweep_due() {
            reservations.retain(|_, (held, _)| held.until.saturating_add(1_000) > now);
        }
        reservations.insert(id, (Held { tenant: tenant.into(), until: now.saturating_add(wait_ms) }, at));
        // On the manual clock the store's now is the caller's; on the server's, `at` is in server time and the
        // caller sleeps `wait_ms` on its own clock.
        Ok(Reservation {
            id,
            at_ms: if self.protocol.manual_clock() { at } else { now.saturating_add(wait_ms) },
            wait_ms,
        })
    }

    fn cancel(&self, reservation_id: u64, now: u64) -> Result<(), PacingError> {
        if reservation_id & LOCAL_ID != 0 {
            let local = self.fallback.local().ok_or(PacingError::UnknownReservation)?;
            return local.cancel(reservation_id & !LOCAL_ID, now);
        }
        let (held, _) = self.reservations.lock().remove(&reservation_id).ok_or(PacingError::UnknownReservation)?;
        match self.call(now, || self.protocol.cancel(&held.tenant, reservation_id, now)) {
            Ok(true) => Ok(()),
            Ok(false) => Err(PacingError::UnknownReservation),
            // Deferred: replayed when the store answers (a booking whose time has come needs no cancel).
            Err(why) if why.is_outage() => {
                if held.until > now {
                    self.pending.push(Pending::Cancel {
                        tenant: held.tenant,
                        reservation: reservation_id,
                        until: held.until,
                    });
                }
                Ok(())
            }
            Err(why) => Err(failure(why)),
        }
    }

    fn observe(&self, tenant: &str, feedback: &Feedback, now: u64) -> Result<(), PacingError> {
        check_tenant(tenant)?;
        match self.call(now, || self.protocol.observe(tenant, &Effects::of(feedback), now)) {
            Ok(()) => Ok(()),
            Err(why) => self.fallback.effect(why, |local| local.observe(tenant, feedback, now)),
        }
    }

    fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, PacingError> {
        check_tenant(tenant)?;
        self.call(now, || self.protocol.snapshot(tenant, now)).map_err(failure)
    }

    fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError> {
        check_tenant(tenant)?;
        self.answered(self.started().and_then(|()| self.protocol.set_override(tenant, limits))).map_err(failure)?;
        self.fallback.set_tenant_limits(tenant, limits)
    }

    fn store_stats(&self) -> StoreStats {
        self.protocol.store().stats(self.pending.len() as u64)
    }

    fn tenants_with_state(&self, max: usize) -> Result<super::TenantListing, PacingError> {
        inspect::tenants_with_state(&self.protocol, max).map_err(failure)
    }
}
