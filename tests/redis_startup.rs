//! A limiter created while Redis is down (issue 20): under `open` and `local` it is created and its policy decides,
//! flagged, until the store answers; that first answered call makes the store ready (the engine loaded, the limits
//! stored or compared). Under `closed` creation fails. Limits that turn out to differ fail every call, as creation
//! would have, until they match. Real time is kept small: a 100 ms cooldown (a killed store refuses at once).

#[path = "support/redis.rs"]
mod redis_support;
#[path = "support/store_grants.rs"]
mod store_grants;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_support::RedisServer;
use store_grants::until_the_store_grants;
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, PacingError, RedisOptions, WindowLimit};
use xeroguard::{FailurePolicy, Reason};

const COOLDOWN: Duration = Duration::from_millis(100);

static PREFIXES: AtomicU64 = AtomicU64::new(0);

fn options(server: &RedisServer, policy: FailurePolicy) -> RedisOptions {
    let prefix = format!("startup{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed));
    RedisOptions {
        on_store_error: policy,
        deadline: Duration::from_secs(1),
        breaker_cooldown: COOLDOWN,
        workers: 2,
        ..RedisOptions::new(server.url(), prefix)
    }
}

/// Limits other than the defaults: 3 calls a minute per tenant.
fn strict() -> Limits {
    Limits { tenant_minute: WindowLimit { limit: 3, ..Limits::default().tenant_minute }, ..Limits::default() }
}

/// A server that was started and killed: its port refuses connections until [`RedisServer::restart`].
fn down_server() -> RedisServer {
    let mut server = RedisServer::start_tcp();
    server.kill();
    server
}

/// The stored limits field of the prefix's config (empty when none are stored).
fn stored_limits(server: &RedisServer, prefix: &str) -> String {
    server.cli(&["HGET", &format!("xg:{{{prefix}}}:cfg"), "lim"])
}

#[test]
fn open_and_local_limiters_are_created_while_the_store_is_down_and_use_it_once_it_answers() {
    for policy in [FailurePolicy::Open, FailurePolicy::Local] {
        let mut server = down_server();
        let options = options(&server, policy);
        let prefix = options.key_prefix.clone();
        let l = Limiter::new_redis(strict(), options, Clock::Monotonic)
            .unwrap_or_else(|e| panic!("{policy:?}: not created while the store is down: {e}"));
        // The policy decides: `open` grants; `local` lets its share (3 a minute ÷ 2 workers = 1) through.
        let first = l.acquire("tenant", l.now()).unwrap();
        let Decision::Granted(p) = first else { panic!("{policy:?}: refused with the store down: {first:?}") };
        assert_eq!(p.fallback, Some(policy), "{policy:?}: the policy decides while the store is down");
        l.release(p, l.now()).unwrap();
        let second = l.acquire("tenant", l.now()).unwrap();
        match (policy, second) {
            (FailurePolicy::Open, Decision::Granted(p)) => assert_eq!(p.fallback, Some(policy)),
            (FailurePolicy::Local, Decision::Refused(r)) => {
                assert_eq!((r.reason, r.fallback), (Reason::Minute, Some(policy)))
            }
            (_, second) => panic!("{policy:?}: the second call: {second:?}"),
        }
        let peeked = l.peek("tenant", l.now()).unwrap();
        assert!(peeked.is_none_or(|r| r.fallback == Some(policy)), "{policy:?}: peek answers by the policy");
        assert!(l.stats().store.failures.iter().sum::<u64>() > 0, "{policy:?}: the failures are counted");

        server.restart();
        assert_eq!(stored_limits(&server, &prefix), "", "{policy:?}: nothing is stored before the first call");
        let took = until_the_store_grants(&l, "tenant", Duration::from_secs(10));
        assert!(took <= COOLDOWN + Duration::from_secs(1), "{policy:?}: the store granted after {took:?}");
        assert!(!stored_limits(&server, &prefix).is_empty(), "{policy:?}: the first answered call stored the limits");
        assert_eq!(*l.limits(), strict());
        assert!(server.cli(&["FUNCTION", "LIST"]).contains("xeroguard"), "{policy:?}: the engine was loaded");

        // The store decides by the stored limits, 3 a minute: one taken by the probe above, and under `local` one
        // more, the call its share granted (counted into the store when it answered).
        let mut granted = 0;
        while let Decision::Granted(p) = l.acquire("tenant", l.now()).unwrap() {
            assert_eq!(p.fallback, None, "{policy:?}");
            granted += 1;
            assert!(granted <= 3, "{policy:?}: over the stored limit");
        }
        assert_eq!(granted, if policy == FailurePolicy::Local { 1 } else { 2 }, "{policy:?}");
        let refusal = l.peek("tenant", l.now()).unwrap().map(|r| (r.reason, r.fallback));
        assert_eq!(refusal, Some((Reason::Minute, None)), "{policy:?}: the store refuses by the minute");
    }
}

#[test]
fn a_closed_limiter_is_not_created_while_the_store_is_down() {
    let server = down_server();
    match Limiter::new_redis(strict(), options(&server, FailurePolicy::Closed), Clock::Monotonic) {
        Err(PacingError::StoreUnavailable(why)) => assert!(!why.is_empty()),
        Err(e) => panic!("closed: creation failed with another error: {e}"),
        Ok(_) => panic!("closed: created while the store is down"),
    }
}

#[test]
fn a_timeout_at_creation_is_an_outage_too() {
    let mut server = RedisServer::start_tcp();
    server.pause();
    let options = RedisOptions { deadline: Duration::from_millis(100), ..options(&server, FailurePolicy::Open) };
    let closed = RedisOptions { on_store_error: FailurePolicy::Closed, ..options.clone() };
    let l = Limiter::new_redis(strict(), options, Clock::Monotonic).expect("open: created while the store hangs");
    assert!(matches!(Limiter::new_redis(strict(), closed, Clock::Monotonic), Err(PacingError::StoreUnavailable(_))));
    server.resume();
    let took = until_the_store_grants(&l, "tenant", Duration::from_secs(10));
    assert!(took <= COOLDOWN + Duration::from_secs(1), "the store granted after {took:?}");
}

#[test]
fn limits_that_turn_out_to_differ_fail_every_call_until_they_match() {
    let mut server = down_server();
    let options = options(&server, FailurePolicy::Local);
    let l = Limiter::new_redis(strict(), options.clone(), Clock::Monotonic).expect("created while down");
    server.restart();
    // Another process stores other limits (the defaults) first.
    drop(Limiter::new_redis(Limits::default(), options.clone(), Clock::Monotonic).expect("the defaults stored"));
    std::thread::sleep(COOLDOWN);
    for _ in 0..3 {
        match l.acquire("tenant", l.now()) {
            Err(PacingError::LimitsDiffer(why)) => {
                assert!(why.contains("tenant minute: given 3 per"), "the message names both: {why}")
            }
            other => panic!("a limiter whose limits differ decided: {other:?}"),
        }
    }
    assert!(matches!(l.snapshot("tenant", l.now()), Err(PacingError::LimitsDiffer(_))));
    assert_eq!(*l.limits(), strict(), "nothing was adopted");
    // A deploy stores this limiter's limits: it paces by the store from its next call.
    let replace = RedisOptions { replace_limits: true, ..options };
    drop(Limiter::new_redis(strict(), replace, Clock::Monotonic).expect("the strict limits stored"));
    match l.acquire("tenant", l.now()).unwrap() {
        Decision::Granted(p) => assert_eq!(p.fallback, None),
        other => panic!("refused after the limits matched: {other:?}"),
    }
}

#[test]
fn a_limiter_told_to_adopt_adopts_the_stored_limits_when_the_store_answers() {
    let mut server = down_server();
    let options = RedisOptions { adopt_stored_limits: true, ..options(&server, FailurePolicy::Open) };
    let l = Limiter::new_redis(Limits::default(), options.clone(), Clock::Monotonic).expect("created while down");
    assert_eq!(*l.limits(), Limits::default(), "its own limits until the store answers");
    server.restart();
    let writer = RedisOptions { adopt_stored_limits: false, ..options };
    drop(Limiter::new_redis(strict(), writer, Clock::Monotonic).expect("the strict limits stored"));
    until_the_store_grants(&l, "tenant", Duration::from_secs(10));
    assert_eq!(*l.limits(), strict(), "the stored limits were adopted");
    assert!(l.snapshot("tenant", l.now()).is_ok());
}
