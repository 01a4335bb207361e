//! Pacing over the C ABI: an opaque `xg_limiter` handle and its operations.

use std::ffi::c_char;
use std::time::{Duration, SystemTime};

use super::boundary::*;
use super::classify::{RAW_READ_CAP, XG_NONE, classification_arg, raw_error, xg_classification};
use crate::classify::classify_raw;
use crate::pacing::{
    Clock, Decision, Feedback, Limiter, Limits, MAX_BOOKING_AHEAD_MS, MAX_TENANT_ID_BYTES, PacingError, Permit,
    RedisOptions, Refusal, Stats, Step, TenantLimits, WaitProgress, WindowLimit, stats, wait,
};
use crate::vocab::{Category, FailurePolicy, RateLimitProblem, StoreFailureKind};

/// The system's monotonic clock, counted from the limiter's creation.
pub const XG_CLOCK_MONOTONIC: u32 = 0;
/// A manual clock starting at 0 that moves only with `xg_limiter_advance_ms` / `xg_limiter_set_now_ms`.
pub const XG_CLOCK_MANUAL: u32 = 1;
/// The longest tenant id accepted, in bytes.
pub const XG_MAX_TENANT_ID_BYTES: usize = 256;

/// How far ahead `xg_limiter_reserve` books at most (about 24.8 days); beyond it, `XG_STATUS_BOOKING_TOO_FAR`.
pub const XG_MAX_BOOKING_AHEAD_MS: u64 = 2_147_483_648u64;
/// A deadline that never passes, for `xg_limiter_acquire_until`.
pub const XG_NO_DEADLINE: u64 = u64::MAX;

const _: () = assert!(XG_MAX_TENANT_ID_BYTES == MAX_TENANT_ID_BYTES);
const _: () = assert!(XG_MAX_BOOKING_AHEAD_MS == MAX_BOOKING_AHEAD_MS && XG_NO_DEADLINE == wait::NO_DEADLINE);

/// A limiter: per-tenant and per-app rolling windows, concurrency permits and server-feedback blocks. Opaque.
/// Every function taking a `const xg_limiter *` may run concurrently from any number of threads on the same
/// handle; only `xg_limiter_free` must not race with other calls on that handle.
pub struct xg_limiter {
    inner: Limiter,
}

/// One rolling window: at most `limit` calls in any `window_ms`, widened by `margin_ms`. `limit` 0 disables it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct xg_window_limit {
    pub limit: u32,
    pub window_ms: u64,
    pub margin_ms: u64,
}

/// Limiter configuration; start from `xg_limits_default()` (Xero's published limits with small margins).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct xg_limits {
    pub struct_size: u32,
    pub tenant_minute: xg_window_limit,
    pub tenant_day: xg_window_limit,
    /// Calls in flight per tenant (0 = unlimited).
    pub tenant_concurrency: u32,
    pub app_minute: xg_window_limit,
    /// A permit not released within this time expires.
    pub permit_timeout_ms: u64,
    /// The most tenants tracked at once (0 = no cap).
    pub max_tenants: u32,
}

/// A tenant's own limits (e.g. its plan's daily limit); windows and margins stay the limiter's.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct xg_tenant_limits {
    pub struct_size: u32,
    pub minute_limit: u32,
    pub day_limit: u32,
    pub concurrency: u32,
}

/// The answer of acquire/peek: granted (with a permit to release; 0 for tenantless calls, which hold none), or
/// refused with the exact `wait_ms` until it would be granted and the `xg_reason` code.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct xg_decision {
    pub struct_size: u32,
    /// 1 when granted, 0 when refused.
    pub granted: u8,
    pub permit: u64,
    pub wait_ms: u64,
    pub reason: u32,
    /// 0 when the limiter's state decided; else the `xg_failure_policy` that decided because a shared store could
    /// not be reached (added in ABI 2, in what was padding: older callers never see it).
    pub fallback: u32,
}

/// A booked future slot: the call counts from now on at `at_ms` (limiter clock), `wait_ms` from now.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct xg_reservation {
    pub struct_size: u32,
    pub id: u64,
    pub at_ms: u64,
    pub wait_ms: u64,
}

/// How a wait step ended (`xg_wait_step.outcome`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Granted: `permit` holds the concurrency slot to release.
    Granted = 1,
    /// Not yet: sleep `sleep_ms` (or until something else on this limiter frees capacity), then call again.
    AskAgain = 2,
    /// The deadline has passed, or the wait certainly ends after it: `wait_ms`/`reason` are the last refusal.
    GiveUp = 3,
}

/// One step of a wait (`xg_limiter_acquire_until`). `outcome` is an `xg_wait_outcome` code.
///
/// The last three fields (appended after 0.1.0) let the library count a wait of many steps once, with its length,
/// in `xg_limiter_stats`: pass the same struct to every step of one wait, zeroed before the first (`waiting` 0), and
/// the library keeps the wait's start in it; start the next wait with a zeroed struct again. A caller built against
/// an older header (a smaller `struct_size`) keeps working: its steps are counted as decisions, not as waits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct xg_wait_step {
    pub struct_size: u32,
    pub outcome: u32,
    /// Granted: the permit (0 for tenantless calls).
    pub permit: u64,
    /// Not granted: the last refusal's exact wait and `xg_reason`.
    pub wait_ms: u64,
    pub reason: u32,
    /// `XG_WAIT_OUTCOME_ASK_AGAIN`: how long to sleep before the next step (0: at once).
    pub sleep_ms: u64,
    /// As `xg_decision.fallback`.
    pub fallback: u32,
    /// In and out: 1 while a wait is in progress (set by the library at the wait's first refusal, cleared when it
    /// ends); 0 before the first step. Any other value is `XG_STATUS_INVALID_ARGUMENT`.
    pub waiting: u8,
    /// In and out: when the wait's first refusal came, on the limiter's clock (valid while `waiting` is 1).
    pub wait_started_ms: u64,
    /// Out: how long the wait has lasted through this step (ms); after its last step, its whole length (0 for a
    /// call granted at once).
    pub waited_ms: u64,
}

