//! The limiter on a manual clock: exact windows at full speed, server feedback from real fixture responses,
//! eviction and caps, tenantless calls, permit expiry, and contention from many threads.
mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use xeroguard::pacing::{
    Clock, Decision, Feedback, Limiter, Limits, MAX_BOOKING_AHEAD_MS, PacingError, Permit, Step, TenantLimits,
    WindowLimit,
};
use xeroguard::{Reason, classify, classify_raw};

fn manual(limits: Limits) -> Limiter {
    Limiter::new(limits, Clock::Manual).unwrap()
}

/// Acquires and releases at once (a call that returns immediately): true when granted.
fn call(l: &Limiter, tenant: &str, now: u64) -> bool {
    grant(l, tenant, now).inspect(|&p| l.release(p, now).unwrap()).is_some()
}

fn grant(l: &Limiter, tenant: &str, now: u64) -> Option<Permit> {
    match l.acquire(tenant, now).unwrap() {
        Decision::Granted(p) => Some(p),
        Decision::Refused(_) => None,
    }
}

/// Greedy: ask, and when refused jump exactly to now + wait. Returns the admission log.
fn greedy(l: &Limiter, tenant: &str, until: u64) -> Vec<u64> {
    let (mut now, mut log) = (0, Vec::new());
    while now < until {
        match l.acquire(tenant, now).unwrap() {
            Decision::Granted(p) => {
                log.push(now);
                l.release(p, now).unwrap();
            }
            Decision::Refused(r) => now += r.wait_ms,
        }
    }
    log
}

#[test]
fn greedy_full_speed_reaches_exactly_the_theoretical_maximum() {
    let l = manual(Limits::exact());
    let log = greedy(&l, "t", 2 * 86_400_000);
    assert_eq!(common::max_in_any_window(&log, 60_000), 60, "never more than 60 in any 60 s");
    assert_eq!(common::max_in_any_window(&log, 86_400_000), 5000, "never more than 5000 in any 24 h");
    // Theoretical maximum: 60 per minute until the day's 5000 are used, then nothing until 24 h after the first.
    let first_day = log.iter().filter(|&&t| t < 86_400_000).count();
    assert_eq!(first_day, 5000);
    assert_eq!(log.iter().filter(|&&t| t < 3_600_000).count(), 3600, "60 per minute for the first hour");
    assert_eq!(log.iter().filter(|&&t| t < 2 * 86_400_000).count(), 10_000, "5000 again on day two");
}

#[test]
fn adversarial_bursts_never_exceed_any_window() {
    let limits = Limits { tenant_day: WindowLimit::new(300, 600_000, 0), ..Limits::exact() };
    let l = manual(limits);
    let (mut now, mut log, mut seed) = (0u64, Vec::new(), 7u64);
    for _ in 0..20_000 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Bursts at window edges, tiny steps and long pauses.
        now += match seed >> 56 {
            0 => 59_999,
            1 => 60_000,
            2..=9 => (seed >> 20) % 5_000,
            10..=40 => 0,
            _ => (seed >> 20) % 7,
        };
        if let Some(p) = grant(&l, "t", now) {
            log.push(now);
            l.release(p, now).unwrap();
        }
    }
    assert!(log.len() > 1000);
    assert_eq!(common::max_in_any_window(&log, 60_000), 60, "saturated, and not beyond");
    assert_eq!(common::max_in_any_window(&log, 600_000), 300);
}

