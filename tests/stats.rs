//! The limiter's statistics (`Limiter::stats`, counted at the façade): decisions by result, reason and fallback,
//! waits counted once with their length, responses by category and 429s by problem, the store's figures from the
//! backend, and exact counts under contention. Waits run in steps on a manual clock: nothing sleeps.
#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use xeroguard::pacing::stats::{WAIT_BUCKET_BOUNDS_MS, WAIT_BUCKETS};
use xeroguard::pacing::{
    Backend, Clock, Decision, Feedback, Limiter, Limits, MemoryBackend, PacingError, Permit, RedisOptions, Refusal,
    Reservation, Snapshot, Step, StoreStats, TenantLimits, WaitProgress,
};
use xeroguard::{Category, FailurePolicy, RateLimitProblem, Reason, StoreFailureKind};

fn manual() -> Limiter {
    Limiter::new(Limits::exact(), Clock::Manual).unwrap()
}

fn fill_minute(l: &Limiter, tenant: &str) {
    for _ in 0..60 {
        l.record(tenant, l.now()).unwrap();
    }
}

fn bucket_of(ms: u64) -> usize {
    WAIT_BUCKET_BOUNDS_MS.iter().position(|&bound| ms <= bound).unwrap_or(WAIT_BUCKETS - 1)
}

#[test]
fn a_stepped_wait_is_counted_once_with_its_length() {
    let l = manual();
    fill_minute(&l, "t");
    let deadline = l.deadline(120_000);
    let step = |progress: &mut WaitProgress| l.acquire_step("t", deadline, Some(Duration::ZERO), progress).unwrap();

    let mut progress = WaitProgress::default();
    assert!(matches!(step(&mut progress), Step::AskAgain { .. }));
    assert_eq!(progress, WaitProgress { started_ms: Some(0), waited_ms: 0 });
    let stats = l.stats();
    assert_eq!((stats.refused_for(Reason::Minute), stats.waits.started, stats.waits.ended()), (1, 1, 0));

    // Re-asks within the wait are the wait's, not decisions.
    l.advance(30_000).unwrap();
    for _ in 0..3 {
        assert!(matches!(step(&mut progress), Step::AskAgain { .. }));
    }
    assert_eq!(progress.waited_ms, 30_000);
    assert_eq!((l.stats().refused_total(), l.stats().waits.started), (1, 1));

    l.advance(30_000).unwrap();
    let Step::Granted(permit) = step(&mut progress) else { panic!("granted once the minute passed") };
    assert_eq!(progress, WaitProgress { started_ms: None, waited_ms: 60_000 }, "ended: its whole length");
    let stats = l.stats();
    assert_eq!((stats.granted, stats.refused_total()), (1, 1), "the grant that ended the wait is a decision");
    assert_eq!((stats.waits.started, stats.waits.granted, stats.waits.total_ms), (1, 1, 60_000));
    let mut buckets = [0; WAIT_BUCKETS];
    buckets[bucket_of(60_000)] = 1;
    assert_eq!(stats.waits.buckets, buckets);
    l.release(permit, l.now()).unwrap();

    // The same progress, as a finished wait leaves it, starts the next wait afresh: granted at once is no wait.
    let Step::Granted(permit) = step(&mut progress) else { panic!("granted at once") };
    assert_eq!((progress.started_ms, l.stats().waits.started, l.stats().granted), (None, 1, 2));
    l.release(permit, l.now()).unwrap();
}