impl SizedStruct for xg_limits {}
impl SizedStruct for xg_tenant_limits {}
impl SizedStruct for xg_decision {}
impl SizedStruct for xg_reservation {}
impl SizedStruct for xg_wait_step {
    /// ABI 2 and 3 until `waiting` was appended: 48 bytes, ending after `fallback`.
    const EARLIER: &'static [(usize, usize)] = &[(48, 44)];
}

const _: () = assert!(std::mem::offset_of!(xg_wait_step, waiting) == 44 && size_of::<xg_wait_step>() == 64);

fn to_c_window(w: WindowLimit) -> xg_window_limit {
    xg_window_limit { limit: w.limit, window_ms: w.window_ms, margin_ms: w.margin_ms }
}

fn from_c_window(w: &xg_window_limit) -> WindowLimit {
    WindowLimit::new(w.limit, w.window_ms, w.margin_ms)
}

fn to_c_limits(l: Limits) -> xg_limits {
    xg_limits {
        struct_size: std::mem::size_of::<xg_limits>() as u32,
        tenant_minute: to_c_window(l.tenant_minute),
        tenant_day: to_c_window(l.tenant_day),
        tenant_concurrency: l.tenant_concurrency,
        app_minute: to_c_window(l.app_minute),
        permit_timeout_ms: l.permit_timeout_ms,
        max_tenants: l.max_tenants,
    }
}

/// What the `xg_limits_*` constructors return after an internal fault: `struct_size` 0, which every function refuses.
const NEVER_VALID_LIMITS: xg_limits = xg_limits {
    struct_size: 0,
    tenant_minute: xg_window_limit { limit: 0, window_ms: 0, margin_ms: 0 },
    tenant_day: xg_window_limit { limit: 0, window_ms: 0, margin_ms: 0 },
    tenant_concurrency: 0,
    app_minute: xg_window_limit { limit: 0, window_ms: 0, margin_ms: 0 },
    permit_timeout_ms: 0,
    max_tenants: 0,
};

/// Xero's limits with margins: 60/60 s (+500 ms) and 5000/24 h (+60 s) per tenant, 5 in flight, 10,000/60 s
/// (+500 ms) per app, permits expiring after 120 s, no tenant cap. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_limits_default() -> xg_limits {
    run_value("xg_limits_default", NEVER_VALID_LIMITS, || to_c_limits(Limits::default()))
}

/// Xero's limits exactly, with no margins (the theoretical maximum). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_limits_exact() -> xg_limits {
    run_value("xg_limits_exact", NEVER_VALID_LIMITS, || to_c_limits(Limits::exact()))
}

fn from_c_limits(l: &xg_limits) -> Limits {
    Limits {
        tenant_minute: from_c_window(&l.tenant_minute),
        tenant_day: from_c_window(&l.tenant_day),
        tenant_concurrency: l.tenant_concurrency,
        app_minute: from_c_window(&l.app_minute),
        permit_timeout_ms: l.permit_timeout_ms,
        max_tenants: l.max_tenants,
    }
}

fn pacing_error(e: PacingError) -> FfiError {
    let status = match e {
        PacingError::TenantIdTooLong => XG_STATUS_TOO_LARGE,
        PacingError::TooManyTenants => XG_STATUS_TOO_MANY_TENANTS,
        PacingError::UnknownPermit => XG_STATUS_UNKNOWN_PERMIT,
        PacingError::UnknownReservation => XG_STATUS_UNKNOWN_RESERVATION,
        PacingError::NotManualClock => XG_STATUS_WRONG_CLOCK,
        PacingError::Interrupted => XG_STATUS_INTERRUPTED,
        PacingError::BookingTooFar { .. } | PacingError::TooManyBookings { .. } => XG_STATUS_BOOKING_TOO_FAR,
        PacingError::StoreUnavailable(_) => XG_STATUS_STORE_UNAVAILABLE,
        PacingError::Store(_) => XG_STATUS_STORE_ERROR,
        PacingError::StoreAuth(_) => XG_STATUS_STORE_AUTH,
        PacingError::StoreForbidden(_) => XG_STATUS_STORE_FORBIDDEN,
        PacingError::LimitsDiffer(_) => XG_STATUS_LIMITS_DIFFER,
        PacingError::NoStoredLimits => XG_STATUS_NO_STORED_LIMITS,
        PacingError::ClockBackwards
        | PacingError::ReadOnly
        | PacingError::InvalidLimits(_)
        | PacingError::InvalidOptions(_)
        | PacingError::Timeout(_) => XG_STATUS_INVALID_ARGUMENT,
    };
    FfiError::new(status, e.to_string())
}

unsafe fn limiter_arg<'a>(limiter: *const xg_limiter) -> FfiResult<&'a Limiter> {
    // SAFETY: a non-NULL handle comes from xg_limiter_new and is not yet freed (caller's contract).
    Ok(&unsafe { in_ref(limiter, "limiter")? }.inner)
}

unsafe fn tenant_arg<'a>(tenant: *const c_char, tenant_len: usize) -> FfiResult<&'a str> {
    unsafe { text_arg(tenant, tenant_len, "tenant id", XG_MAX_TENANT_ID_BYTES) }
}

fn fallback_code(fallback: Option<FailurePolicy>) -> u32 {
    fallback.map_or(XG_NONE, FailurePolicy::code)
}

fn decision_to_c(decision: Decision) -> xg_decision {
    match decision {
        Decision::Granted(p) => xg_decision {
            struct_size: 0, // set by SizedOut::write
            granted: 1,
            permit: p.id,
            wait_ms: 0,
            reason: XG_NONE,
            fallback: fallback_code(p.fallback),
        },
        Decision::Refused(r) => xg_decision {
            struct_size: 0,
            granted: 0,
            permit: 0,
            wait_ms: r.wait_ms,
            reason: r.reason.code(),
            fallback: fallback_code(r.fallback),
        },
    }
}

