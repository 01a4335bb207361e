//! The shared backend: the same windows, permits, blocks and limits for every process and machine of an app, kept
//! in Redis (or Valkey) and decided by one Lua script per operation on the server's clock (design.md "Shared
//! pacing on Redis"). One round trip per decision; every key of an app shares one hash tag, so a Redis Cluster
//! never answers CROSSSLOT; every key but the limits has a TTL.
//!
//! Failures are bounded: each operation has a deadline covering connect, write and read; a breaker skips Redis for
//! a cooldown after a failure; a retried mutation carries its operation id, so a script that ran before its reply
//! was lost is not counted twice. What happens while Redis is unreachable is the limiter's [`FailurePolicy`].

mod conn;
mod keys;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::Value;

use self::conn::{Store, StoreFailure};
use self::keys::KeySpace;
pub use self::keys::MAX_PREFIX_BYTES;
use super::Backend;
use super::clock::Clock;
use super::config::{Limits, TenantLimits, WindowLimit};
use super::engine::Effects;
use super::memory::MemoryBackend;
use super::types::{
    Decision, Feedback, PacingError, Permit, Refusal, Reservation, Snapshot, WindowSnapshot, check_tenant,
};
use crate::vocab::{FailurePolicy, Reason};

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
    /// After a failure the store is not asked again for this long (the failure policy decides meanwhile).
    pub breaker_cooldown: Duration,
    pub on_store_error: FailurePolicy,
    /// For [`FailurePolicy::Local`]: how many processes share the limits; each keeps limit ÷ workers (at least 1).
    pub workers: u32,
    /// Write this limiter's limits to the store even if it holds others (every process adopts them at its next
    /// call). Otherwise the limits already stored win, and these only initialise an empty prefix.
    pub replace_limits: bool,
    /// A PEM file of the certificate authorities to trust for `rediss://` (default: the system's roots).
    pub tls_ca_file: Option<String>,
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
            tls_ca_file: None,
        }
    }
}

/// The high bit marks a permit granted by the local share, so release finds where it lives.
const LOCAL_PERMIT: u64 = 1 << 63;
/// Bookkeeping of this process's permits and reservations is swept of expired entries this often (in entries).
const SWEEP_EVERY: u32 = 1024;

struct Held {
    tenant: Arc<str>,
    /// On the caller's clock: after this the entry can only be an expired permit or a past booking.
    forget_after: u64,
}

/// The shared backend. `Limits::max_tenants` does not apply: idle tenants leave the store by their keys' TTLs, and
/// snapshots report `tenants_tracked` 0 (counting them would mean scanning the keyspace).
pub struct RedisBackend {
    limits: Limits,
    options: RedisOptions,
    manual_clock: bool,
    keys: KeySpace,
    store: Store,
    permits: Mutex<HashMap<u64, Held>>,
    reservations: Mutex<HashMap<u64, (Held, u64)>>,
    inserts: AtomicU32,
    local: Option<MemoryBackend>,
    /// Calls the local share let through during an outage, per tenant, counted into the store once it answers.
    granted_locally: Mutex<HashMap<Arc<str>, u32>>,
}

/// The arguments every script takes after KEYS: the operation id, the manual clock or '', the tenant's config field.
struct Call<'a> {
    tenant: &'a str,
    op: Option<u64>,
    now: u64,
    extra: Vec<String>,
}