#[test]
fn a_wait_that_gives_up_or_is_interrupted_ends_so() {
    let l = manual();
    fill_minute(&l, "t");
    // A minute wait beyond a 10 s deadline gives up at its first answer: a wait of no length.
    let mut progress = WaitProgress::default();
    let step = l.acquire_step("t", l.deadline(10_000), Some(Duration::ZERO), &mut progress).unwrap();
    assert!(matches!(step, Step::GiveUp(r) if r.reason == Reason::Minute));
    let waits = l.stats().waits;
    assert_eq!((waits.started, waits.gave_up, waits.total_ms, waits.buckets[0]), (1, 1, 0, 1));

    // acquire_wait is one wait too.
    assert!(matches!(l.acquire_wait("t", 1_000), Err(PacingError::Timeout(_))));
    assert_eq!((l.stats().waits.started, l.stats().waits.gave_up), (2, 2));

    let mut progress = WaitProgress::default();
    let deadline = l.deadline(120_000);
    assert!(matches!(l.acquire_step("t", deadline, Some(Duration::ZERO), &mut progress), Ok(Step::AskAgain { .. })));
    l.advance(1_500).unwrap();
    l.interrupt();
    assert_eq!(l.acquire_step("t", deadline, Some(Duration::ZERO), &mut progress), Err(PacingError::Interrupted));
    let stats = l.stats();
    assert_eq!((stats.waits.started, stats.waits.interrupted, stats.waits.ended()), (3, 1, 3));
    assert_eq!(stats.waits.total_ms, 1_500);
    assert_eq!(stats.waits.buckets[bucket_of(1_500)], 1);
    assert_eq!(stats.refused_for(Reason::Minute), 3, "each wait's first answer");
}

#[test]
fn steps_that_stand_alone_are_decisions_not_waits() {
    let l = manual();
    fill_minute(&l, "t");
    let deadline = l.deadline(120_000);
    for _ in 0..3 {
        assert!(matches!(l.acquire_until("t", deadline, Some(Duration::ZERO)), Ok(Step::AskAgain { .. })));
    }
    let stats = l.stats();
    assert_eq!((stats.refused_for(Reason::Minute), stats.waits.started, stats.waits.ended()), (3, 0, 0));
}

#[test]
fn acquire_and_observe_are_counted_and_peek_and_reserve_are_not() {
    let l = manual();
    let Decision::Granted(permit) = l.acquire("t", 0).unwrap() else { panic!("granted") };
    l.release(permit, 0).unwrap();
    fill_minute(&l, "t");
    assert!(matches!(l.acquire("t", 0), Ok(Decision::Refused(r)) if r.reason == Reason::Minute));
    assert!(l.peek("t", 0).unwrap().is_some());
    l.reserve("t", 0).unwrap();
    let stats = l.stats();
    assert_eq!((stats.granted, stats.refused_total(), stats.refused_for(Reason::Minute)), (1, 1, 1));

    let response = |status, category, rate_limit_problem| Feedback {
        status,
        category,
        rate_limit_problem,
        recommended_wait_ms: Some(1_000),
        minute_remaining: None,
        day_remaining: None,
        app_minute_remaining: None,
    };
    l.observe("t", &response(200, Category::Success, None), 0).unwrap();
    l.observe("t", &response(200, Category::Success, None), 0).unwrap();
    l.observe("t", &response(429, Category::RateLimited, Some(RateLimitProblem::Day)), 0).unwrap();
    l.observe("u", &response(429, Category::RateLimited, None), 0).unwrap();
    l.observe("v", &response(503, Category::OrganisationOffline, None), 0).unwrap();
    let too_long = "x".repeat(300);
    assert_eq!(l.observe(&too_long, &response(200, Category::Success, None), 0), Err(PacingError::TenantIdTooLong));
    let stats = l.stats();
    assert_eq!(stats.responses_of(Category::Success), 2);
    assert_eq!(stats.responses_of(Category::RateLimited), 2);
    assert_eq!(stats.responses_of(Category::OrganisationOffline), 1);
    assert_eq!(stats.rate_limited_by(RateLimitProblem::Day), 1);
    assert_eq!(stats.rate_limited_by(RateLimitProblem::Unknown), 1, "a 429 naming no problem, as its block reads it");
    assert_eq!(stats.rate_limited.iter().sum::<u64>(), 2);
    assert_eq!(stats.store, StoreStats::NONE, "state in this process: no store");
}

