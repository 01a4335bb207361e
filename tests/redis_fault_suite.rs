//! The faults a fleet meets, under every failure policy (issue 20, point 7): Redis stalled (SIGSTOP 0.1 s, 1 s,
//! 3 s) while permits are given back and while they are asked for, idle connections closed by the server
//! (`timeout 1`), connections killed in a loop (CLIENT KILL), the server busy (DEBUG SLEEP), a wrong password.
//!
//! After the store answers again: every tenant is granted by the store within the breaker's cooldown + 1 s; no
//! release raises, none is lost (the store's in-flight count returns to 0: permits given back during the outage and
//! those of acquires that timed out are replayed); under `closed` no window holds more than its limit. Real time is
//! kept small with a short deadline and cooldown: about 20 s of wall time on 2 cores, tests in parallel. Through
//! the CLIENT KILL loop no operation of the library's takes over 10 ms on the server (SLOWLOG).

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use redis_support::{RedisServer, Resp};
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, PacingError, Permit, RedisOptions, WindowLimit};
use xeroguard::{FailurePolicy, StoreFailureKind};

const DEADLINE: Duration = Duration::from_millis(100);
const COOLDOWN: Duration = Duration::from_millis(200);
/// The bound issue 20 sets: granted by the store within the cooldown + 1 s of it answering again.
const RECOVERY: Duration = Duration::from_millis(1_200);
/// The longest a call may take while the store does not answer: the deadline, and scheduling on a loaded 2-core
/// machine (still far below the stalls, which it must not wait for).
const BOUNDED: Duration = Duration::from_millis(350);
const POLICIES: [FailurePolicy; 3] = [FailurePolicy::Closed, FailurePolicy::Open, FailurePolicy::Local];
const TENANTS: [&str; 2] = ["tenant-a", "tenant-b"];
/// Each tenant's concurrency: the permits held when a stall starts fill it.
const CONCURRENCY: u32 = 2;

static PREFIXES: AtomicU64 = AtomicU64::new(0);

fn limits(minute_limit: u32) -> Limits {
    Limits {
        tenant_minute: WindowLimit::new(minute_limit, 60_000, 0),
        tenant_day: WindowLimit::new(1_000_000, 86_400_000, 0),
        tenant_concurrency: CONCURRENCY,
        app_minute: WindowLimit::new(1_000_000, 60_000, 0),
        ..Limits::default()
    }
}