fn share(limit: u32, workers: u32) -> u32 {
    if limit == 0 { 0 } else { (limit / workers.max(1)).max(1) }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn uint(v: &Value) -> Result<u64, PacingError> {
    int(v).and_then(|i| u64::try_from(i).ok()).ok_or_else(|| protocol(format!("expected a count, got {v:?}")))
}

/// The number at `index` of a script's reply; `what` names the reply in the error when it is short.
fn field(items: &[Value], index: usize, what: &str) -> Result<u64, PacingError> {
    items.get(index).map(uint).transpose()?.ok_or_else(|| protocol(what))
}

fn protocol(why: impl Into<String>) -> PacingError {
    PacingError::Store(format!("unexpected reply from the store: {}", why.into()))
}

fn reason(code: u64) -> Result<Reason, PacingError> {
    u32::try_from(code).ok().and_then(Reason::from_code).ok_or_else(|| protocol(format!("reason code {code}")))
}

impl RedisBackend {
    /// Connects, stores `limits` for the prefix unless it holds some (see [`RedisOptions::replace_limits`]), and
    /// adopts the stored ones. `clock` is [`Clock::Manual`] only for tests: the scripts then take the caller's
    /// `now`, and the prefix is marked so that no server-clock limiter can share it.
    pub fn connect(limits: Limits, options: RedisOptions, clock: Clock) -> Result<Self, PacingError> {
        limits.validate().map_err(PacingError::InvalidLimits)?;
        let keys = KeySpace::new(&options.key_prefix).map_err(PacingError::InvalidOptions)?;
        if options.deadline.is_zero() {
            return Err(PacingError::InvalidOptions("the store deadline must be positive".into()));
        }
        let store = Store::open(&options)?;
        let manual_clock = clock == Clock::Manual;
        let mut backend = RedisBackend {
            limits,
            keys,
            store,
            manual_clock,
            permits: Mutex::new(HashMap::new()),
            reservations: Mutex::new(HashMap::new()),
            inserts: AtomicU32::new(0),
            local: None,
            granted_locally: Mutex::new(HashMap::new()),
            options,
        };
        backend.limits = backend.init_config(backend.options.replace_limits)?;
        if backend.options.on_store_error == FailurePolicy::Local {
            let w = backend.options.workers;
            let l = backend.limits;
            let part = |window: WindowLimit| WindowLimit { limit: share(window.limit, w), ..window };
            backend.local = Some(MemoryBackend::new(Limits {
                tenant_minute: part(l.tenant_minute),
                tenant_day: part(l.tenant_day),
                tenant_concurrency: share(l.tenant_concurrency, w),
                app_minute: part(l.app_minute),
                ..l
            })?);
        }
        Ok(backend)
    }

    /// Stores the limits (if absent, or when `replace`) and returns the stored ones.
    fn init_config(&self, replace: bool) -> Result<Limits, PacingError> {
        let l = &self.limits;
        let clock = if self.manual_clock { "manual" } else { "server" };
        let numbers = [
            u64::from(l.tenant_minute.limit),
            l.tenant_minute.window_ms,
            l.tenant_minute.margin_ms,
            u64::from(l.tenant_day.limit),
            l.tenant_day.window_ms,
            l.tenant_day.margin_ms,
            u64::from(l.tenant_concurrency),
            u64::from(l.app_minute.limit),
            l.app_minute.window_ms,
            l.app_minute.margin_ms,
            l.permit_timeout_ms,
        ];
        let packed = numbers.map(|n| n.to_string()).join(",");
        let args = [clock.to_owned(), if replace { "1" } else { "0" }.to_owned(), packed];
        let reply = self.store.init(&self.keys.config(), &args).map_err(|f| self.failure(f))?;
        let stored = match reply {
            Value::Array(items) => match items.get(1) {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => return Err(protocol("init reply has no limits")),
            },
            _ => return Err(protocol("init reply is not an array")),
        };
        let n: Vec<u64> = stored
            .split(',')
            .map(|v| v.parse())
            .collect::<Result<_, _>>()
            .map_err(|_| protocol(format!("stored limits {stored:?}")))?;
        if n.len() != numbers.len() {
            return Err(protocol(format!("stored limits {stored:?}")));
        }
        let window = |limit: u64, window_ms: u64, margin_ms: u64| WindowLimit {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            window_ms,
            margin_ms,
        };
        let stored = Limits {
            tenant_minute: window(n[0], n[1], n[2]),
            tenant_day: window(n[3], n[4], n[5]),
            tenant_concurrency: u32::try_from(n[6]).unwrap_or(u32::MAX),
            app_minute: window(n[7], n[8], n[9]),
            permit_timeout_ms: n[10],
            max_tenants: self.limits.max_tenants,
        };
        stored.validate().map_err(|why| PacingError::Store(format!("the stored limits are invalid: {why}")))?;
        Ok(stored)
    }

    fn failure(&self, failure: StoreFailure) -> PacingError {
        match failure {
            StoreFailure::Unavailable(why) => PacingError::StoreUnavailable(why),
            StoreFailure::Refused(why) => PacingError::Store(why),
        }
    }

    /// Runs one operation's script, re-storing the limits once if the prefix lost them (a restart without
    /// persistence). The reply's first element echoes the operation id; a mismatch is a desynchronised connection.
    fn run(&self, script: conn::Op, call: &Call<'_>) -> Result<Vec<Value>, StoreFailure> {
        let keys = self.keys.for_tenant(call.tenant, call.op);
        let mut args = Vec::with_capacity(3 + call.extra.len());
        args.push(call.op.map_or(String::new(), |op| op.to_string()));
        args.push(if self.manual_clock { call.now.to_string() } else { String::new() });
        args.push(if call.tenant.is_empty() { String::new() } else { self.keys.override_field(call.tenant) });
        args.extend(call.extra.iter().cloned());
        let reply = match self.store.eval(script, &keys, &args) {
            Err(StoreFailure::Refused(why)) if why.starts_with("XG_NOCONFIG") => {
                self.init_config(false).map_err(|e| StoreFailure::Refused(e.to_string()))?;
                self.store.eval(script, &keys, &args)?
            }
            other => other?,
        };
        let Value::Array(items) = reply else { return Err(StoreFailure::Refused("reply is not an array".into())) };
        let echo = items.first().and_then(|v| match v {
            Value::BulkString(b) => std::str::from_utf8(b).ok().map(str::to_owned),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        });
        let echoed = echo.as_deref().map(|e| e.strip_prefix("r:").unwrap_or(e));
        if echoed != Some(args[0].as_str()) {
            self.store.discard_connections();
            return Err(StoreFailure::Unavailable("a reply for another operation arrived (connection reset)".into()));
        }
        if self.store.recovered() {
            self.replay_local_grants();
        }
        Ok(items)
    }

    /// After an outage, counts the calls the local share granted into the store (at now: later than they happened,
    /// which is the safe side).
    fn replay_local_grants(&self) {
        let pending = std::mem::take(&mut *self.granted_locally.lock());
        for (tenant, count) in pending {
            let call = Call { tenant: &tenant, op: Some(conn::op_id()), now: 0, extra: vec![count.to_string()] };
            if self.run(conn::Op::Record, &call).is_err() {
                // Still failing: keep them for the next recovery.
                *self.granted_locally.lock().entry(Arc::clone(&tenant)).or_default() += count;
            }
        }
    }

    fn remember_permit(&self, id: u64, tenant: &str, now: u64) {
        let mut permits = self.permits.lock();
        if self.inserts.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_EVERY) {
            permits.retain(|_, held| held.forget_after > now);
        }
        let forget_after = now.saturating_add(self.limits.permit_timeout_ms).saturating_add(1_000);
        permits.insert(id, Held { tenant: tenant.into(), forget_after });
    }

    /// Remembers a call the local share let through, to count it into the store when it answers again.
    fn count_local_call(&self, tenant: &str) {
        *self.granted_locally.lock().entry(tenant.into()).or_default() += 1;
    }

    /// What the failure policy answers for a decision while the store cannot (peek asks it too: nothing is
    /// counted here).
    fn fallback_decision(
        &self,
        why: StoreFailure,
        local: impl FnOnce(&MemoryBackend) -> Result<Decision, PacingError>,
    ) -> Result<Decision, PacingError> {
        let StoreFailure::Unavailable(_) = why else { return Err(self.failure(why)) };
        match self.options.on_store_error {
            FailurePolicy::Closed => {
                let wait_ms = u64::try_from(self.store.cooldown_left().as_millis()).unwrap_or(u64::MAX).max(1);
                Ok(Decision::Refused(Refusal {
                    wait_ms,
                    reason: Reason::StoreUnavailable,
                    fallback: Some(FailurePolicy::Closed),
                }))
            }
            FailurePolicy::Open => Ok(Decision::Granted(Permit { id: 0, fallback: Some(FailurePolicy::Open) })),
            FailurePolicy::Local => {
                let local_backend = self.local.as_ref().expect("built for the local policy");
                let decision = local(local_backend)?;
                Ok(match decision {
                    Decision::Granted(p) => {
                        let id = if p.id == 0 { 0 } else { p.id | LOCAL_PERMIT };
                        Decision::Granted(Permit { id, fallback: Some(FailurePolicy::Local) })
                    }
                    Decision::Refused(r) => Decision::Refused(Refusal { fallback: Some(FailurePolicy::Local), ..r }),
                })
            }
        }
    }

    /// For operations that only inform the store: under `closed` they fail, under `open` they are dropped, under
    /// `local` the local share takes them.
    fn fallback_effect(
        &self,
        why: StoreFailure,
        local: impl FnOnce(&MemoryBackend) -> Result<(), PacingError>,
    ) -> Result<(), PacingError> {
        let StoreFailure::Unavailable(_) = why else { return Err(self.failure(why)) };
        match self.options.on_store_error {
            FailurePolicy::Closed => Err(self.failure(why)),
            FailurePolicy::Open => Ok(()),
            FailurePolicy::Local => local(self.local.as_ref().expect("built for the local policy")),
        }
    }

    fn decision_from(&self, items: &[Value], tenant: &str, now: u64) -> Result<Decision, PacingError> {
        let granted = field(items, 2, "short acquire reply")?;
        if granted == 1 {
            let id = match items.get(3) {
                Some(Value::BulkString(b)) if b.is_empty() => 0,
                Some(v) => uint(v)?,
                None => return Err(protocol("short acquire reply")),
            };
            if id != 0 {
                self.remember_permit(id, tenant, now);
            }
            return Ok(Decision::Granted(Permit::new(id)));
        }
        let wait_ms = field(items, 3, "short refusal")?;
        let code = field(items, 4, "short refusal")?;
        Ok(Decision::Refused(Refusal::new(wait_ms, reason(code)?)))
    }
}