fn step_to_c(step: Step, progress: &WaitProgress) -> xg_wait_step {
    let progress_fields = xg_wait_step {
        waiting: u8::from(progress.started_ms.is_some()),
        wait_started_ms: progress.started_ms.unwrap_or(0),
        waited_ms: progress.waited_ms,
        ..xg_wait_step::default()
    };
    let refused = |outcome: WaitOutcome, r: Refusal, sleep_ms: u64| xg_wait_step {
        struct_size: 0, // set by SizedOut::write
        outcome: outcome as u32,
        permit: 0,
        wait_ms: r.wait_ms,
        reason: r.reason.code(),
        sleep_ms,
        fallback: fallback_code(r.fallback),
        ..progress_fields
    };
    match step {
        Step::Granted(p) => xg_wait_step {
            struct_size: 0,
            outcome: WaitOutcome::Granted as u32,
            permit: p.id,
            wait_ms: 0,
            reason: XG_NONE,
            sleep_ms: 0,
            fallback: fallback_code(p.fallback),
            ..progress_fields
        },
        Step::AskAgain { sleep_ms, refusal } => refused(WaitOutcome::AskAgain, refusal, sleep_ms),
        Step::GiveUp(refusal) => refused(WaitOutcome::GiveUp, refusal, 0),
    }
}

/// Where the caller's wait stands, from the in/out fields of its `xg_wait_step`; `None` for a caller built against
/// a header whose struct lacks them.
///
/// Why the caller keeps this rather than the library: a step is a plain call (the bindings' async paths sleep
/// between steps in their own event loops, and may abandon a wait at any point, by cancellation), so per-wait state
/// in the library would need an id to look it up, a table shared by every thread, and a rule for forgetting waits
/// nobody ends. In the caller's struct it costs nothing, dies with the wait, and needs no new function: the struct
/// the caller already passes to every step carries it, and older callers keep the old size and the old behaviour.
///
/// # Safety
/// `out` passed `sized_out`: non-NULL, and writable for its declared `struct_size` bytes.
unsafe fn wait_progress_arg(out: *const xg_wait_step) -> FfiResult<Option<WaitProgress>> {
    // SAFETY: the caller's contract (above); the fields are read only when the declared size covers them.
    let declared = unsafe { (&raw const (*out).struct_size).read() } as usize;
    if declared < std::mem::size_of::<xg_wait_step>() {
        return Ok(None);
    }
    let (waiting, started) =
        unsafe { ((&raw const (*out).waiting).read(), (&raw const (*out).wait_started_ms).read()) };
    let started_ms = flag(waiting, "out", "waiting")?.then_some(started);
    Ok(Some(WaitProgress { started_ms, waited_ms: 0 }))
}

/// Creates a limiter. `limits` may be NULL for `xg_limits_default()`; `clock` is `XG_CLOCK_MONOTONIC` or
/// `XG_CLOCK_MANUAL`. On success `*out` receives a handle to free with `xg_limiter_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_new(limits: *const xg_limits, clock: u32, out: *mut *mut xg_limiter) -> xg_status {
    run("xg_limiter_new", || {
        let out = unsafe { out_ref(out, "out")? };
        let limits = unsafe { limits_arg(limits)? };
        let clock = clock_arg(clock)?;
        let inner = Limiter::new(limits, clock).map_err(pacing_error)?;
        *out = Box::into_raw(Box::new(xg_limiter { inner }));
        Ok(())
    })
}

/// How a limiter reaches a shared store (Redis or Valkey) and what it does without it; start from
/// `xg_redis_options_default()` and set `url` and `key_prefix`. Strings are UTF-8 (pointer, length), copied.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct xg_redis_options {
    pub struct_size: u32,
    /// `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), `redis+unix:///path/to/socket`, or a Cluster
    /// as `redis+cluster://host:port,host:port` (`rediss+cluster://` with TLS).
    pub url: *const c_char,
    pub url_len: usize,
    /// Every process using the same prefix (one per Xero app) shares windows, permits, blocks and limits.
    pub key_prefix: *const c_char,
    pub key_prefix_len: usize,
    /// The longest one operation may take (connect, write, read, one retry), in ms; default 250, at most 10,000.
    pub deadline_ms: u64,
    /// After 3 operations in a row failed, the store is not asked again for this long (ms; default 1000); then one
    /// probe goes.
    pub breaker_cooldown_ms: u64,
    /// An `xg_failure_policy` code: `XG_FAILURE_POLICY_CLOSED` (default), `_OPEN` or `_LOCAL`.
    pub on_store_error: u32,
    /// For `XG_FAILURE_POLICY_LOCAL`: how many processes share the limits (each keeps limit / workers, at least 1).
    pub workers: u32,
    /// What wins when the prefix holds other limits than these: `XG_STORED_LIMITS_MUST_MATCH` (0, the default:
    /// `XG_STATUS_LIMITS_DIFFER`), `XG_STORED_LIMITS_REPLACE` (1: these are written over them) or
    /// `XG_STORED_LIMITS_ADOPT` (2: the stored ones are paced by; `xg_limiter_limits` reports them). A value, not a
    /// new field, because this struct is returned by value and so never grows.
    pub replace_limits: u8,
    /// Optional: a PEM file of certificate authorities to trust for `rediss://` (NULL, 0: the system's).
    pub tls_ca_file: *const c_char,
    pub tls_ca_file_len: usize,
}

// Returned by value (`xg_redis_options_default`): a caller built against an older header gives a buffer of its size
// for the result, so this struct keeps ABI 2's 88 bytes for good (the header's rules).
impl SizedStruct for xg_redis_options {}

const _: () = assert!(size_of::<xg_redis_options>() == 88);

/// `xg_redis_options.replace_limits`: the stored limits must equal the limiter's (else `XG_STATUS_LIMITS_DIFFER`).
pub const XG_STORED_LIMITS_MUST_MATCH: u8 = 0;
/// `xg_redis_options.replace_limits`: the limiter's limits are written over the stored ones.
pub const XG_STORED_LIMITS_REPLACE: u8 = 1;
/// `xg_redis_options.replace_limits`: the stored limits are adopted.
pub const XG_STORED_LIMITS_ADOPT: u8 = 2;