fn limiter_with(url: String, policy: FailurePolicy, limits: Limits) -> Limiter {
    let prefix = format!("suite{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed));
    let options = RedisOptions {
        deadline: DEADLINE,
        breaker_cooldown: COOLDOWN,
        on_store_error: policy,
        workers: 2,
        ..RedisOptions::new(url, prefix)
    };
    Limiter::new_redis(limits, options, Clock::Monotonic).expect("connect")
}

/// One limiter per policy on `server`, with windows that do not bind.
fn limiters(server: &RedisServer) -> Vec<Limiter> {
    POLICIES.map(|policy| limiter_with(server.url(), policy, limits(100_000))).into()
}

fn release(l: &Limiter, permit: Permit) {
    let released = l.release(permit, l.now());
    assert_eq!(released, Ok(()), "{:?}: a release never raises for an outage", l.stats().fallbacks);
}

/// Fills every tenant's concurrency with permits the store granted.
fn fill(l: &Limiter) -> Vec<Permit> {
    let mut held = Vec::new();
    for tenant in TENANTS {
        for _ in 0..CONCURRENCY {
            match l.acquire(tenant, l.now()).expect("acquire") {
                Decision::Granted(p) if p.fallback.is_none() => held.push(p),
                other => panic!("the store grants while it answers: {other:?}"),
            }
        }
    }
    held
}

/// From now on, every tenant is granted by the store within [`RECOVERY`] (its permit given back at once), and
/// then the store's in-flight count of every tenant returns to 0: nothing given back was lost, no acquire left a
/// permit nobody holds.
fn assert_recovers(l: &Limiter, what: &str) {
    let started = Instant::now();
    for tenant in TENANTS {
        loop {
            match l.acquire(tenant, l.now()).expect("acquire") {
                Decision::Granted(p) => {
                    let by_store = p.fallback.is_none();
                    release(l, p);
                    if by_store {
                        break;
                    }
                }
                Decision::Refused(_) => {}
            }
            let waited = started.elapsed();
            assert!(waited < RECOVERY, "{what}: {tenant} not granted by the store within {waited:?}: {:?}", l.stats());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Each call replays a batch; an acquire that timed out needs two passes.
    for tenant in TENANTS {
        let in_flight = (0..3).map(|_| l.snapshot(tenant, l.now()).expect("snapshot").in_flight).last();
        assert_eq!(in_flight, Some(0), "{what}: {tenant}'s permits all given back: {:?}", l.stats().store);
    }
    assert_eq!(l.stats().store.replays_pending, 0, "{what}");
}

/// Redis stalls for `pause` while every limiter gives back the permits filling its tenants.
fn stall_during_releases(pause: Duration) {
    let mut server = RedisServer::start();
    let limiters = limiters(&server);
    let held: Vec<Vec<Permit>> = limiters.iter().map(fill).collect();
    server.pause();
    let paused = Instant::now();
    for (l, permits) in limiters.iter().zip(held) {
        for p in permits {
            let started = Instant::now();
            release(l, p);
            let took = started.elapsed();
            assert!(took < BOUNDED, "a release is bounded by the deadline: {took:?}");
        }
        if paused.elapsed() + DEADLINE < pause {
            // Still stalled: every release is deferred, the breaker opened after 3 failures in a row.
            let store = l.stats().store;
            assert_eq!(store.replays_pending, u64::from(CONCURRENCY) * 2, "{store:?}");
            assert!(store.breaker_open && store.breaker_openings >= 1, "{store:?}");
        }
    }
    std::thread::sleep(pause.saturating_sub(paused.elapsed()));
    server.resume();
    for (l, policy) in limiters.iter().zip(POLICIES) {
        assert_recovers(l, &format!("{policy:?} after a {pause:?} stall during releases"));
    }
}

/// Redis stalls for `pause` while every limiter asks for permits (their requests sit in its buffers: the acquires
/// run when it wakes, after the caller gave up on them).
fn stall_during_acquires(pause: Duration) {
    let mut server = RedisServer::start();
    let limiters = limiters(&server);
    server.pause();
    let paused = Instant::now();
    for (l, policy) in limiters.iter().zip(POLICIES) {
        for tenant in TENANTS {
            for _ in 0..CONCURRENCY {
                let started = Instant::now();
                let decision = l.acquire(tenant, l.now()).expect("acquire");
                let took = started.elapsed();
                assert!(took < BOUNDED, "{policy:?}: an acquire is bounded by the deadline: {took:?}");
                if let Decision::Granted(p) = decision {
                    // The server stays stopped through this loop: only a policy that decides alone grants.
                    assert!(policy != FailurePolicy::Closed, "closed grants nothing while Redis is stalled: {p:?}");
                    release(l, p);
                }
            }
        }
    }
    std::thread::sleep(pause.saturating_sub(paused.elapsed()));
    server.resume();
    for (l, policy) in limiters.iter().zip(POLICIES) {
        assert_recovers(l, &format!("{policy:?} after a {pause:?} stall during acquires"));
    }
}

#[test]
fn stall_100ms_during_releases() {
    stall_during_releases(Duration::from_millis(100));
}

#[test]
fn stall_1s_during_releases() {
    stall_during_releases(Duration::from_secs(1));
}

#[test]
fn stall_3s_during_releases() {
    stall_during_releases(Duration::from_secs(3));
}

#[test]
fn stall_100ms_during_acquires() {
    stall_during_acquires(Duration::from_millis(100));
}

#[test]
fn stall_1s_during_acquires() {
    stall_during_acquires(Duration::from_secs(1));
}

#[test]
fn stall_3s_during_acquires() {
    stall_during_acquires(Duration::from_secs(3));
}

/// A short stall (one slow reply) does not open the breaker: it takes several failures in a row.
#[test]
fn one_slow_reply_does_not_open_the_breaker() {
    let mut server = RedisServer::start();
    let l = limiter_with(server.url(), FailurePolicy::Closed, limits(100_000));
    assert!(matches!(l.acquire("tenant-a", l.now()), Ok(Decision::Granted(p)) if { release(&l, p); true }));
    server.pause();
    let d = l.acquire("tenant-a", l.now()).expect("acquire");
    server.resume();
    assert!(matches!(d, Decision::Refused(r) if r.fallback == Some(FailurePolicy::Closed)), "{d:?}");
    let store = l.stats().store;
    assert_eq!((store.breaker_open, store.breaker_openings), (false, 0), "{store:?}");
    assert!(store.failures_of(StoreFailureKind::Timeout) >= 1, "{store:?}");
    // The next call is asked of the store at once (no cooldown), and replays the timed-out acquire's permit.
    assert_recovers(&l, "after one slow reply");
    assert!(l.stats().store.operations > 0);
}

/// Redis closes connections idle for 1 s (`timeout 1`, as managed Redis and proxies do): the first call after an
/// idle pause is still decided by the store (the dead pool is dropped, the call made on a fresh connection).
#[test]
fn idle_connections_closed_by_the_server_are_replaced_within_the_call() {
    let server = RedisServer::builder().config("timeout", "1").start();
    let limiters = limiters(&server);
    for _ in 0..2 {
        for l in &limiters {
            // Several calls at once, so the pool holds several connections.
            let barrier = Barrier::new(3);
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        barrier.wait();
                        if let Decision::Granted(p) = l.acquire("tenant-a", l.now()).expect("acquire") {
                            release(l, p);
                        }
                    });
                }
            });
        }
        // Real idle time: the server's timeout is what this test is about.
        std::thread::sleep(Duration::from_millis(1_600));
        for (l, policy) in limiters.iter().zip(POLICIES) {
            match l.acquire("tenant-b", l.now()).expect("acquire") {
                Decision::Granted(p) if p.fallback.is_none() => release(l, p),
                other => panic!("{policy:?}: the first call after idling was not decided by the store: {other:?}"),
            }
        }
    }
    for l in &limiters {
        assert!(!l.stats().store.breaker_open);
    }
}

