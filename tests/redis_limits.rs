//! Limits are explicit: a read-only look at a prefix writes nothing, a limiter whose limits differ from the stored
//! ones refuses to start unless told which win, and what a process stored comes back after the store lost it.

#[path = "support/redis.rs"]
mod redis_support;

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use redis_support::RedisServer;
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, PacingError, RedisOptions, WindowLimit};

static PREFIXES: AtomicU64 = AtomicU64::new(0);

fn prefix() -> String {
    format!("limits{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed))
}

fn five_a_minute() -> Limits {
    Limits { tenant_minute: WindowLimit::new(5, 60_000, 500), ..Limits::default() }
}

fn dbsize(server: &RedisServer) -> u64 {
    server.cli(&["DBSIZE"]).trim().parse().expect("DBSIZE answers a count")
}

#[test]
fn inspecting_an_empty_prefix_writes_nothing_and_says_no_limits_are_stored() {
    let server = RedisServer::start();
    let options = RedisOptions::new(server.url(), prefix());
    let view = Limiter::inspect_redis(options, Clock::Monotonic).unwrap();
    assert_eq!(view.snapshot("tenant", view.now()).unwrap_err(), PacingError::NoStoredLimits);
    assert_eq!(view.snapshot("", view.now()).unwrap_err(), PacingError::NoStoredLimits);
    assert_eq!(view.peek("tenant", view.now()).unwrap_err(), PacingError::NoStoredLimits);
    // Writing operations are refused before anything is sent.
    assert_eq!(view.acquire("tenant", view.now()).unwrap_err(), PacingError::ReadOnly);
    assert_eq!(view.record("tenant", view.now()).unwrap_err(), PacingError::ReadOnly);
    assert_eq!(view.set_tenant_limits("tenant", None).unwrap_err(), PacingError::ReadOnly);
    assert!(matches!(view.reserve("tenant", view.now()), Err(PacingError::ReadOnly)));
    assert_eq!(dbsize(&server), 0, "the store is as empty as before: {:?}", server.keys("*"));
}

/// The C path the command line and the bindings take: `xg_limiter_inspect_redis`, then `xg_limiter_snapshot_json`.
#[test]
fn the_c_snapshot_of_an_empty_prefix_is_no_stored_limits_and_writes_nothing() {
    use xeroguard::ffi::*;
    let server = RedisServer::start();
    let (url, prefix) = (server.url(), prefix());
    let options = xg_redis_options {
        url: url.as_ptr().cast(),
        url_len: url.len(),
        key_prefix: prefix.as_ptr().cast(),
        key_prefix_len: prefix.len(),
        ..xg_redis_options_default()
    };
    let mut view = ptr::null_mut();
    assert_eq!(unsafe { xg_limiter_inspect_redis(&options, XG_CLOCK_MONOTONIC, &mut view) }, XG_STATUS_OK);
    let mut json = ptr::null_mut();
    let tenant = b"tenant";
    let status = unsafe { xg_limiter_snapshot_json(view, tenant.as_ptr().cast(), tenant.len(), &mut json) };
    assert_eq!(status, XG_STATUS_NO_STORED_LIMITS);
    assert!(json.is_null());
    let mut decision = xg_decision { struct_size: size_of::<xg_decision>() as u32, ..unsafe { std::mem::zeroed() } };
    let status = unsafe { xg_limiter_acquire(view, tenant.as_ptr().cast(), tenant.len(), &mut decision) };
    assert_eq!(status, XG_STATUS_INVALID_ARGUMENT, "an inspecting limiter does not acquire");
    unsafe { xg_limiter_free(view) };
    assert_eq!(dbsize(&server), 0, "{:?}", server.keys("*"));
}

#[test]
fn inspecting_a_prefix_reports_its_stored_limits_and_state_without_writing() {
    let server = RedisServer::start();
    let p = prefix();
    let worker = Limiter::new_redis(five_a_minute(), RedisOptions::new(server.url(), &p), Clock::Monotonic).unwrap();
    let Decision::Granted(_) = worker.acquire("tenant", worker.now()).unwrap() else { panic!("granted") };
    let before = server.cli(&["DEBUG", "DIGEST"]);
    let view = Limiter::inspect_redis(RedisOptions::new(server.url(), &p), Clock::Monotonic).unwrap();
    assert_eq!(*view.limits(), five_a_minute(), "the stored limits, not the defaults");
    let snapshot = view.snapshot("tenant", view.now()).unwrap();
    assert_eq!((snapshot.minute.limit, snapshot.minute.count, snapshot.in_flight), (5, 1, 1));
    assert_eq!(server.cli(&["DEBUG", "DIGEST"]), before, "the dataset is unchanged");
}

#[test]
fn differing_limits_are_refused_naming_both_unless_replaced_or_adopted() {
    let server = RedisServer::start();
    let p = prefix();
    let first = Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), &p), Clock::Monotonic).unwrap();
    // The same limits again: no question.
    Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), &p), Clock::Monotonic).unwrap();
    let Err(PacingError::LimitsDiffer(message)) =
        Limiter::new_redis(five_a_minute(), RedisOptions::new(server.url(), &p), Clock::Monotonic)
    else {
        panic!("stricter limits than the stored ones must not start silently");
    };
    assert!(message.contains("given 5 per 60000 ms") && message.contains("stored 60 per 60000 ms"), "{message}");
    assert!(message.contains("replace_limits") && message.contains("adopt_stored_limits"), "{message}");

    let adopt = RedisOptions { adopt_stored_limits: true, ..RedisOptions::new(server.url(), &p) };
    let adopted = Limiter::new_redis(five_a_minute(), adopt, Clock::Monotonic).unwrap();
    assert_eq!(*adopted.limits(), Limits::default(), "after adopting, the limiter reports the stored limits");

    let both = RedisOptions { adopt_stored_limits: true, replace_limits: true, ..RedisOptions::new(server.url(), &p) };
    let Err(PacingError::InvalidOptions(why)) = Limiter::new_redis(five_a_minute(), both, Clock::Monotonic) else {
        panic!("both flags are invalid");
    };
    assert!(why.contains("replace_limits") && why.contains("adopt_stored_limits"), "{why}");

    let replace = RedisOptions { replace_limits: true, ..RedisOptions::new(server.url(), &p) };
    let replaced = Limiter::new_redis(five_a_minute(), replace, Clock::Monotonic).unwrap();
    assert_eq!(*replaced.limits(), five_a_minute());
    // Every process paces by the replaced limits: the first one's tenant gets 5 calls a minute.
    for _ in 0..5 {
        let Decision::Granted(p) = first.acquire("t", first.now()).unwrap() else { panic!("granted") };
        first.release(p, first.now()).unwrap();
    }
    let Decision::Refused(r) = first.acquire("t", first.now()).unwrap() else { panic!("the 6th is refused") };
    assert_eq!(r.reason, xeroguard::Reason::Minute);
}