/// The longest store deadline accepted (`xg_redis_options.deadline_ms`).
pub const XG_MAX_STORE_DEADLINE_MS: u64 = 10_000;
/// The longest key prefix accepted, in bytes (`xg_redis_options.key_prefix`).
pub const XG_MAX_KEY_PREFIX_BYTES: usize = 128;

const _: () = assert!(XG_MAX_KEY_PREFIX_BYTES == crate::pacing::redis::MAX_PREFIX_BYTES);

/// What `xg_redis_options_default` returns after an internal fault: `struct_size` 0, which every function refuses.
/// (A constant: building the fallback must not run code a panic could escape from.)
const NEVER_VALID_REDIS_OPTIONS: xg_redis_options = xg_redis_options {
    struct_size: 0,
    url: std::ptr::null(),
    url_len: 0,
    key_prefix: std::ptr::null(),
    key_prefix_len: 0,
    deadline_ms: 0,
    breaker_cooldown_ms: 0,
    on_store_error: 0,
    workers: 0,
    replace_limits: 0,
    tls_ca_file: std::ptr::null(),
    tls_ca_file_len: 0,
};

/// Options with the defaults and no URL or prefix yet (set both). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_redis_options_default() -> xg_redis_options {
    run_value("xg_redis_options_default", NEVER_VALID_REDIS_OPTIONS, redis_defaults)
}

fn redis_defaults() -> xg_redis_options {
    let d = RedisOptions::new("", "");
    xg_redis_options {
        struct_size: std::mem::size_of::<xg_redis_options>() as u32,
        url: std::ptr::null(),
        url_len: 0,
        key_prefix: std::ptr::null(),
        key_prefix_len: 0,
        deadline_ms: u64::try_from(d.deadline.as_millis()).unwrap_or(u64::MAX),
        breaker_cooldown_ms: u64::try_from(d.breaker_cooldown.as_millis()).unwrap_or(u64::MAX),
        on_store_error: d.on_store_error.code(),
        workers: d.workers,
        replace_limits: XG_STORED_LIMITS_MUST_MATCH,
        tls_ca_file: std::ptr::null(),
        tls_ca_file_len: 0,
    }
}

/// The options a caller's struct describes, its strings copied.
///
/// # Safety
/// Each (pointer, length) pair of `o` is NULL with length 0, or points to that many readable bytes.
unsafe fn options_from_c(o: &xg_redis_options) -> FfiResult<RedisOptions> {
    // SAFETY (the three text arguments): pointers and lengths come from the caller's struct, under its contract.
    let url = unsafe { text_arg(o.url, o.url_len, "options->url", 4096)? };
    let prefix = unsafe { text_arg(o.key_prefix, o.key_prefix_len, "options->key_prefix", XG_MAX_KEY_PREFIX_BYTES)? };
    let ca = unsafe { text_arg(o.tls_ca_file, o.tls_ca_file_len, "options->tls_ca_file", 4096)? };
    if url.is_empty() || prefix.is_empty() {
        return Err(FfiError::new(XG_STATUS_INVALID_ARGUMENT, "options->url and options->key_prefix are required"));
    }
    let invalid = |what: String| FfiError::new(XG_STATUS_INVALID_ARGUMENT, what);
    let on_store_error = FailurePolicy::from_code(o.on_store_error)
        .ok_or_else(|| invalid(format!("options->on_store_error: unknown failure policy {}", o.on_store_error)))?;
    if o.deadline_ms == 0 || o.deadline_ms > XG_MAX_STORE_DEADLINE_MS {
        return Err(invalid(format!(
            "options->deadline_ms is {}; it must be 1 to {XG_MAX_STORE_DEADLINE_MS}",
            o.deadline_ms
        )));
    }
    if o.workers == 0 {
        return Err(invalid("options->workers must be at least 1".into()));
    }
    let mut options = RedisOptions::new(url, prefix);
    options.deadline = Duration::from_millis(o.deadline_ms);
    options.breaker_cooldown = Duration::from_millis(o.breaker_cooldown_ms);
    options.on_store_error = on_store_error;
    options.workers = o.workers;
    (options.replace_limits, options.adopt_stored_limits) = match o.replace_limits {
        XG_STORED_LIMITS_MUST_MATCH => (false, false),
        XG_STORED_LIMITS_REPLACE => (true, false),
        XG_STORED_LIMITS_ADOPT => (false, true),
        other => {
            return Err(invalid(format!(
                "options->replace_limits is {other}; it must be XG_STORED_LIMITS_MUST_MATCH (0), _REPLACE (1) or \
                 _ADOPT (2)"
            )));
        }
    };
    options.tls_ca_file = (!ca.is_empty()).then(|| ca.to_owned());
    Ok(options)
}

fn clock_arg(clock: u32) -> FfiResult<Clock> {
    match clock {
        XG_CLOCK_MONOTONIC => Ok(Clock::Monotonic),
        XG_CLOCK_MANUAL => Ok(Clock::Manual),
        other => Err(FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("unknown clock {other}"))),
    }
}

/// The limits a caller gave, or the defaults for NULL.
///
/// # Safety
/// As [`read_sized`].
unsafe fn limits_arg(limits: *const xg_limits) -> FfiResult<Limits> {
    match limits.is_null() {
        true => Ok(Limits::default()),
        // SAFETY: forwarded contract.
        false => Ok(from_c_limits(&unsafe { read_sized(limits, "limits", xg_limits_default())? })),
    }
}

