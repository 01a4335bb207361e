//! The Redis backend against the in-process one: random operation sequences (several tenants; acquire, peek, record,
//! release, reserve, cancel, observe, clock moves, limit changes) run on both, on a manual clock, must give identical
//! decisions, waits, reasons, errors and snapshots. The generic suites (model, soak) run on Redis too.

#[path = "suites/model.rs"]
mod model;
#[path = "support/redis.rs"]
mod redis_support;
#[path = "suites/soak.rs"]
mod soak;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use redis_support::{RedisCluster, RedisServer};
use xeroguard::pacing::{
    Clock, Decision, Feedback, Limiter, Limits, PacingError, Permit, RedisOptions, Snapshot, TenantLimits,
};
use xeroguard::{Category, RateLimitProblem};

static PREFIXES: AtomicU64 = AtomicU64::new(0);

/// A limiter on a fresh key prefix of the store at `url`, on the manual clock.
fn redis_limiter(url: &str, limits: Limits) -> Limiter {
    let prefix = format!("test{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed));
    Limiter::new_redis(limits, RedisOptions::new(url, prefix), Clock::Manual).expect("connect")
}

/// The model suite's limits: small enough that every window binds in a short sequence.
use model::limits;

const TENANTS: [&str; 3] = ["a", "b{x}:m", ""];

#[derive(Clone, Debug)]
enum Op {
    Acquire(usize),
    Peek(usize),
    Record(usize),
    Reserve(usize),
    Release(usize),
    Cancel(usize),
    Observe { tenant: usize, kind: u8, wait: u64, remaining: u32 },
    SetLimits { tenant: usize, minute: u32, day: u32, concurrency: u32 },
    ClearLimits(usize),
    Advance(u64),
    Snapshot(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize).prop_map(Op::Acquire),
        1 => (0..3usize).prop_map(Op::Peek),
        1 => (0..3usize).prop_map(Op::Record),
        2 => (0..3usize).prop_map(Op::Reserve),
        2 => (0..8usize).prop_map(Op::Release),
        1 => (0..8usize).prop_map(Op::Cancel),
        2 => (0..3usize, 0..6u8, 0..200u64, 0..8u32)
            .prop_map(|(tenant, kind, wait, remaining)| Op::Observe { tenant, kind, wait, remaining }),
        1 => (0..2usize, 0..5u32, 0..8u32, 0..3u32)
            .prop_map(|(tenant, minute, day, concurrency)| Op::SetLimits { tenant, minute, day, concurrency }),
        1 => (0..2usize).prop_map(Op::ClearLimits),
        3 => (0..70u64).prop_map(Op::Advance),
        1 => (0..3usize).prop_map(Op::Snapshot),
    ]
}

fn feedback(kind: u8, wait: u64, remaining: u32) -> Feedback {
    let base = Feedback {
        status: 200,
        category: Category::Success,
        rate_limit_problem: None,
        recommended_wait_ms: Some(0),
        minute_remaining: Some(remaining),
        day_remaining: Some(remaining),
        app_minute_remaining: Some(remaining),
    };
    let limited = |problem| Feedback {
        status: 429,
        category: Category::RateLimited,
        rate_limit_problem: Some(problem),
        recommended_wait_ms: Some(wait),
        ..base
    };
    match kind {
        0 => base,
        1 => limited(RateLimitProblem::Minute),
        2 => limited(RateLimitProblem::AppMinute),
        3 => Feedback { status: 503, category: Category::OrganisationOffline, recommended_wait_ms: Some(wait), ..base },
        4 => Feedback { status: 503, category: Category::ServiceUnavailable, recommended_wait_ms: Some(wait), ..base },
        _ => Feedback { minute_remaining: None, day_remaining: Some(remaining), ..base },
    }
}

/// A snapshot without what only the in-process backend knows (how many tenants it tracks).
fn comparable(mut s: Snapshot) -> Snapshot {
    s.tenants_tracked = 0;
    s
}

/// Permits and reservation ids differ between backends: results compare with ids replaced by their index.
fn same_decision(memory: &Decision, redis: &Decision) -> bool {
    match (memory, redis) {
        (Decision::Granted(a), Decision::Granted(b)) => (a.id == 0) == (b.id == 0) && a.fallback == b.fallback,
        (a, b) => a == b,
    }
}

