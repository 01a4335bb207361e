//! The protocol between the backend and the engine on Redis: which operation runs, with which KEYS and ARGV, and
//! what its reply means. Nothing here decides what to do when the store fails (that is `super::fallback` and the
//! backend in `super`).
//!
//! The conventions every call follows (engine.lua): KEYS are the config hash, the state hash, the app-minute ring
//! and the tenant's minute and day rings; ARGV starts with the operation id ('' for a read; a retry sends
//! `r:<id>`), the manual clock's reading ('' for the server's TIME), the tenant's encoded id ('' for the tenantless
//! scope), how long a result lives and the config's epoch this process last saw (the engine refuses the call,
//! before writing, when the config was lost and made again since: this process then stores its overrides again and
//! sends the call once more); the reply starts with the operation id echoed (a reply that does not is a
//! desynchronised connection) and the store's now. Idempotency: every mutation reads first what an earlier run of
//! it left. An acquire's permit id is its operation id, and its permit (`p:<id>`) is that trace; record, reserve
//! and cancel leave their result (`r:<id>`) for [`RESULT_TTL_DEADLINES`] deadlines; a reservation's id is its
//! reserve's operation id, and cancel names it (`b:<id>`), so a cancel run twice frees one booking; observe needs
//! none (applying feedback twice changes nothing more); release is an HDEL of the permit, which asking twice
//! changes nothing.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use parking_lot::Mutex;
use redis::Value;

use super::conn::{Store, StoreFailure, op_id};
use super::keys::KeySpace;
use super::numbers::RESULT_TTL_DEADLINES;
use super::scripts::Op;
use crate::pacing::config::{Limits, TenantLimits, WindowLimit};
use crate::pacing::engine::Effects;
use crate::pacing::types::{PacingError, Refusal, Snapshot, WindowSnapshot};
use crate::vocab::Reason;

/// What the store answered an acquire.
#[derive(Debug)]
pub enum Acquired {
    /// The permit (the operation id) is held until `expires` on the store's clock (0: a tenantless call holds none).
    Granted {
        now: u64,
        expires: u64,
    },
    Refused(Refusal),
}

/// What the store answered a reserve.
#[derive(Debug)]
pub enum Booked {
    At {
        now: u64,
        at: u64,
    },
    /// The next free slot is beyond the booking horizon.
    TooFar {
        wait_ms: u64,
    },
    /// The tenant or the app holds the most bookings it may; the next comes due in `wait_ms`.
    TooMany {
        wait_ms: u64,
    },
}

pub struct Protocol {
    store: Store,
    keys: KeySpace,
    /// The limits this limiter was given (or, read-only, the stored ones).
    limits: Limits,
    /// The stored limits, once [`Protocol::init`] adopted ones that differ from `limits`; re-stored if the store
    /// lost them. Set once: a limiter created while the store was down adopts them at its first answered call.
    adopted: OnceLock<Limits>,
    manual_clock: bool,
    result_ttl_ms: u64,
    /// Opened for inspection: only reads (peek, snapshot) are sent; nothing is ever stored, not even the limits.
    read_only: bool,
    /// What this process knows of the stored config: its epoch (see init.lua; None before the first init) and the
    /// tenants' own limits this process set (config field → value), stored again when the config was lost.
    config: Mutex<KnownConfig>,
}

#[derive(Default)]
struct KnownConfig {
    epoch: Option<String>,
    overrides: BTreeMap<String, String>,
}

/// What a read-only limiter answers an operation that would write.
const READ_ONLY: &str = "XG_READONLY";
/// The engine's error when the prefix holds no limits (engine.lua's load_config).
const NO_CONFIG: &str = "XG_NOCONFIG";
/// The engine's error when the config was lost and stored again since this process last stored its own.
const NEW_EPOCH: &str = "XG_EPOCH";
/// Where an operation's arguments hold the config's epoch (engine.lua: ARGV 5, 1-based), set again on a resend.
const EPOCH_ARG: usize = 4;

/// The operation's arguments after KEYS.
struct Call<'a> {
    tenant: &'a str,
    id: Option<u64>,
    now: u64,
    extra: Vec<String>,
}