/// Creates a limiter whose windows, permits, blocks and limits are shared, through Redis, by every process and
/// machine using the same `options->key_prefix`: every decision is one atomic script on the store's clock. Every
/// other `xg_limiter_*` function works on it unchanged. `limits` (NULL: the defaults) initialise a prefix that holds
/// none; a prefix holding other limits is `XG_STATUS_LIMITS_DIFFER` (the message names both) unless
/// `options->replace_limits` is `XG_STORED_LIMITS_REPLACE` (these are stored) or `_ADOPT` (the stored ones are used).
/// `clock`: `XG_CLOCK_MONOTONIC` in production (the store's clock decides; this one times waits),
/// `XG_CLOCK_MANUAL` for tests (the manual reading is the store's clock; a prefix is either). It connects once
/// now: `XG_STATUS_STORE_UNAVAILABLE` when the store cannot be reached within the deadline under
/// `XG_FAILURE_POLICY_CLOSED` (under `_OPEN` and `_LOCAL` the handle is made and the policy decides until the store
/// answers, whose first answered call stores or compares the limits), `XG_STATUS_STORE_AUTH`
/// for a wrong user or password, `XG_STATUS_STORE_FORBIDDEN` when its ACL lacks a command, `XG_STATUS_STORE_ERROR`
/// when it refuses otherwise (another clock). Later, while the
/// store cannot be reached, `options->on_store_error` decides and `xg_decision.fallback` says so. A handle made
/// before `fork()` may be used in both processes (the child never shares the parent's connections). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_new_redis(
    limits: *const xg_limits,
    options: *const xg_redis_options,
    clock: u32,
    out: *mut *mut xg_limiter,
) -> xg_status {
    run("xg_limiter_new_redis", || {
        let out = unsafe { out_ref(out, "out")? };
        let limits = unsafe { limits_arg(limits)? };
        let options = unsafe { options_from_c(&read_sized(options, "options", redis_defaults())?)? };
        let clock = clock_arg(clock)?;
        let inner = Limiter::new_redis(limits, options, clock).map_err(pacing_error)?;
        *out = Box::into_raw(Box::new(xg_limiter { inner }));
        Ok(())
    })
}

/// Opens a shared limiter's key prefix for inspection: nothing is ever written to the store (not even limits to an
/// empty prefix). `xg_limiter_snapshot_json` and `xg_limiter_peek` answer (`XG_STATUS_NO_STORED_LIMITS` on a prefix
/// that holds no limits); operations that would write are `XG_STATUS_INVALID_ARGUMENT`. `xg_limiter_limits`
/// reports the stored limits (the defaults when there are none). `options->replace_limits`, `on_store_error` and
/// `workers` do not apply. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_inspect_redis(
    options: *const xg_redis_options,
    clock: u32,
    out: *mut *mut xg_limiter,
) -> xg_status {
    run("xg_limiter_inspect_redis", || {
        let out = unsafe { out_ref(out, "out")? };
        let options = unsafe { options_from_c(&read_sized(options, "options", redis_defaults())?)? };
        let inner = Limiter::inspect_redis(options, clock_arg(clock)?).map_err(pacing_error)?;
        *out = Box::into_raw(Box::new(xg_limiter { inner }));
        Ok(())
    })
}

/// Frees a limiter. NULL is a no-op. No other call may be using the handle, and it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_free(limiter: *mut xg_limiter) {
    if limiter.is_null() {
        return;
    }
    run_value("xg_limiter_free", (), || {
        // SAFETY: the handle came from xg_limiter_new and is freed once (caller's contract).
        drop(unsafe { Box::from_raw(limiter) });
    });
}

/// Stores the limits the limiter paces by in `*out` (set `out->struct_size`): for a shared limiter, the limits
/// stored for its prefix (after `XG_STORED_LIMITS_ADOPT`, the stored ones, not those given). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_limits(limiter: *const xg_limiter, out: *mut xg_limits) -> xg_status {
    run("xg_limiter_limits", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let out = unsafe { sized_out(out, "out")? };
        out.write(to_c_limits(*limiter.limits()));
        Ok(())
    })
}

/// Stores the limiter's clock reading (ms) in `*out_ms`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_now_ms(limiter: *const xg_limiter, out_ms: *mut u64) -> xg_status {
    run("xg_limiter_now_ms", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let out = unsafe { out_ref(out_ms, "out_ms")? };
        *out = limiter.now();
        Ok(())
    })
}

/// Moves a manual clock forward by `ms` and wakes `xg_limiter_acquire_wait` callers. `XG_STATUS_WRONG_CLOCK` on a
/// monotonic limiter. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_advance_ms(limiter: *const xg_limiter, ms: u64) -> xg_status {
    run("xg_limiter_advance_ms", || unsafe { limiter_arg(limiter)? }.advance(ms).map(drop).map_err(pacing_error))
}

/// Sets a manual clock to `now_ms`; it cannot move backwards (`XG_STATUS_INVALID_ARGUMENT`). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_set_now_ms(limiter: *const xg_limiter, now_ms: u64) -> xg_status {
    run("xg_limiter_set_now_ms", || unsafe { limiter_arg(limiter)? }.set_now(now_ms).map_err(pacing_error))
}

/// Asks for a call now. Granted: the call is recorded in every window and `out->permit` holds a concurrency
/// slot to give back with `xg_limiter_release`. Refused: nothing changes and `out->wait_ms` / `out->reason` say
/// exactly how long and why. Tenant ids are UTF-8 (pointer, length); an empty id (NULL, 0) is a tenantless call
/// (e.g. `/connections`), limited only by the app window. Thread-safe; tenants on different shards never contend.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_acquire(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    out: *mut xg_decision,
) -> xg_status {
    run("xg_limiter_acquire", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let out = unsafe { sized_out(out, "out")? };
        let decision = limiter.acquire(tenant, limiter.now()).map_err(pacing_error)?;
        out.write(decision_to_c(decision));
        Ok(())
    })
}

/// Like `xg_limiter_acquire`, but blocks the calling thread until granted or until `timeout_ms` (on the
/// limiter's clock) has passed. Returns `XG_STATUS_OK` either way: `out->granted` says which; when not granted,
/// `wait_ms`/`reason` are the last refusal. It fails early when the wait certainly ends after the timeout, except
/// for concurrency (a release may come sooner). `XG_STATUS_INTERRUPTED` when `xg_limiter_interrupt` is called.
/// Thread-safe; wakes on releases, cancellations and clock moves.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_acquire_wait(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    timeout_ms: u64,
    out: *mut xg_decision,
) -> xg_status {
    run("xg_limiter_acquire_wait", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let out = unsafe { sized_out(out, "out")? };
        let decision = match limiter.acquire_wait(tenant, timeout_ms) {
            Ok(permit) => Decision::Granted(permit),
            Err(PacingError::Timeout(refusal)) => Decision::Refused(refusal),
            Err(e) => return Err(pacing_error(e)),
        };
        out.write(decision_to_c(decision));
        Ok(())
    })
}