impl Backend for RedisBackend {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn sees_every_release(&self) -> bool {
        false
    }

    fn acquire(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        check_tenant(tenant)?;
        let op = conn::op_id();
        let call = Call { tenant, op: Some(op), now, extra: vec![op.to_string()] };
        match self.run(conn::Op::Acquire, &call) {
            Ok(items) => self.decision_from(&items, tenant, now),
            Err(why) => {
                let decision = self.fallback_decision(why, |local| local.acquire(tenant, now))?;
                if let Decision::Granted(Permit { fallback: Some(FailurePolicy::Local), .. }) = decision {
                    self.count_local_call(tenant);
                }
                Ok(decision)
            }
        }
    }

    fn peek(&self, tenant: &str, now: u64) -> Result<Option<Refusal>, PacingError> {
        check_tenant(tenant)?;
        let call = Call { tenant, op: None, now, extra: vec![] };
        match self.run(conn::Op::Peek, &call) {
            Ok(items) => {
                let wait_ms = field(&items, 2, "short peek reply")?;
                let code = field(&items, 3, "short peek reply")?;
                if wait_ms == 0 { Ok(None) } else { Ok(Some(Refusal::new(wait_ms, reason(code)?))) }
            }
            Err(why) => {
                match self.fallback_decision(why, |local| {
                    Ok(match local.peek(tenant, now)? {
                        None => Decision::Granted(Permit::new(0)),
                        Some(r) => Decision::Refused(r),
                    })
                })? {
                    Decision::Granted(_) => Ok(None),
                    Decision::Refused(r) => Ok(Some(r)),
                }
            }
        }
    }