fn protocol(why: impl Into<String>) -> StoreFailure {
    StoreFailure::Refused(format!("unexpected reply from the store: {}", why.into()))
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn uint(v: &Value) -> Result<u64, StoreFailure> {
    int(v).and_then(|i| u64::try_from(i).ok()).ok_or_else(|| protocol(format!("expected a count, got {v:?}")))
}

/// The number at `index` of a reply; `what` names the reply in the error when it is short.
fn field(items: &[Value], index: usize, what: &str) -> Result<u64, StoreFailure> {
    items.get(index).map(uint).transpose()?.ok_or_else(|| protocol(what))
}

fn reason(code: u64) -> Result<Reason, StoreFailure> {
    u32::try_from(code).ok().and_then(Reason::from_code).ok_or_else(|| protocol(format!("reason code {code}")))
}

fn refusal(items: &[Value], at: usize, what: &str) -> Result<Refusal, StoreFailure> {
    Ok(Refusal::new(field(items, at, what)?, reason(field(items, at + 1, what)?)?))
}

/// The limits as init.lua stores them (`LIMIT_FIELDS` numbers).
fn pack_limits(l: &Limits) -> String {
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
    numbers.map(|n| n.to_string()).join(",")
}

/// Stored limits; more fields than this version knows are ignored (a later version's).
fn unpack_limits(stored: &str, max_tenants: u32) -> Result<Limits, StoreFailure> {
    let n: Vec<u64> = stored
        .split(',')
        .map(|v| v.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| protocol(format!("stored limits {stored:?}")))?;
    if n.len() < super::numbers::LIMIT_FIELDS as usize {
        return Err(protocol(format!("stored limits {stored:?}")));
    }
    let window = |limit: u64, window_ms: u64, margin_ms: u64| WindowLimit {
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        window_ms,
        margin_ms,
    };
    Ok(Limits {
        tenant_minute: window(n[0], n[1], n[2]),
        tenant_day: window(n[3], n[4], n[5]),
        tenant_concurrency: u32::try_from(n[6]).unwrap_or(u32::MAX),
        app_minute: window(n[7], n[8], n[9]),
        permit_timeout_ms: n[10],
        max_tenants,
    })
}

impl Protocol {
    /// A protocol over `store`; [`Protocol::init`] stores or adopts the limits before any operation.
    pub fn new(store: Store, keys: KeySpace, limits: Limits, manual_clock: bool, deadline_ms: u64) -> Self {
        let result_ttl_ms = deadline_ms.saturating_mul(u64::from(RESULT_TTL_DEADLINES)).max(1);
        Protocol {
            store,
            keys,
            limits,
            adopted: OnceLock::new(),
            manual_clock,
            result_ttl_ms,
            read_only: false,
            config: Mutex::default(),
        }
    }

    /// A protocol that only reads (see [`Protocol::read_stored_limits`]): every writing operation is refused
    /// before anything is sent.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    fn refuse_writes(&self) -> Result<(), StoreFailure> {
        if self.read_only { Err(StoreFailure::Refused(READ_ONLY.into())) } else { Ok(()) }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The limits in force: the stored ones once adopted, else the given ones.
    pub fn limits(&self) -> &Limits {
        self.adopted.get().unwrap_or(&self.limits)
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    pub fn manual_clock(&self) -> bool {
        self.manual_clock
    }

    /// Stores this protocol's limits for the prefix if it holds none, or over the stored ones when `replace`.
    /// Limits stored already that differ from these are adopted when `adopt`, else refused with both named.
    /// Safe to run again (it changes nothing more), and after operations were decided without the store.
    pub fn init(&self, replace: bool, adopt: bool) -> Result<(), StoreFailure> {
        let stored = self.store_limits(replace)?;
        if stored != *self.limits() {
            if !adopt {
                return Err(StoreFailure::LimitsDiffer(super::stored::differ(self.limits(), &stored)));
            }
            let _ = self.adopted.set(stored);
        }
        Ok(())
    }

    /// Reads the limits stored for the prefix without writing anything, and adopts them (when it holds none the
    /// limits stay as given).
    pub fn read_stored_limits(&mut self) -> Result<(), StoreFailure> {
        let reply = self.store.command(redis::cmd("HMGET").arg(self.keys.config()).arg("clock").arg("lim"))?;
        let Value::Array(items) = reply else { return Err(protocol("HMGET reply is not an array")) };
        if let (Some(Value::BulkString(_)), Some(Value::BulkString(stored))) = (items.first(), items.get(1)) {
            self.limits = self.parse_stored(&String::from_utf8_lossy(stored))?;
        }
        Ok(())
    }

    /// Limits as stored (pack_limits), checked like given ones.
    fn parse_stored(&self, text: &str) -> Result<Limits, StoreFailure> {
        let stored = unpack_limits(text, self.limits.max_tenants)?;
        stored.validate().map_err(|why| StoreFailure::Refused(format!("the stored limits are invalid: {why}")))?;
        Ok(stored)
    }

    /// Runs init.lua: stores the limits (see [`Protocol::init`]) and, when the config was made again since this
    /// process last saw it, the overrides this process set; learns the config's epoch.
    fn store_limits(&self, replace: bool) -> Result<Limits, StoreFailure> {
        let clock = if self.manual_clock { "manual" } else { "server" };
        let mut args = vec![clock.to_owned(), if replace { "1" } else { "0" }.to_owned(), pack_limits(self.limits())];
        args.push(op_id().to_string());
        {
            let known = self.config.lock();
            args.push(known.epoch.clone().unwrap_or_default());
            for (field, value) in &known.overrides {
                args.extend([field.clone(), value.clone()]);
            }
        }
        let reply = self.store.call(Op::Init, &[self.keys.config(), self.keys.state()], &args)?;
        let Value::Array(items) = reply else { return Err(protocol("init reply is not an array")) };
        let text = |i: usize| match items.get(i) {
            Some(Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        let (Some(stored), Some(epoch)) = (text(1), text(2)) else { return Err(protocol("init reply is short")) };
        let stored = self.parse_stored(&stored)?;
        self.config.lock().epoch = Some(epoch);
        Ok(stored)
    }

    /// The epoch argument of an operation: what this process last saw ('' for a read-only one: any epoch).
    fn known_epoch(&self) -> String {
        if self.read_only { String::new() } else { self.config.lock().epoch.clone().unwrap_or_default() }
    }

    /// Runs one operation, storing the limits again once if the prefix lost them (a restart without persistence).
    fn call(&self, op: Op, call: &Call<'_>) -> Result<Vec<Value>, StoreFailure> {
        if !matches!(op, Op::Peek | Op::Snapshot) {
            self.refuse_writes()?;
        }
        let keys = self.keys.for_tenant(call.tenant);
        let mut args = Vec::with_capacity(EPOCH_ARG + 1 + call.extra.len());
        args.push(call.id.map_or(String::new(), |id| id.to_string()));
        args.push(if self.manual_clock { call.now.to_string() } else { String::new() });
        args.push(self.keys.tenant_name(call.tenant));
        args.push(self.result_ttl_ms.to_string());
        debug_assert_eq!(args.len(), EPOCH_ARG);
        args.push(self.known_epoch());
        args.extend(call.extra.iter().cloned());
        let reply = match self.store.call(op, &keys, &args) {
            // The config was lost (a restart without persistence, an eviction): store it again, this process's
            // overrides with it, and send the call again (the engine refused it before writing anything).
            Err(StoreFailure::Refused(why))
                if !self.read_only && (why.starts_with(NO_CONFIG) || why.starts_with(NEW_EPOCH)) =>
            {
                self.store_limits(false)?;
                args[EPOCH_ARG] = self.known_epoch();
                self.store.call(op, &keys, &args)?
            }
            other => other?,
        };
        let Value::Array(items) = reply else { return Err(protocol("the reply is not an array")) };
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
        Ok(items)
    }

    /// Admits a call now holding permit `id` (its operation id), or says how long to wait.
    pub fn acquire(&self, tenant: &str, id: u64, now: u64) -> Result<Acquired, StoreFailure> {
        let items = self.call(Op::Acquire, &Call { tenant, id: Some(id), now, extra: vec![] })?;
        if field(&items, 2, "short acquire reply")? == 1 {
            let now = field(&items, 1, "short acquire reply")?;
            return Ok(Acquired::Granted { now, expires: field(&items, 3, "short acquire reply")? });
        }
        Ok(Acquired::Refused(refusal(&items, 3, "short refusal")?))
    }

    pub fn peek(&self, tenant: &str, now: u64) -> Result<Option<Refusal>, StoreFailure> {
        let items = self.call(Op::Peek, &Call { tenant, id: None, now, extra: vec![] })?;
        if field(&items, 2, "short peek reply")? == 0 {
            Ok(None)
        } else {
            refusal(&items, 2, "short peek reply").map(Some)
        }
    }

    /// Counts `count` calls made without the limiter.
    pub fn record(&self, tenant: &str, count: u32, now: u64) -> Result<(), StoreFailure> {
        self.call(Op::Record, &Call { tenant, id: Some(op_id()), now, extra: vec![count.to_string()] }).map(drop)
    }

    /// Gives permits back: one HDEL of their fields, so asking twice (a retry, a replay) changes nothing more.
    pub fn release(&self, ids: &[u64]) -> Result<(), StoreFailure> {
        self.refuse_writes()?;
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(self.keys.state());
        for &id in ids {
            hdel.arg(KeySpace::permit_field(id));
        }
        let reply = self.store.command(&hdel)?;
        match reply {
            Value::Int(_) => Ok(()),
            other => {
                self.store.discard_connections();
                Err(StoreFailure::Unavailable(format!("a reply for another operation arrived: {other:?}")))
            }
        }
    }

    /// Books the next free slot for reservation `id` (its operation id, which cancel names).
    pub fn reserve(&self, tenant: &str, id: u64, now: u64) -> Result<Booked, StoreFailure> {
        let items = self.call(Op::Reserve, &Call { tenant, id: Some(id), now, extra: vec![] })?;
        let what = "short reserve reply";
        Ok(match field(&items, 2, what)? {
            1 => Booked::At { now: field(&items, 1, what)?, at: field(&items, 3, what)? },
            2 => Booked::TooMany { wait_ms: field(&items, 3, what)? },
            _ => Booked::TooFar { wait_ms: field(&items, 3, what)? },
        })
    }

    /// Frees the booking of reservation `id`; false when there is none ahead (cancelled, or its time has come).
    pub fn cancel(&self, tenant: &str, id: u64, now: u64) -> Result<bool, StoreFailure> {
        let items = self.call(Op::Cancel, &Call { tenant, id: Some(op_id()), now, extra: vec![id.to_string()] })?;
        Ok(field(&items, 2, "short cancel reply")? == 1)
    }

    pub fn observe(&self, tenant: &str, effects: &Effects, now: u64) -> Result<(), StoreFailure> {
        let block = |b: Option<(u64, Reason)>| b.map_or([0, 0], |(wait, reason)| [wait, u64::from(reason.code())]);
        let remaining = |r: Option<u32>| r.map_or("-1".to_owned(), |r| r.to_string());
        let [tw, tr] = block(effects.tenant_block);
        let [aw, ar] = block(effects.app_block);
        let extra = vec![
            tw.to_string(),
            tr.to_string(),
            aw.to_string(),
            ar.to_string(),
            remaining(effects.minute_remaining),
            remaining(effects.day_remaining),
            remaining(effects.app_minute_remaining),
        ];
        self.call(Op::Observe, &Call { tenant, id: Some(op_id()), now, extra }).map(drop)
    }

    pub fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, StoreFailure> {
        let items = self.call(Op::Snapshot, &Call { tenant, id: None, now, extra: vec![] })?;
        let n: Vec<u64> = items.iter().skip(1).map(uint).collect::<Result<_, _>>()?;
        let [now_ms, mc, mb, dc, db, ac, ab, in_flight, conc, ml, dl, tbu, tbr, abu, abr, wait, wr] = n[..] else {
            return Err(protocol("snapshot reply has the wrong length"));
        };
        let l = self.limits();
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
        let block = |until: u64, code: u64| -> Result<(Option<u64>, Option<Reason>), StoreFailure> {
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

    /// Sets (or with `None` removes) a tenant's own limits; every process reads them at its next call.
    pub fn set_override(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), StoreFailure> {
        self.refuse_writes()?;
        let value = limits.map_or(String::new(), |l| format!("{},{},{}", l.minute_limit, l.day_limit, l.concurrency));
        // A new generation (non-zero, below 2^53: exact as a Lua number); tenants re-read their limits when it changes.
        let generation = op_id();
        let args = [self.keys.override_field(tenant), value, generation.to_string()];
        self.store.call(Op::SetOverride, &[self.keys.config(), self.keys.state()], &args)?;
        // Kept to store again if the config is lost (init.lua); a removed override is not restored.
        let [field, value, _] = args;
        let mut known = self.config.lock();
        if value.is_empty() {
            known.overrides.remove(&field);
        } else {
            known.overrides.insert(field, value);
        }
        Ok(())
    }
}

/// A store failure as the caller sees it (when the failure policy does not decide instead).
pub fn failure(failure: StoreFailure) -> PacingError {
    match failure {
        StoreFailure::Unavailable(why) | StoreFailure::Skipped(why) => PacingError::StoreUnavailable(why),
        StoreFailure::Refused(why) if why == READ_ONLY => PacingError::ReadOnly,
        StoreFailure::Refused(why) if why.starts_with(NO_CONFIG) => PacingError::NoStoredLimits,
        StoreFailure::Refused(why) => PacingError::Store(why),
        StoreFailure::Auth(why) => PacingError::StoreAuth(why),
        StoreFailure::Forbidden(why) => PacingError::StoreForbidden(why),
        StoreFailure::LimitsDiffer(why) => PacingError::LimitsDiffer(why),
    }
}