/// Stores in `*deadline_ms` the instant `timeout_ms` from now on the limiter's clock (saturating:
/// `XG_NO_DEADLINE` never passes), for `xg_limiter_acquire_until`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_deadline_ms(
    limiter: *const xg_limiter,
    timeout_ms: u64,
    deadline_ms: *mut u64,
) -> xg_status {
    run("xg_limiter_deadline_ms", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let out = unsafe { out_ref(deadline_ms, "deadline_ms")? };
        *out = limiter.deadline(timeout_ms);
        Ok(())
    })
}

/// One step of a wait for a permit, with `deadline_ms` on the limiter's clock (from `xg_limiter_deadline_ms`). It
/// blocks at most `max_block_ms` (0: not at all), then `out->outcome` says: `XG_WAIT_OUTCOME_GRANTED` (`permit`);
/// `XG_WAIT_OUTCOME_GIVE_UP` (the deadline has passed or the wait certainly ends after it; `wait_ms`/`reason` are
/// the last refusal); or `XG_WAIT_OUTCOME_ASK_AGAIN` (sleep `sleep_ms`, waking sooner when this process frees
/// capacity, then call again). This is the wait policy of `xg_limiter_acquire_wait` cut into steps, so a caller
/// can stay responsive (a Python thread to Ctrl-C, an async task to cancellation) and never decides itself when to
/// give up. `XG_STATUS_INTERRUPTED` after `xg_limiter_interrupt`. Pass the same `*out` to every step of one wait,
/// zeroed before the first: its `waiting`/`wait_started_ms` let `xg_limiter_stats` count the wait once, with its
/// length (`waited_ms`). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_acquire_until(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    deadline_ms: u64,
    max_block_ms: u64,
    out: *mut xg_wait_step,
) -> xg_status {
    run("xg_limiter_acquire_until", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let checked = unsafe { sized_out(out, "out")? };
        // SAFETY: `sized_out` checked the pointer and its declared size.
        let tracked = unsafe { wait_progress_arg(out)? };
        let max_block = Some(Duration::from_millis(max_block_ms));
        let mut progress = tracked.unwrap_or_default();
        let step = match tracked {
            Some(_) => limiter.acquire_step(tenant, deadline_ms, max_block, &mut progress),
            None => limiter.acquire_until(tenant, deadline_ms, max_block),
        };
        checked.write(step_to_c(step.map_err(pacing_error)?, &progress));
        Ok(())
    })
}

/// Ends every wait on this limiter, now and later: threads blocked in `xg_limiter_acquire_wait` or
/// `xg_limiter_acquire_until` return `XG_STATUS_INTERRUPTED` at once, and so do later waits. Every other function
/// keeps working. Shutting down a limiter that threads may be waiting on: call this, join those threads, then
/// `xg_limiter_free`. Thread-safe (also from a signal-handling thread; it takes no lock a waiter holds for long).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_interrupt(limiter: *const xg_limiter) -> xg_status {
    run("xg_limiter_interrupt", || {
        unsafe { limiter_arg(limiter)? }.interrupt();
        Ok(())
    })
}

/// What `xg_limiter_acquire` would answer now, taking nothing (`out->permit` is 0). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_peek(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    out: *mut xg_decision,
) -> xg_status {
    run("xg_limiter_peek", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let out = unsafe { sized_out(out, "out")? };
        let decision = limiter.peek_decision(tenant, limiter.now()).map_err(pacing_error)?;
        out.write(decision_to_c(decision));
        Ok(())
    })
}

/// Counts a call made without the limiter, now (it counts even over a limit: it happened). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_record(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
) -> xg_status {
    run("xg_limiter_record", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        limiter.record(tenant, limiter.now()).map_err(pacing_error)
    })
}

/// Gives back a permit from acquire. Permit 0 is a no-op. `XG_STATUS_UNKNOWN_PERMIT` when it is not held (already
/// released, expired, or never granted). On a shared store that cannot be reached it never fails: the release is
/// deferred and replayed when the store answers (`xg_stats.replays_pending`). Thread-safe; wakes
/// `xg_limiter_acquire_wait` callers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_release(limiter: *const xg_limiter, permit: u64) -> xg_status {
    run("xg_limiter_release", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        limiter.release(Permit::new(permit), limiter.now()).map_err(pacing_error)
    })
}

/// Books the tenant's next free slot (after those already booked: first come, first served) and counts the call
/// there from now on. It takes no concurrency permit. Cancel with `xg_limiter_cancel` before `at_ms` to free
/// the slot. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_reserve(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    out: *mut xg_reservation,
) -> xg_status {
    run("xg_limiter_reserve", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let out = unsafe { sized_out(out, "out")? };
        let r = limiter.reserve(tenant, limiter.now()).map_err(pacing_error)?;
        out.write(xg_reservation { struct_size: 0, id: r.id, at_ms: r.at_ms, wait_ms: r.wait_ms });
        Ok(())
    })
}

/// Frees a reserved slot whose time has not come. `XG_STATUS_UNKNOWN_RESERVATION` otherwise. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_cancel(limiter: *const xg_limiter, reservation: u64) -> xg_status {
    run("xg_limiter_cancel", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        limiter.cancel(reservation, limiter.now()).map_err(pacing_error)
    })
}

fn optional_count(value: i64) -> Option<u32> {
    u32::try_from(value).ok()
}