    fn record(&self, tenant: &str, now: u64) -> Result<(), PacingError> {
        check_tenant(tenant)?;
        let call = Call { tenant, op: Some(conn::op_id()), now, extra: vec!["1".into()] };
        match self.run(conn::Op::Record, &call) {
            Ok(_) => Ok(()),
            Err(why) => self.fallback_effect(why, |local| local.record(tenant, now)),
        }
    }

    fn release(&self, permit: Permit, now: u64) -> Result<(), PacingError> {
        if permit.id == 0 {
            return Ok(());
        }
        if permit.id & LOCAL_PERMIT != 0 {
            let local = self.local.as_ref().ok_or(PacingError::UnknownPermit)?;
            return local.release(Permit::new(permit.id & !LOCAL_PERMIT), now);
        }
        let held = self.permits.lock().remove(&permit.id).ok_or(PacingError::UnknownPermit)?;
        let call = Call { tenant: &held.tenant, op: Some(conn::op_id()), now, extra: vec![permit.id.to_string()] };
        match self.run(conn::Op::Release, &call) {
            Ok(items) => match items.get(2).map(uint).transpose()? {
                Some(1) => Ok(()),
                _ => Err(PacingError::UnknownPermit),
            },
            // The lease expires in the store on its own; nothing is lost by not reaching it now.
            Err(why) => self.fallback_effect(why, |_| Ok(())),
        }
    }