#[test]
fn concurrent_decisions_are_counted_exactly() {
    let limits = Limits { tenant_concurrency: 0, ..Limits::exact() };
    let l = Arc::new(Limiter::new(limits, Clock::Manual).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                for i in 0..200 {
                    // 100 tenants of 8 calls each, all within their minute: every one granted, and counted once.
                    let tenant = format!("t{}", (t * 200 + i) % 100);
                    if let Decision::Granted(p) = l.acquire(&tenant, 0).unwrap() {
                        l.release(p, 0).unwrap();
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let stats = l.stats();
    assert_eq!(stats.granted + stats.refused_total(), 800);
    assert_eq!(stats.granted, 800);
}

/// A memory backend whose every decision the `open` policy made, and which reports store figures: the façade counts
/// the fallbacks and passes the figures on.
struct FallingBack(MemoryBackend);

impl Backend for FallingBack {
    fn limits(&self) -> &Limits {
        self.0.limits()
    }
    fn sees_every_release(&self) -> bool {
        true
    }
    fn acquire(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        Ok(match self.0.acquire(tenant, now)? {
            Decision::Granted(p) => Decision::Granted(Permit { fallback: Some(FailurePolicy::Open), ..p }),
            Decision::Refused(r) => Decision::Refused(Refusal { fallback: Some(FailurePolicy::Local), ..r }),
        })
    }
    fn peek(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        self.0.peek(tenant, now)
    }
    fn record(&self, tenant: &str, now: u64) -> Result<(), PacingError> {
        self.0.record(tenant, now)
    }
    fn release(&self, permit: Permit, now: u64) -> Result<(), PacingError> {
        self.0.release(permit, now)
    }
    fn reserve(&self, tenant: &str, now: u64) -> Result<Reservation, PacingError> {
        self.0.reserve(tenant, now)
    }
    fn cancel(&self, id: u64, now: u64) -> Result<(), PacingError> {
        self.0.cancel(id, now)
    }
    fn observe(&self, tenant: &str, feedback: &Feedback, now: u64) -> Result<(), PacingError> {
        self.0.observe(tenant, feedback, now)
    }
    fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, PacingError> {
        self.0.snapshot(tenant, now)
    }
    fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError> {
        self.0.set_tenant_limits(tenant, limits)
    }
    fn store_stats(&self) -> StoreStats {
        let mut failures = [0; 5];
        failures[StoreFailureKind::Timeout.code() as usize] = 3;
        StoreStats {
            shared: true,
            operations: 42,
            failures,
            breaker_openings: 2,
            breaker_open: true,
            replays_pending: 7,
        }
    }
}

#[test]
fn fallback_decisions_and_store_figures_reach_the_stats() {
    let backend = FallingBack(MemoryBackend::new(Limits::exact()).unwrap());
    let l = Limiter::with_backend(Box::new(backend), Clock::Manual);
    fill_minute(&l, "t");
    assert!(matches!(l.acquire("t", 0), Ok(Decision::Refused(_))));
    let Decision::Granted(p) = l.acquire("u", 0).unwrap() else { panic!("granted") };
    l.release(p, 0).unwrap();
    let stats = l.stats();
    assert_eq!((stats.fallbacks_by(FailurePolicy::Open), stats.fallbacks_by(FailurePolicy::Local)), (1, 1));
    assert_eq!(stats.fallbacks_by(FailurePolicy::Closed), 0);
    assert!(stats.store.shared && stats.store.breaker_open);
    assert_eq!(stats.store.failures_of(StoreFailureKind::Timeout), 3);
    assert_eq!((stats.store.operations, stats.store.breaker_openings, stats.store.replays_pending), (42, 2, 7));
}

#[test]
fn a_shared_limiter_counts_the_failure_policys_decisions() {
    let mut server = redis_support::RedisServer::start();
    let prefix = format!("stats{}", std::process::id());
    let options = RedisOptions {
        deadline: Duration::from_millis(250),
        on_store_error: FailurePolicy::Open,
        ..RedisOptions::new(server.url(), prefix)
    };
    let l = Limiter::new_redis(Limits::exact(), options, Clock::Monotonic).unwrap();
    let Decision::Granted(p) = l.acquire("t", l.now()).unwrap() else { panic!("granted by the store") };
    l.release(p, l.now()).unwrap();
    server.kill();
    let Decision::Granted(p) = l.acquire("t", l.now()).unwrap() else { panic!("granted by the open policy") };
    assert_eq!(p.fallback, Some(FailurePolicy::Open));
    let stats = l.stats();
    assert_eq!((stats.granted, stats.fallbacks_by(FailurePolicy::Open)), (2, 1));
}