fn feedback_from_c(c: &xg_classification) -> FfiResult<Feedback> {
    let category = Category::from_code(c.category)
        .ok_or_else(|| FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("unknown category code {}", c.category)))?;
    let rate_limit_problem = match c.rate_limit_problem {
        XG_NONE => None,
        code => Some(RateLimitProblem::from_code(code).ok_or_else(|| {
            FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("unknown rate_limit_problem code {code}"))
        })?),
    };
    Ok(Feedback {
        status: c.status,
        category,
        rate_limit_problem,
        recommended_wait_ms: u64::try_from(c.recommended_wait_ms).ok(),
        minute_remaining: optional_count(c.minute_remaining),
        day_remaining: optional_count(c.day_remaining),
        app_minute_remaining: optional_count(c.app_minute_remaining),
    })
}

/// Takes the server's feedback on a call for `tenant`, from a classification made by `xg_classify`:
/// remaining-count headers raise local usage (never lower it); a 429 blocks the tenant (or the whole app for
/// `app_minute`) for `recommended_wait_ms`; an offline organisation blocks its tenant; a 503 outage blocks the
/// app. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_observe(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    classification: *const xg_classification,
) -> xg_status {
    run("xg_limiter_observe", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let c = unsafe { classification_arg(classification, "classification")? };
        let feedback = feedback_from_c(&c)?;
        limiter.observe(tenant, &feedback, limiter.now()).map_err(pacing_error)
    })
}

/// `xg_limiter_observe` on a raw HTTP response (as for `xg_classify_raw`). A `Retry-After` HTTP-date without a
/// `Date` header is measured against the limiter's clock: the system clock for `XG_CLOCK_MONOTONIC`, and for
/// `XG_CLOCK_MANUAL` the manual reading taken as milliseconds since the Unix epoch. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_observe_raw(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    raw: *const u8,
    raw_len: usize,
) -> xg_status {
    run("xg_limiter_observe_raw", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let raw = unsafe { bytes_arg(raw, raw_len, "raw", RAW_READ_CAP)? };
        let now = limiter.now();
        // A Retry-After date is measured on the limiter's clock: a manual clock reads as milliseconds since the
        // epoch (so tests can pin it), the monotonic one has no date and uses the system's.
        let date = match limiter.clock() {
            Clock::Manual => SystemTime::UNIX_EPOCH + Duration::from_millis(now),
            Clock::Monotonic => SystemTime::now(),
        };
        let classification = classify_raw(raw, date).map_err(raw_error)?;
        limiter.observe(tenant, &Feedback::from(&classification), now).map_err(pacing_error)
    })
}

/// Stores in `*json_out` a JSON object describing the tenant now: per window `limit`, `window_ms`, `count`,
/// `remaining`, `booked`; `in_flight`, `concurrency_limit`, blocks (`blocked_until_ms`, `block_reason`, and the
/// app's), and what acquire would answer (`wait_ms`, `wait_reason`). Free it with `xg_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_snapshot_json(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    json_out: *mut *mut c_char,
) -> xg_status {
    run("xg_limiter_snapshot_json", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        let out = unsafe { out_ref(json_out, "json_out")? };
        let snapshot = limiter.snapshot(tenant, limiter.now()).map_err(pacing_error)?;
        *out = owned_c_string(snapshot.to_json().to_string());
        Ok(())
    })
}

/// Sets a tenant's own limits, or clears them when `limits` is NULL. Its recorded calls are kept. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_set_tenant_limits(
    limiter: *const xg_limiter,
    tenant: *const c_char,
    tenant_len: usize,
    limits: *const xg_tenant_limits,
) -> xg_status {
    run("xg_limiter_set_tenant_limits", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let tenant = unsafe { tenant_arg(tenant, tenant_len)? };
        if tenant.is_empty() {
            return Err(FfiError::new(XG_STATUS_INVALID_ARGUMENT, "tenantless calls have no tenant limits"));
        }
        let limits = match limits.is_null() {
            true => None,
            false => {
                let defaults = limiter.limits().tenant();
                let defaults = xg_tenant_limits {
                    struct_size: 0,
                    minute_limit: defaults.minute_limit,
                    day_limit: defaults.day_limit,
                    concurrency: defaults.concurrency,
                };
                let l = unsafe { read_sized(limits, "limits", defaults)? };
                Some(TenantLimits { minute_limit: l.minute_limit, day_limit: l.day_limit, concurrency: l.concurrency })
            }
        };
        limiter.set_tenant_limits(tenant, limits).map_err(pacing_error)
    })
}

/// Slots of `xg_stats.refused`: one per `xg_reason` code (slot 0 stays 0).
///
/// The lengths of `xg_stats`'s arrays never change, whatever later versions add: each `XG_STATS_*` constant is
/// fixed with the header that introduced it. A code added to a vocabulary later (a new `xg_reason`, say) is counted
/// in a field appended to the end of `xg_stats` (e.g. `refused_more[XG_STATS_REASONS_MORE]`, its slot i holding
/// code XG_STATS_REASONS + i), never by lengthening an array, which would move every field after it. So a program
/// built against this header reads the same offsets from every later library, and the figures of codes it does not
/// know lie beyond its `struct_size`.
pub const XG_STATS_REASONS: usize = 9;
/// Slots of `xg_stats.fallbacks`: one per `xg_failure_policy` code (slot 0 stays 0). Fixed (see `XG_STATS_REASONS`).
pub const XG_STATS_FAILURE_POLICIES: usize = 4;
/// Slots of `xg_stats.wait_buckets` and `wait_bucket_le_ms`. Fixed (see `XG_STATS_REASONS`).
pub const XG_STATS_WAIT_BUCKETS: usize = 7;
/// Slots of `xg_stats.responses`: one per `xg_category` code. Fixed (see `XG_STATS_REASONS`).
pub const XG_STATS_CATEGORIES: usize = 17;
/// Slots of `xg_stats.rate_limited`: one per `xg_rate_limit_problem` code (slot 0 stays 0: a 429 naming no problem
/// counts as `unknown`). Fixed (see `XG_STATS_REASONS`).
pub const XG_STATS_RATE_LIMIT_PROBLEMS: usize = 6;
/// Slots of `xg_stats.store_failures`: one per `xg_store_failure_kind` code (slot 0 stays 0). Fixed (see
/// `XG_STATS_REASONS`).
pub const XG_STATS_STORE_FAILURE_KINDS: usize = 5;