#[test]
fn the_app_window_binds_across_tenants() {
    let l = manual(Limits::exact());
    let granted: usize = (0..200).map(|t| (0..60).filter(|_| call(&l, &format!("t{t}"), 0)).count()).sum();
    assert_eq!(granted, 10_000);
    match l.acquire("t-new", 0).unwrap() {
        Decision::Refused(r) => assert_eq!((r.reason, r.wait_ms), (Reason::AppMinute, 60_000)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusal_wait_is_exact_and_refusals_change_nothing() {
    let l = manual(Limits::exact());
    for i in 0..60 {
        l.record("t", i * 100).unwrap();
    }
    let Decision::Refused(r) = l.acquire("t", 6_000).unwrap() else { panic!("full") };
    assert_eq!((r.wait_ms, r.reason), (54_000, Reason::Minute));
    for _ in 0..10 {
        assert!(grant(&l, "t", 6_000).is_none());
    }
    assert_eq!(l.peek("t", 59_999).unwrap().map(|r| r.wait_ms), Some(1));
    assert!(grant(&l, "t", 60_000).is_some());
    assert_eq!(l.snapshot("t", 60_000).unwrap().minute.count, 60);
}

fn case_feedback(name: &str) -> Feedback {
    let case = common::load_cases().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("case {name}"));
    Feedback::from(&classify(case.status, &case.header_refs(), &case.body, SystemTime::now()))
}

#[test]
fn feedback_from_real_responses_blocks_the_right_scope() {
    let l = manual(Limits::exact());
    l.observe("a", &case_feedback("429_minute_retry_after"), 0).unwrap();
    assert_eq!(l.peek("a", 0).unwrap().map(|r| (r.reason, r.wait_ms)), Some((Reason::RetryAfter, 17_000)));
    assert_eq!(l.peek("b", 0).unwrap(), None, "a tenant's 429 does not block others");

    l.observe("c", &case_feedback("429_day_observed_headers"), 0).unwrap();
    assert_eq!(l.peek("c", 0).unwrap().map(|r| r.wait_ms), Some(3_600_000));

    l.observe("d", &case_feedback("seed_503_organisation_offline"), 0).unwrap();
    assert_eq!(l.peek("d", 0).unwrap().map(|r| (r.reason, r.wait_ms)), Some((Reason::OrganisationOffline, 300_000)));
    assert_eq!(l.peek("b", 0).unwrap(), None);

    l.observe("e", &case_feedback("429_app_minute"), 0).unwrap();
    assert_eq!(
        l.peek("b", 0).unwrap().map(|r| (r.reason, r.wait_ms)),
        Some((Reason::RetryAfter, 5_000)),
        "app_minute blocks every tenant"
    );
    assert_eq!(l.peek("", 0).unwrap().map(|r| r.wait_ms), Some(5_000), "and tenantless calls");

    l.observe("e", &case_feedback("seed_503_maintenance"), 6_000).unwrap();
    assert_eq!(l.peek("b", 6_000).unwrap().map(|r| (r.reason, r.wait_ms)), Some((Reason::Outage, 60_000)));
    assert_eq!(l.peek("b", 66_000).unwrap(), None);
}

#[test]
fn remaining_headers_raise_local_usage_but_never_lower_it() {
    let l = manual(Limits::exact());
    let ok = |remaining: &str| {
        let raw =
            format!("HTTP/1.1 200 OK\r\nX-MinLimit-Remaining: {remaining}\r\nX-DayLimit-Remaining: 4000\r\n\r\n{{}}");
        Feedback::from(&classify_raw(raw.as_bytes(), SystemTime::now()).unwrap())
    };
    l.observe("t", &ok("10"), 0).unwrap();
    let s = l.snapshot("t", 0).unwrap();
    assert_eq!((s.minute.count, s.day.count), (50, 1000), "the server saw calls we did not");
    assert_eq!((0..20).filter(|_| call(&l, "t", 0)).count(), 10);
    l.observe("t", &ok("59"), 0).unwrap();
    assert_eq!(l.snapshot("t", 0).unwrap().minute.count, 60, "a higher remaining never lowers the count");
}

#[test]
fn tenant_overrides_apply_at_runtime_and_keep_history() {
    let l = manual(Limits::exact());
    for _ in 0..40 {
        l.record("starter", 0).unwrap();
    }
    l.set_tenant_limits("starter", Some(TenantLimits { minute_limit: 60, day_limit: 40, concurrency: 5 })).unwrap();
    assert_eq!(l.peek("starter", 60_000).unwrap().map(|r| r.reason), Some(Reason::Day));
    l.set_tenant_limits("starter", None).unwrap();
    assert_eq!(l.peek("starter", 60_000).unwrap(), None);
    assert_eq!(l.snapshot("starter", 60_000).unwrap().day.count, 40, "history kept");
}

#[test]
fn tenantless_calls_count_only_in_the_app_window() {
    let l = manual(Limits::exact());
    for _ in 0..100 {
        assert_eq!(grant(&l, "", 0), Some(Permit::new(0)));
    }
    let s = l.snapshot("t", 0).unwrap();
    assert_eq!((s.minute.count, s.app_minute.count), (0, 100));
}

#[test]
fn permits_expire_and_idle_tenants_are_evicted_within_the_cap() {
    let limits = Limits { permit_timeout_ms: 1_000, max_tenants: 2, ..Limits::exact() };
    let l = manual(limits);
    let held: Vec<_> = (0..5).map(|_| grant(&l, "a", 0).unwrap()).collect();
    assert_eq!(l.peek("a", 0).unwrap().map(|r| (r.reason, r.wait_ms)), Some((Reason::Concurrency, 1_000)));
    assert!(grant(&l, "a", 1_000).is_some(), "expired permits free their slots");
    assert_eq!(l.release(held[0], 1_000), Err(PacingError::UnknownPermit));
    assert!(grant(&l, "b", 1_000).is_some());
    assert_eq!(l.acquire("c", 1_000), Err(PacingError::TooManyTenants));
    assert_eq!(l.snapshot("a", 1_000).unwrap().tenants_tracked, 2);
    // A day later every window is empty and every permit expired: both tenants are idle and evicted.
    let later = 86_400_000 + 2_000;
    assert!(grant(&l, "c", later).is_some(), "room is made at the cap");
    // Eviction is lazy, per shard: touching a tenant's shard (a peek creates nothing) sweeps it.
    assert_eq!(l.peek("a", later).unwrap(), None);
    assert_eq!(l.peek("b", later).unwrap(), None);
    assert_eq!(l.snapshot("c", later).unwrap().tenants_tracked, 1);
    assert_eq!(l.tenant_heap_bytes("a"), 0);
}

#[test]
fn acquire_wait_wakes_when_the_manual_clock_moves() {
    let l = Arc::new(manual(Limits::exact()));
    for _ in 0..60 {
        l.record("t", 0).unwrap();
    }
    assert!(matches!(l.acquire_wait("t", 1_000), Err(PacingError::Timeout(r)) if r.reason == Reason::Minute));
    let mover = {
        let l = Arc::clone(&l);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            l.advance(60_000).unwrap();
        })
    };
    let permit = l.acquire_wait("t", 120_000).expect("granted after the clock moved");
    mover.join().unwrap();
    l.release(permit, l.now()).unwrap();
}

