//! Limits are explicit: a read-only look at a prefix writes nothing, a limiter whose limits differ from the stored
//! ones refuses to start unless told which win, and what a process stored comes back after the store lost it.

#[path = "support/redis.rs"]
mod redis_support;

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use redis_support::RedisServer;
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, PacingError, RedisOptions, TenantLimits, WindowLimit};
use xeroguard::{FailurePolicy, Reason};

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

/// A look is not answered by the failure policy given (xg_limiter_inspect_redis: `on_store_error` does not apply):
/// with the store stalled a peek gets closed's refusal, never `open`'s grant, and a snapshot fails.
#[test]
fn inspecting_a_stalled_store_is_not_answered_by_the_policy_given() {
    let mut server = RedisServer::start();
    let p = prefix();
    let worker = Limiter::new_redis(five_a_minute(), RedisOptions::new(server.url(), &p), Clock::Monotonic).unwrap();
    let Decision::Granted(_) = worker.acquire("tenant", worker.now()).unwrap() else { panic!("granted") };
    for policy in [FailurePolicy::Open, FailurePolicy::Local] {
        let options = RedisOptions { on_store_error: policy, ..RedisOptions::new(server.url(), &p) };
        let view = Limiter::inspect_redis(options, Clock::Monotonic).unwrap();
        server.pause();
        let peek = view.peek("tenant", view.now());
        let snapshot = view.snapshot("tenant", view.now());
        server.resume();
        // Closed's answer (a refusal, flagged), not the one given (granted under open, a local share's under local).
        let closed = matches!(&peek, Ok(Some(r)) if r.fallback == Some(FailurePolicy::Closed));
        assert!(closed, "{policy:?}: {peek:?}");
        assert!(matches!(snapshot, Err(PacingError::StoreUnavailable(_))), "{policy:?}: {snapshot:?}");
    }
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
    assert_eq!(r.reason, Reason::Minute);
}

fn vip() -> TenantLimits {
    TenantLimits { minute_limit: 2, day_limit: 100, concurrency: 0 }
}

/// The first `n` acquires of `tenant` at `now`, released at once: granted or the refusal's reason.
fn acquires(l: &Limiter, tenant: &str, n: usize, now: u64) -> Vec<Option<Reason>> {
    (0..n)
        .map(|_| match l.acquire(tenant, now).expect("no store error reaches the caller") {
            Decision::Granted(p) => {
                l.release(p, now).unwrap();
                None
            }
            Decision::Refused(r) => Some(r.reason),
        })
        .collect()
}

#[test]
fn every_process_stores_its_overrides_again_after_an_empty_restart() {
    let server = RedisServer::start();
    let p = prefix();
    let a = Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), &p), Clock::Manual).unwrap();
    let b = Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), &p), Clock::Manual).unwrap();
    a.set_tenant_limits("set-by-a", Some(vip())).unwrap();
    b.set_tenant_limits("set-by-b", Some(TenantLimits { minute_limit: 3, ..vip() })).unwrap();
    b.set_tenant_limits("removed-by-b", Some(vip())).unwrap();
    b.set_tenant_limits("removed-by-b", None).unwrap();
    assert_eq!(server.cli(&["FLUSHALL"]).trim(), "OK");
    // Each process's next call finds the config gone (a) or made again by another (b): it stores its own
    // overrides again and the call is answered, never failed.
    assert_eq!(acquires(&a, "set-by-a", 3, 0), [None, None, Some(Reason::Minute)]);
    assert_eq!(acquires(&b, "set-by-b", 4, 0), [None, None, None, Some(Reason::Minute)]);
    // Both are the store's again: each process sees the other's.
    assert_eq!(acquires(&b, "set-by-a", 1, 0), [Some(Reason::Minute)]);
    assert_eq!(acquires(&a, "set-by-b", 1, 0), [Some(Reason::Minute)]);
    assert_eq!(acquires(&a, "removed-by-b", 3, 0), [None, None, None], "a removed override stays removed");
    // The limits are the stored ones again, for a limiter started now.
    Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), &p), Clock::Manual).unwrap();
}

#[test]
fn under_eviction_the_config_is_stored_again_and_no_call_fails() {
    let server = RedisServer::builder().config("maxmemory", "4mb").config("maxmemory-policy", "allkeys-lru").start();
    let p = prefix();
    let l = Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), &p), Clock::Manual).unwrap();
    l.set_tenant_limits("vip", Some(vip())).unwrap();
    let config = format!("xg:{{{p}}}:cfg");
    let mut admin = server.admin_connection();
    let junk = "x".repeat(64 * 1024);
    let (mut now, mut config_evicted) = (0, 0);
    for i in 0..300 {
        admin.call(&["SET", &format!("junk:{i}"), &junk]).unwrap();
        config_evicted += usize::from(admin.call(&["EXISTS", &config]).unwrap().text() == "0");
        if i % 10 == 0 {
            now += 1_100; // past the engine's config refresh: it reads the config again
        }
        acquires(&l, &format!("t{}", i % 7), 1, now);
        l.record("t0", now).expect("no store error reaches the caller");
    }
    assert!(config_evicted > 0, "the config was evicted at least once (else this test shows nothing)");
    // Evicting goes on while memory is full, and may take the windows too (the reason the README asks for
    // noeviction): the check below needs them kept, so nothing is evicted any more; the config may be gone.
    assert_eq!(admin.call(&["CONFIG", "SET", "maxmemory", "0"]).unwrap().text(), "OK");
    now += 1_100;
    assert_eq!(acquires(&l, "vip", 3, now), [None, None, Some(Reason::Minute)], "the override was stored again");
}

/// After an empty restart the first response's `X-DayLimit-Remaining: 10` stands for 4,990 calls the store no
/// longer has. They are spread over the day the header describes, so once the tenant used its 10 it waits until
/// the first of them leaves (a day ÷ 4,991 plus the margin: 77 s), not a whole day; alike in both backends.
#[test]
fn remaining_calls_from_a_header_are_spread_over_its_window() {
    let server = RedisServer::start();
    let memory = Limiter::new(Limits::default(), Clock::Manual).unwrap();
    let shared =
        Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), prefix()), Clock::Manual).unwrap();
    let now = 100 * 86_400_000;
    let feedback = xeroguard::pacing::Feedback {
        status: 200,
        category: xeroguard::Category::Success,
        rate_limit_problem: None,
        recommended_wait_ms: None,
        minute_remaining: None,
        day_remaining: Some(10),
        app_minute_remaining: None,
    };
    for l in [&memory, &shared] {
        l.set_now(now).unwrap();
        l.observe("t", &feedback, now).unwrap();
        assert_eq!(l.snapshot("t", now).unwrap().day.remaining, 10);
        assert_eq!(acquires(l, "t", 10, now), [None; 10]);
        let Decision::Refused(r) = l.acquire("t", now).unwrap() else { panic!("the day is used up") };
        let step = 86_400_000 / 4_991;
        assert_eq!((r.reason, r.wait_ms), (Reason::Day, step + 60_000), "until the first of them leaves");
        // They leave one by one, at the pace they may have come.
        let later = now + step + 60_000;
        assert_eq!(acquires(l, "t", 2, later), [None, Some(Reason::Day)]);
    }
}