fn run_both(url: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let memory = Limiter::new(limits(), Clock::Manual).unwrap();
    let redis = redis_limiter(url, limits());
    let mut now = 0u64;
    let mut permits: Vec<(Permit, Permit)> = Vec::new();
    let mut reservations: Vec<(u64, u64)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let context = || format!("step {step}: {op:?} at {now}");
        match *op {
            Op::Advance(ms) => now += ms,
            Op::Acquire(t) => {
                let (a, b) = (memory.acquire(TENANTS[t], now), redis.acquire(TENANTS[t], now));
                match (&a, &b) {
                    (Ok(a), Ok(b)) => {
                        prop_assert!(same_decision(a, b), "{}: memory {a:?}, redis {b:?}", context());
                        if let (Decision::Granted(pa), Decision::Granted(pb)) = (a, b) {
                            permits.push((*pa, *pb));
                        }
                    }
                    _ => prop_assert_eq!(a, b, "{}", context()),
                }
            }
            Op::Peek(t) => prop_assert_eq!(memory.peek(TENANTS[t], now), redis.peek(TENANTS[t], now), "{}", context()),
            Op::Record(t) => {
                prop_assert_eq!(memory.record(TENANTS[t], now), redis.record(TENANTS[t], now), "{}", context())
            }
            Op::Reserve(t) => {
                let (a, b) = (memory.reserve(TENANTS[t], now), redis.reserve(TENANTS[t], now));
                match (&a, &b) {
                    (Ok(a), Ok(b)) => {
                        prop_assert_eq!((a.at_ms, a.wait_ms), (b.at_ms, b.wait_ms), "{}", context());
                        reservations.push((a.id, b.id));
                    }
                    _ => prop_assert_eq!(a, b, "{}", context()),
                }
            }
            Op::Release(k) => {
                if permits.is_empty() {
                    continue;
                }
                let (a, b) = permits.remove(k % permits.len());
                prop_assert_eq!(memory.release(a, now), redis.release(b, now), "{}", context());
            }
            Op::Cancel(k) => {
                if reservations.is_empty() {
                    continue;
                }
                let (a, b) = reservations.remove(k % reservations.len());
                prop_assert_eq!(memory.cancel(a, now), redis.cancel(b, now), "{}", context());
            }
            Op::Observe { tenant, kind, wait, remaining } => {
                let f = feedback(kind, wait, remaining);
                prop_assert_eq!(memory.observe(TENANTS[tenant], &f, now), redis.observe(TENANTS[tenant], &f, now));
            }
            Op::SetLimits { tenant, minute, day, concurrency } => {
                let l = Some(TenantLimits { minute_limit: minute, day_limit: day, concurrency });
                prop_assert_eq!(
                    memory.set_tenant_limits(TENANTS[tenant], l),
                    redis.set_tenant_limits(TENANTS[tenant], l)
                );
            }
            Op::ClearLimits(t) => {
                prop_assert_eq!(memory.set_tenant_limits(TENANTS[t], None), redis.set_tenant_limits(TENANTS[t], None))
            }
            Op::Snapshot(t) => {
                let a = memory.snapshot(TENANTS[t], now).map(comparable);
                let b = redis.snapshot(TENANTS[t], now).map(comparable);
                prop_assert_eq!(a, b, "{}", context());
            }
        }
    }
    for t in TENANTS {
        let a = memory.snapshot(t, now).map(comparable);
        let b = redis.snapshot(t, now).map(comparable);
        prop_assert_eq!(a, b, "final snapshot of {:?}", t);
    }
    Ok(())
}

fn server() -> String {
    static SERVER: std::sync::OnceLock<RedisServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(RedisServer::start).url()
}

/// A Redis Cluster of three primaries, addressed as `redis+cluster://node,node,node`.
fn cluster() -> String {
    static CLUSTER: std::sync::OnceLock<(RedisCluster, String)> = std::sync::OnceLock::new();
    let (_, url) = CLUSTER.get_or_init(|| {
        let cluster = RedisCluster::start();
        let nodes: Vec<String> =
            cluster.seed_urls().iter().map(|u| u.trim_start_matches("redis://").to_owned()).collect();
        let url = format!("redis+cluster://{}", nodes.join(","));
        (cluster, url)
    });
    url.clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn redis_and_in_process_backends_decide_alike(ops in proptest::collection::vec(op(), 1..80)) {
        run_both(&server(), &ops)?;
    }

    #[test]
    fn redis_limiter_matches_the_reference_model(ops in proptest::collection::vec(model::op(), 1..80)) {
        model::check(&|limits| redis_limiter(&server(), limits), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Every script touches one tenant's keys and the app's: one hash tag, one slot, no CROSSSLOT, whichever node.
    #[test]
    fn redis_cluster_decides_like_in_process(ops in proptest::collection::vec(op(), 1..60)) {
        run_both(&cluster(), &ops)?;
    }
}

#[test]
fn soak_redis_limiter() {
    // A call takes ~0.1 ms on loopback (against ~0.2 µs in process): the clock moves slower for the same mix.
    soak::run(&|limits| redis_limiter(&server(), limits), soak::seconds(), 1, Duration::from_micros(50));
}

#[test]
fn errors_are_the_same_too() {
    let memory = Limiter::new(limits(), Clock::Manual).unwrap();
    let redis = redis_limiter(&server(), limits());
    let long = "t".repeat(257);
    assert_eq!(memory.acquire(&long, 0), redis.acquire(&long, 0));
    assert_eq!(redis.acquire(&long, 0), Err(PacingError::TenantIdTooLong));
    assert_eq!(memory.release(Permit::new(12345), 0), redis.release(Permit::new(12345), 0));
    assert_eq!(memory.cancel(999, 0), redis.cancel(999, 0));
}