#[test]
fn acquire_until_steps_follow_the_one_wait_policy() {
    let l = manual(Limits::exact());
    for _ in 0..60 {
        l.record("t", 0).unwrap();
    }
    // The minute frees at 60 s: a deadline before it gives up at once, one after it asks again.
    let early = l.deadline(59_999);
    assert!(matches!(l.acquire_until("t", early, None), Ok(Step::GiveUp(r)) if r.wait_ms == 60_000));
    let late = l.deadline(60_000);
    let step = l.acquire_until("t", late, Some(Duration::ZERO)).unwrap();
    assert!(matches!(step, Step::AskAgain { sleep_ms: 50, refusal } if refusal.reason == Reason::Minute));
    l.advance(60_000).unwrap();
    let Ok(Step::Granted(permit)) = l.acquire_until("t", late, Some(Duration::ZERO)) else { panic!("granted") };
    l.release(permit, l.now()).unwrap();
    // A deadline already passed gives up even where a release could come (concurrency).
    let l = manual(Limits { tenant_concurrency: 1, ..Limits::exact() });
    let held = grant(&l, "c", 0).unwrap();
    let passed = l.now();
    assert!(matches!(l.acquire_until("c", passed, None), Ok(Step::GiveUp(r)) if r.reason == Reason::Concurrency));
    // With time left, a concurrency wait blocks at most max_block and asks again.
    let started = Instant::now();
    let step = l.acquire_until("c", l.deadline(1_000), Some(Duration::from_millis(30))).unwrap();
    assert!(matches!(step, Step::AskAgain { refusal, .. } if refusal.reason == Reason::Concurrency));
    assert!(started.elapsed() >= Duration::from_millis(30), "it blocked up to max_block");
    l.release(held, l.now()).unwrap();
}