/// Connections killed in a loop while 3 threads per policy take turns on one tenant: no release raises, every
/// permit is given back in the store, and under `closed` the minute window never holds more than its limit.
#[test]
fn client_kill_loop() {
    const MINUTE_LIMIT: u32 = 30;
    let server = RedisServer::builder()
        .config("slowlog-log-slower-than", &SLOW_US.to_string())
        .config("slowlog-max-len", "10000")
        .start();
    let limiters: Vec<Limiter> = POLICIES.map(|policy| limiter_with(server.url(), policy, limits(MINUTE_LIMIT))).into();
    let stop = AtomicBool::new(false);
    let closed_grants = AtomicU64::new(0);
    std::thread::scope(|s| {
        for (l, policy) in limiters.iter().zip(POLICIES) {
            for _ in 0..3 {
                let (stop, closed_grants) = (&stop, &closed_grants);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match l.acquire("tenant-a", l.now()).expect("acquire") {
                            Decision::Granted(p) => {
                                assert!(policy != FailurePolicy::Closed || p.fallback.is_none(), "{p:?}");
                                if policy == FailurePolicy::Closed {
                                    closed_grants.fetch_add(1, Ordering::Relaxed);
                                }
                                std::thread::sleep(Duration::from_millis(5));
                                release(l, p);
                            }
                            Decision::Refused(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                });
            }
        }
        let mut admin = server.admin_connection();
        let started = Instant::now();
        let (mut kills, mut killed) = (0, 0);
        while started.elapsed() < Duration::from_millis(1_500) {
            let Ok(Resp::Integer(n)) = admin.call(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]) else {
                panic!("CLIENT KILL answers how many connections it closed");
            };
            kills += 1;
            killed += n;
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(kills > 20 && killed > 0, "{kills} kills closed {killed} connections");
    });
    let closed = &limiters[0];
    let minute = closed.snapshot("tenant-a", closed.now()).expect("snapshot").minute;
    assert!(minute.count <= MINUTE_LIMIT, "closed: the minute window over its limit: {minute:?}");
    let granted = closed_grants.load(Ordering::Relaxed);
    assert!((1..=u64::from(MINUTE_LIMIT)).contains(&granted), "closed: {granted} grants in one minute");
    for (l, policy) in limiters.iter().zip(POLICIES) {
        let in_flight = (0..3).map(|_| l.snapshot("tenant-a", l.now()).expect("snapshot").in_flight).last();
        assert_eq!(in_flight, Some(0), "{policy:?}: every permit given back: {:?}", l.stats().store);
    }
    assert_eq!(slow_operations(&server), Vec::<String>::new(), "operations over {SLOW_US} us on the server");
}

