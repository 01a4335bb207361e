//! The Redis backend against the in-process one: random operation sequences (several tenants; acquire, peek, record,
//! release, reserve, cancel, observe, clock moves, limit changes) run on both, on a manual clock, must give identical
//! decisions, waits, reasons, errors and snapshots. The generic suites (model, soak) run on Redis too.

#[path = "suites/model.rs"]
mod model;
#[path = "support/redis.rs"]
mod redis_support;
#[path = "suites/soak.rs"]
mod soak;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use redis_support::{RedisCluster, RedisServer};
use xeroguard::pacing::{
    Clock, Decision, Feedback, Limiter, Limits, MAX_BOOKINGS, PacingError, Permit, RedisOptions, Snapshot, TenantLimits,
};
use xeroguard::{Category, RateLimitProblem};

static PREFIXES: AtomicU64 = AtomicU64::new(0);

/// A limiter on a fresh key prefix of the store at `url`, on the manual clock.
fn redis_limiter(url: &str, limits: Limits) -> Limiter {
    redis_limiter_in_form(url, limits, true)
}

/// Same, with the engine as a Functions library (`functions`) or as scripts (EVALSHA, Redis 6's form).
fn redis_limiter_in_form(url: &str, limits: Limits, functions: bool) -> Limiter {
    let prefix = format!("test{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed));
    let options = RedisOptions { functions, ..RedisOptions::new(url, prefix) };
    Limiter::new_redis(limits, options, Clock::Manual).expect("connect")
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
    run_both_with(&redis_limiter(url, limits()), limits(), ops)
}

/// Runs `ops` on `redis` and on an in-process limiter with `limits`, comparing every answer.
fn run_both_with(redis: &Limiter, limits: Limits, ops: &[Op]) -> Result<(), TestCaseError> {
    let memory = Limiter::new(limits, Clock::Manual).unwrap();
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// The scripts form (EVALSHA, as Redis 6 runs the engine) decides like the Functions library.
    #[test]
    fn redis_scripts_form_decides_like_in_process(ops in proptest::collection::vec(op(), 1..80)) {
        run_both_with(&redis_limiter_in_form(&server(), limits(), false), limits(), &ops)?;
    }
}

/// A deterministic generator for the production-size run (no dependency for this).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Operations at production sizes: Xero's limits (60 a minute, 5,000 a day, 10,000 a minute per app, 5 in
/// flight), thousands of them on a few tenants, with a tenant booking up to the cap, clock moves from a millisecond
/// to days, and two months of calls every twelve hours (the logs never empty, so their base moves on).
fn production_ops(seed: u64) -> Vec<Op> {
    let mut rng = XorShift(seed);
    let mut ops = Vec::new();
    let tenant = |rng: &mut XorShift| rng.below(3) as usize;
    let mixed = |rng: &mut XorShift, ops: &mut Vec<Op>, n: usize| {
        for _ in 0..n {
            let t = tenant(rng);
            ops.push(match rng.below(100) {
                0..=29 => Op::Acquire(t),
                30..=54 => Op::Release(rng.below(8) as usize),
                55..=59 => Op::Record(t),
                60..=66 => Op::Reserve(t),
                67..=71 => Op::Cancel(rng.below(8) as usize),
                72..=77 => Op::Observe {
                    tenant: t,
                    kind: rng.below(6) as u8,
                    wait: rng.below(120_000),
                    remaining: rng.below(10_001) as u32,
                },
                78..=82 => Op::Peek(t),
                83..=84 => Op::Snapshot(t),
                85 => Op::SetLimits {
                    tenant: rng.below(2) as usize,
                    minute: 30 + rng.below(31) as u32,
                    day: 1_000 + rng.below(4_001) as u32,
                    concurrency: 1 + rng.below(5) as u32,
                },
                86 => Op::ClearLimits(rng.below(2) as usize),
                87..=95 => Op::Advance(rng.below(2_000)),
                96..=97 => Op::Advance(rng.below(600_000)),
                98 => Op::Advance(rng.below(6 * 3_600_000)),
                _ => Op::Advance(rng.below(3 * 86_400_000)),
            });
        }
    };
    mixed(&mut rng, &mut ops, 3_000);
    // One tenant books ahead up to the cap (and past it: refused), a millisecond apart, then the others keep
    // calling, some bookings are cancelled, and the clock runs through them.
    for _ in 0..MAX_BOOKINGS + 100 {
        ops.extend([Op::Reserve(0), Op::Advance(1)]);
    }
    for _ in 0..300 {
        let t = tenant(&mut rng);
        ops.push(match rng.below(4) {
            0 => Op::Cancel(rng.below(2_000) as usize),
            1 => Op::Acquire(t),
            2 => Op::Release(0),
            _ => Op::Advance(rng.below(30_000)),
        });
    }
    mixed(&mut rng, &mut ops, 1_500);
    // Sixty days of a call every twelve hours: the day and app windows are never empty.
    for _ in 0..120 {
        ops.extend([Op::Acquire(1), Op::Release(0), Op::Record(2), Op::Advance(12 * 3_600_000)]);
    }
    mixed(&mut rng, &mut ops, 500);
    ops
}

/// The engine operations (functions or scripts) the server logged as slow, by what names them in any run of the
/// same sequence: the function (or script), the clock reading, the tenant and the operation's own arguments (not
/// the keys, nor the operation id, which differ between runs).
fn slow_operations(server: &RedisServer) -> BTreeSet<String> {
    server
        .slowlog()
        .into_iter()
        // FCALL|EVALSHA|EVAL, function or script, 5 (keys), the keys, the operation id, then what identifies it.
        .filter(|c| c.args.len() > 9 && matches!(c.name().as_str(), "FCALL" | "EVALSHA" | "EVAL"))
        .map(|c| format!("{} {}", c.args[1].chars().take(24).collect::<String>(), c.args[9..].join(" ")))
        .collect()
}

/// The differential run at production sizes, with a cost check: no engine operation takes over 2 ms on the server
/// (SLOWLOG). A correct engine is O(log n) per call, plus the bookings a reserve passes (capped): its slowest call
/// here is a fraction of that, even on a slow machine; one that reads or sorts the logs takes tens of milliseconds.
/// SLOWLOG counts wall time, so a server the machine's load sets aside in the middle of a call logs it too: the
/// sequence (deterministic) runs again, up to six times, until no operation was slow in every run so far; one that
/// stays slow in all of them fails the test, as a slow engine's operations do. The cost check is the Functions library's (Redis 7); the scripts form
/// (Redis 6) defines the engine again on every call, about twice the CPU: it must decide alike at these sizes, and
/// its slow calls are printed.
#[test]
fn production_sizes_decide_alike_and_no_operation_is_slow() {
    let server =
        RedisServer::builder().config("slowlog-log-slower-than", "2000").config("slowlog-max-len", "100000").start();
    // Best-effort (it needs the privilege): a busy machine then keeps the server waiting less in mid-call.
    // SAFETY: setpriority only reads its arguments.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, server.pid(), -10) };
    for functions in [true, false] {
        let mut slow_every_time: Option<BTreeSet<String>> = None;
        for run in 0..6 {
            // Loading the library, or compiling a script on its first EVAL, is not an operation: every operation
            // runs once (on a prefix of its own) before the run is watched.
            let warm = redis_limiter_in_form(&server.url(), Limits::default(), functions);
            let Decision::Granted(permit) = warm.acquire("t", 0).unwrap() else { panic!("granted") };
            warm.release(permit, 0).unwrap();
            warm.peek("t", 0).unwrap();
            warm.record("t", 0).unwrap();
            let r = warm.reserve("t", 0).unwrap();
            assert_eq!(warm.cancel(r.id, 0), Err(PacingError::UnknownReservation), "booked for now: its time came");
            warm.observe("t", &feedback(0, 0, 5), 0).unwrap();
            warm.set_tenant_limits("t", None).unwrap();
            assert_eq!(warm.snapshot("t", 0).unwrap().in_flight, 0);
            server.cli(&["SLOWLOG", "RESET"]);
            let redis = redis_limiter_in_form(&server.url(), Limits::default(), functions);
            if let Err(e) = run_both_with(&redis, Limits::default(), &production_ops(0x5eed_0000)) {
                panic!("functions: {functions}: {e}");
            }
            let slow = slow_operations(&server);
            let still = match slow_every_time {
                None => slow,
                Some(before) => before.intersection(&slow).cloned().collect(),
            };
            println!("functions: {functions}, run {run}: {} operations slow in every run so far", still.len());
            if still.is_empty() {
                slow_every_time = Some(still);
                break;
            }
            slow_every_time = Some(still);
        }
        let slow = slow_every_time.unwrap_or_default();
        if functions {
            assert!(slow.is_empty(), "slower than 2 ms in every run: {slow:?}");
        } else if !slow.is_empty() {
            println!("scripts form: slower than 2 ms in every run: {slow:?}");
        }
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