#[test]
fn interrupt_ends_every_wait_now_and_later() {
    let l = Arc::new(manual(Limits { tenant_concurrency: 1, ..Limits::exact() }));
    let held = grant(&l, "t", 0).unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || l.acquire_wait("t", u64::MAX))
        })
        .collect();
    // The waiters block on the held slot with no deadline: only an interrupt ends them. (The pause lets them reach
    // the block; one that arrives after the interrupt ends at once, which the test accepts too.)
    std::thread::sleep(Duration::from_millis(20));
    l.interrupt();
    for w in waiters {
        assert_eq!(w.join().unwrap(), Err(PacingError::Interrupted));
    }
    assert_eq!(l.acquire_wait("t", 10), Err(PacingError::Interrupted), "later waits end at once");
    assert_eq!(l.acquire_until("t", u64::MAX, None), Err(PacingError::Interrupted));
    l.release(held, l.now()).expect("other operations keep working");
    assert!(matches!(l.acquire("t", l.now()), Ok(Decision::Granted(_))));
}

#[test]
fn bookings_stay_within_the_horizon_and_windows_within_their_offsets() {
    let l = manual(Limits::exact());
    let offline = Feedback {
        status: 503,
        category: xeroguard::Category::OrganisationOffline,
        rate_limit_problem: None,
        recommended_wait_ms: Some(MAX_BOOKING_AHEAD_MS + 1),
        minute_remaining: None,
        day_remaining: None,
        app_minute_remaining: None,
    };
    l.observe("t", &offline, 0).unwrap();
    assert_eq!(l.reserve("t", 0), Err(PacingError::BookingTooFar { wait_ms: MAX_BOOKING_AHEAD_MS + 1 }));
    assert_eq!(l.reserve("t", 1).unwrap().wait_ms, MAX_BOOKING_AHEAD_MS, "at the horizon it books");
    let too_long = Limits { tenant_day: WindowLimit::new(5_000, 30 * 86_400_000, 0), ..Limits::exact() };
    assert!(matches!(Limiter::new(too_long, Clock::Manual), Err(PacingError::InvalidLimits(_))));
}

#[test]
fn many_threads_many_tenants_totals_add_up_and_no_window_is_exceeded() {
    const THREADS: usize = 8;
    const TENANTS: usize = 50;
    const PHASES: u64 = 6;
    let limits = Limits { app_minute: WindowLimit::new(2_000, 60_000, 0), ..Limits::exact() };
    let l = Arc::new(manual(limits));
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    // A watchdog: a deadlock fails the run instead of hanging it.
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(120));
        eprintln!("contention test deadlocked");
        std::process::abort();
    });
    let workers: Vec<_> = (0..THREADS)
        .map(|id| {
            let (l, barrier) = (Arc::clone(&l), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut granted = vec![vec![0u32; TENANTS]; PHASES as usize];
                for phase in 0..PHASES {
                    barrier.wait();
                    let now = phase * 20_000;
                    for i in 0..400 {
                        let t = (i * 7 + id) % TENANTS;
                        if let Decision::Granted(p) = l.acquire(&format!("tenant-{t}"), now).unwrap() {
                            granted[phase as usize][t] += 1;
                            l.release(p, now).unwrap();
                        }
                    }
                    barrier.wait();
                }
                granted
            })
        })
        .collect();
    for _ in 0..PHASES {
        barrier.wait();
        barrier.wait();
    }
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let per_phase = |phase: usize, t: usize| results.iter().map(|g| g[phase][t]).sum::<u32>();
    for t in 0..TENANTS {
        // Phases are 20 s apart, so any 60 s window holds three consecutive phases.
        for start in 0..(PHASES as usize - 2) {
            let in_window: u32 = (start..start + 3).map(|p| per_phase(p, t)).sum();
            assert!(in_window <= 60, "tenant {t}: {in_window} calls in one minute");
        }
        let last = (PHASES - 1) * 20_000;
        let counted = l.snapshot(&format!("tenant-{t}"), last).unwrap().minute.count;
        let recent: u32 = (PHASES as usize - 3..PHASES as usize).map(|p| per_phase(p, t)).sum();
        assert_eq!(counted, recent, "tenant {t}: the limiter's count matches the grants");
    }
    for start in 0..(PHASES as usize - 2) {
        let app: u32 = (0..TENANTS).map(|t| (start..start + 3).map(|p| per_phase(p, t)).sum::<u32>()).sum();
        assert!(app <= 2_000, "app window exceeded: {app}");
    }
}