// A vocabulary that outgrows its array must follow the rule at XG_STATS_REASONS (append a field), not change these.
const _: () = assert!(XG_STATS_REASONS == stats::REASON_SLOTS);
const _: () = assert!(XG_STATS_FAILURE_POLICIES == stats::FAILURE_POLICY_SLOTS);
const _: () = assert!(XG_STATS_WAIT_BUCKETS == stats::WAIT_BUCKETS);
const _: () = assert!(XG_STATS_CATEGORIES == stats::CATEGORY_SLOTS);
const _: () = assert!(XG_STATS_RATE_LIMIT_PROBLEMS == stats::RATE_LIMIT_PROBLEM_SLOTS);
const _: () = assert!(XG_STATS_STORE_FAILURE_KINDS == stats::STORE_FAILURE_KIND_SLOTS);

/// A limiter's statistics since it was made (`xg_limiter_stats`): counters that only grow, except the store's
/// gauges (`breaker_open`, `replays_pending`). Arrays are indexed by a vocabulary's codes.
///
/// Decisions are acquire's answers, and each wait's first answer and final grant (not the re-asks in between): so
/// `granted` is exactly the permits handed out, and `refused` the refusals callers were told of. Peek and reserve
/// are not counted. A wait is an `xg_limiter_acquire_wait`, or the steps of one `xg_limiter_acquire_until` wait,
/// whose first answer was a refusal: counted in `waits_started` then, and when it ends in one of `waits_granted`,
/// `waits_given_up`, `waits_interrupted` (by `xg_limiter_interrupt` or an error) with its length on the limiter's
/// clock from that first refusal. A stepped wait its caller abandons never ends.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct xg_stats {
    pub struct_size: u32,
    /// 1 when the limiter keeps its state in a shared store (Redis): the `store_*` and breaker figures are its.
    pub shared: u8,
    /// 1 while the store's breaker is open: the store is not asked and the failure policy decides.
    pub breaker_open: u8,
    /// Decisions granted: the permits handed out.
    pub granted: u64,
    /// Refusals by `xg_reason` code.
    pub refused: [u64; XG_STATS_REASONS],
    /// Decisions (granted or refused) the failure policy made because the store could not, by `xg_failure_policy`.
    pub fallbacks: [u64; XG_STATS_FAILURE_POLICIES],
    pub waits_started: u64,
    pub waits_granted: u64,
    pub waits_given_up: u64,
    pub waits_interrupted: u64,
    /// The ended waits' lengths added up (ms).
    pub wait_ms_total: u64,
    /// Each wait bucket's upper bound (ms, inclusive): 10, 100, 1000, 10000, 65000, 600000, and UINT64_MAX.
    pub wait_bucket_le_ms: [u64; XG_STATS_WAIT_BUCKETS],
    /// Ended waits per bucket: not cumulative (a Prometheus histogram adds them up).
    pub wait_buckets: [u64; XG_STATS_WAIT_BUCKETS],
    /// Responses observed (`xg_limiter_observe*`) by `xg_category` code.
    pub responses: [u64; XG_STATS_CATEGORIES],
    /// Observed 429s by `xg_rate_limit_problem` code.
    pub rate_limited: [u64; XG_STATS_RATE_LIMIT_PROBLEMS],
    /// Operations sent to the store (each script run; a retry is another).
    pub store_operations: u64,
    /// Failed store operations by `xg_store_failure_kind` code.
    pub store_failures: [u64; XG_STATS_STORE_FAILURE_KINDS],
    /// Times the breaker opened.
    pub breaker_openings: u64,
    /// Releases, cancels and timed-out acquires the store has not confirmed yet, replayed when it answers.
    pub replays_pending: u64,
}

impl SizedStruct for xg_stats {}

fn stats_to_c(s: &Stats) -> xg_stats {
    let mut bounds = [u64::MAX; XG_STATS_WAIT_BUCKETS];
    bounds[..stats::WAIT_BUCKET_BOUNDS_MS.len()].copy_from_slice(&stats::WAIT_BUCKET_BOUNDS_MS);
    xg_stats {
        struct_size: 0, // set by SizedOut::write
        shared: u8::from(s.store.shared),
        breaker_open: u8::from(s.store.breaker_open),
        granted: s.granted,
        refused: s.refused,
        fallbacks: s.fallbacks,
        waits_started: s.waits.started,
        waits_granted: s.waits.granted,
        waits_given_up: s.waits.gave_up,
        waits_interrupted: s.waits.interrupted,
        wait_ms_total: s.waits.total_ms,
        wait_bucket_le_ms: bounds,
        wait_buckets: s.waits.buckets,
        responses: s.responses,
        rate_limited: s.rate_limited,
        store_operations: s.store.operations,
        store_failures: s.store.failures,
        breaker_openings: s.store.breaker_openings,
        replays_pending: s.store.replays_pending,
    }
}

/// Stores the limiter's statistics in `*out` (set `out->struct_size` to `sizeof(xg_stats)` first). It takes no lock
/// and changes nothing: each figure is read on its own, so a reading taken during traffic may count a decision in
/// `granted` before the wait it ended. Call it as often as a metrics scrape does. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_limiter_stats(limiter: *const xg_limiter, out: *mut xg_stats) -> xg_status {
    run("xg_limiter_stats", || {
        let limiter = unsafe { limiter_arg(limiter)? };
        let out = unsafe { sized_out(out, "out")? };
        out.write(stats_to_c(&limiter.stats()));
        Ok(())
    })
}

/// The vocabulary word of an `xg_store_failure_kind` code (`"timeout"`, …): a static string, or NULL for an
/// unknown code. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_store_failure_kind_name(code: u32) -> *const c_char {
    run_value("xg_store_failure_kind_name", std::ptr::null(), || {
        StoreFailureKind::from_code(code).map_or(std::ptr::null(), |kind| kind.c_name().as_ptr())
    })
}