/// Issue 20's cost bound through the faults: no operation of the library's over 10 ms on the server (SLOWLOG).
const SLOW_US: u32 = 10_000;

/// The library's commands SLOWLOG holds (its own CLIENT KILL and SLOWLOG calls left out), as "COMMAND (us)".
fn slow_operations(server: &RedisServer) -> Vec<String> {
    server
        .slowlog()
        .into_iter()
        .filter(|c| !matches!(c.name().as_str(), "CLIENT" | "SLOWLOG" | "CONFIG"))
        .map(|c| format!("{} ({} us)", c.name(), c.micros))
        .collect()
}

/// The server busy for 1 s (DEBUG SLEEP: it reads nothing meanwhile) while every policy decides: calls stay
/// bounded by the deadline, and the store decides again within the cooldown + 1 s.
#[test]
fn debug_sleep() {
    let server = RedisServer::builder().config("enable-debug-command", "yes").start();
    let limiters = limiters(&server);
    let held: Vec<Vec<Permit>> = limiters.iter().map(fill).collect();
    let sleeping = Arc::new(Barrier::new(2));
    let sleeper = {
        let (mut admin, sleeping) = (server.admin_connection(), Arc::clone(&sleeping));
        std::thread::spawn(move || {
            admin.send(&["DEBUG", "SLEEP", "1"]).expect("DEBUG SLEEP sent");
            sleeping.wait();
            admin.read_reply().expect("DEBUG SLEEP answered")
        })
    };
    sleeping.wait();
    std::thread::sleep(Duration::from_millis(50));
    for (l, permits) in limiters.iter().zip(held) {
        for p in permits {
            release(l, p);
        }
        let started = Instant::now();
        let decision = l.acquire("tenant-a", l.now()).expect("acquire");
        let took = started.elapsed();
        assert!(took < BOUNDED, "bounded by the deadline while the server sleeps: {took:?}");
        if let Decision::Granted(p) = decision {
            release(l, p);
        }
    }
    assert_eq!(sleeper.join().unwrap(), Resp::Simple("OK".into()), "DEBUG SLEEP ran");
    let timeouts: u64 = limiters.iter().map(|l| l.stats().store.failures_of(StoreFailureKind::Timeout)).sum();
    assert!(timeouts > 0, "the calls made while the server slept timed out");
    for (l, policy) in limiters.iter().zip(POLICIES) {
        assert_recovers(l, &format!("{policy:?} after DEBUG SLEEP 1"));
    }
}

/// A wrong password is its own error, under every policy, naming what to fix; so is a missing one (NOAUTH).
#[test]
fn a_wrong_password_says_so() {
    let server = RedisServer::builder().acl_user("pacer", "s3cret", &["allcommands", "allkeys"]).start();
    let wrong = server.url_for_user("pacer").replace("s3cret", "wrong");
    // A password set once the server runs (the test helpers need it open to start it): a URL without one gets NOAUTH.
    let protected = RedisServer::start();
    protected.cli(&["CONFIG", "SET", "requirepass", "s3cret"]);
    for policy in POLICIES {
        // As a Functions library (a large FUNCTION LOAD first) and as scripts (a small EVALSHA: NOAUTH).
        for (url, functions) in [(&wrong, true), (&wrong, false), (&protected.url(), true), (&protected.url(), false)] {
            let prefix = format!("auth{}", PREFIXES.fetch_add(1, Ordering::Relaxed));
            let options = RedisOptions {
                on_store_error: policy,
                deadline: DEADLINE,
                functions,
                ..RedisOptions::new(url.clone(), prefix)
            };
            match Limiter::new_redis(limits(10), options, Clock::Monotonic) {
                Err(e @ PacingError::StoreAuth(_)) => {
                    assert!(e.to_string().contains("user and password in the store URL"), "{e}");
                }
                Err(other) => panic!("{policy:?}: {other:?}"),
                Ok(_) => panic!("{policy:?}: connected with a wrong password"),
            }
        }
    }
}