    fn reserve(&self, tenant: &str, now: u64) -> Result<Reservation, PacingError> {
        check_tenant(tenant)?;
        let call = Call { tenant, op: Some(conn::op_id()), now, extra: vec![] };
        let items = match self.run(conn::Op::Reserve, &call) {
            Ok(items) => items,
            Err(why) => {
                return match (self.options.on_store_error, why) {
                    (FailurePolicy::Local, StoreFailure::Unavailable(_)) => {
                        let r = self.local.as_ref().expect("built for the local policy").reserve(tenant, now)?;
                        self.count_local_call(tenant); // a booked call counts like a granted one
                        Ok(Reservation { id: r.id | LOCAL_PERMIT, ..r })
                    }
                    (_, why) => Err(self.failure(why)),
                };
            }
        };
        let server_now = field(&items, 1, "short reserve reply")?;
        let booked = field(&items, 2, "short reserve reply")?;
        let at = field(&items, 3, "short reserve reply")?;
        if booked == 0 {
            return Err(PacingError::BookingTooFar { wait_ms: at });
        }
        let id = conn::op_id();
        let wait_ms = at - server_now;
        let forget_after = now.saturating_add(wait_ms).saturating_add(1_000);
        let mut reservations = self.reservations.lock();
        if self.inserts.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_EVERY) {
            reservations.retain(|_, (held, _)| held.forget_after > now);
        }
        reservations.insert(id, (Held { tenant: tenant.into(), forget_after }, at));
        // On the manual clock the store's now is the caller's; on the server's, `at` is in server time and the
        // caller sleeps `wait_ms` on its own clock.
        Ok(Reservation { id, at_ms: if self.manual_clock { at } else { now.saturating_add(wait_ms) }, wait_ms })
    }

    fn cancel(&self, reservation_id: u64, now: u64) -> Result<(), PacingError> {
        if reservation_id & LOCAL_PERMIT != 0 {
            let local = self.local.as_ref().ok_or(PacingError::UnknownReservation)?;
            return local.cancel(reservation_id & !LOCAL_PERMIT, now);
        }
        let (held, at) = self.reservations.lock().remove(&reservation_id).ok_or(PacingError::UnknownReservation)?;
        let call = Call { tenant: &held.tenant, op: Some(conn::op_id()), now, extra: vec![at.to_string()] };
        let items = self.run(conn::Op::Cancel, &call).map_err(|why| self.failure(why))?;
        match items.get(2).map(uint).transpose()? {
            Some(1) => Ok(()),
            _ => Err(PacingError::UnknownReservation),
        }
    }

    fn observe(&self, tenant: &str, feedback: &Feedback, now: u64) -> Result<(), PacingError> {
        check_tenant(tenant)?;
        let e = Effects::of(feedback);
        let block = |b: Option<(u64, Reason)>| b.map_or([0, 0], |(wait, reason)| [wait, u64::from(reason.code())]);
        let remaining = |r: Option<u32>| r.map_or("-1".to_owned(), |r| r.to_string());
        let [tw, tr] = block(e.tenant_block);
        let [aw, ar] = block(e.app_block);
        let extra = vec![
            tw.to_string(),
            tr.to_string(),
            aw.to_string(),
            ar.to_string(),
            remaining(e.minute_remaining),
            remaining(e.day_remaining),
            remaining(e.app_minute_remaining),
        ];
        let call = Call { tenant, op: Some(conn::op_id()), now, extra };
        match self.run(conn::Op::Observe, &call) {
            Ok(_) => Ok(()),
            Err(why) => self.fallback_effect(why, |local| local.observe(tenant, feedback, now)),
        }
    }

    fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, PacingError> {
        check_tenant(tenant)?;
        let call = Call { tenant, op: None, now, extra: vec![] };
        let items = self.run(conn::Op::Snapshot, &call).map_err(|why| self.failure(why))?;
        let n: Vec<u64> = items.iter().skip(1).map(uint).collect::<Result<_, _>>()?;
        let [now_ms, mc, mb, dc, db, ac, ab, in_flight, conc, ml, dl, tbu, tbr, abu, abr, wait, wr] = n[..] else {
            return Err(protocol("snapshot reply has the wrong length"));
        };
        let l = &self.limits;
        let window = |limit: u64, spec: WindowLimit, count: u64, booked: u64| {
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            WindowSnapshot {
                limit,
                window_ms: spec.window_ms,
                count,
                remaining: limit.saturating_sub(count),
                booked: u32::try_from(booked).unwrap_or(u32::MAX),
            }
        };
        let block = |until: u64, code: u64| -> Result<(Option<u64>, Option<Reason>), PacingError> {
            if until == 0 { Ok((None, None)) } else { Ok((Some(until), Some(reason(code)?))) }
        };
        let (blocked_until_ms, block_reason) = block(tbu, tbr)?;
        let (app_blocked_until_ms, app_block_reason) = block(abu, abr)?;
        Ok(Snapshot {
            tenant: tenant.to_owned(),
            now_ms,
            minute: window(ml, l.tenant_minute, mc, mb),
            day: window(dl, l.tenant_day, dc, db),
            app_minute: window(u64::from(l.app_minute.limit), l.app_minute, ac, ab),
            in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
            concurrency_limit: u32::try_from(conc).unwrap_or(u32::MAX),
            blocked_until_ms,
            block_reason,
            app_blocked_until_ms,
            app_block_reason,
            wait_ms: wait,
            wait_reason: if wr == 0 { None } else { Some(reason(wr)?) },
            tenants_tracked: 0,
        })
    }

    fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError> {
        check_tenant(tenant)?;
        let field = self.keys.override_field(tenant);
        let value = limits.map(|l| format!("{},{},{}", l.minute_limit, l.day_limit, l.concurrency));
        self.store.set_override(&self.keys.config(), &field, value.as_deref()).map_err(|why| self.failure(why))?;
        if let Some(local) = &self.local {
            let w = self.options.workers;
            let shared = limits.map(|l| TenantLimits {
                minute_limit: share(l.minute_limit, w),
                day_limit: share(l.day_limit, w),
                concurrency: share(l.concurrency, w),
            });
            local.set_tenant_limits(tenant, shared)?;
        }
        Ok(())
    }
}
