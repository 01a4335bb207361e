//! The concurrency soak, for any backend: worker threads do a random mix of acquire / acquire_wait / release / peek / observe /
//! reserve / cancel / snapshot / abandoned permits on a few shared tenants, while another thread moves the manual
//! clock. Afterwards the recorded log must respect every window, every permit must be released or expired, and
//! no thread may have hung (a watchdog turns a deadlock into a failure).
//!
//! A test file runs [`run`] with its way to make a limiter on the manual clock, a number of scaled days and a clock
//! pause (`tests/soak.rs`: in-process, 3 days; `tests/redis_differential.rs`: Redis, 1 day). Short version (the test
//! command): 3 s or those days of the manual clock, whichever is longer. Long version:
//!     XEROGUARD_SOAK_SECONDS=600 cargo test --release --test soak -- --nocapture
#![allow(dead_code)] // each test file uses the part it needs
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use xeroguard::pacing::{Decision, Feedback, Limiter, Limits, PacingError, Permit, WindowLimit};
use xeroguard::{Category, RateLimitProblem};

const WORKERS: usize = 8;
const TENANTS: [&str; 4] = ["tenant-a", "tenant-b", "tenant-c", "tenant-d"];
const MINUTE: (u32, u64) = (60, 60_000);
/// A scaled "day" so the soak crosses many of them.
const DAY: (u32, u64) = (400, 600_000);
/// Below 4 x 60, so the app window binds too.
const APP_MINUTE: (u32, u64) = (150, 60_000);
const CONCURRENCY: u32 = 5;
const PERMIT_TIMEOUT_MS: u64 = 30_000;

fn soak_limits() -> Limits {
    Limits {
        tenant_minute: WindowLimit::new(MINUTE.0, MINUTE.1, 0),
        tenant_day: WindowLimit::new(DAY.0, DAY.1, 0),
        tenant_concurrency: CONCURRENCY,
        app_minute: WindowLimit::new(APP_MINUTE.0, APP_MINUTE.1, 0),
        permit_timeout_ms: PERMIT_TIMEOUT_MS,
        max_tenants: 0,
    }
}

/// A call the limiter counted. The limiter makes time monotone across threads (a call may be counted at a later
/// `now` another thread passed), so its instant is only known to lie in [lo, hi]: lo is the `now` the caller
/// passed, hi the manual clock when the call returned (every `now` passed was read from that clock).
#[derive(Clone, Copy, Debug)]
struct Call {
    tenant: usize, // TENANTS.len() for a tenantless call
    lo: u64,
    hi: u64,
}

/// Finds calls that certainly share one window: sorted by `lo`, every call `i` with lo_i >= lo_j and hi_i < lo_j + span
/// lies in [lo_j, lo_j + span). Returns the largest such group found.
fn most_certainly_in_one_window(calls: &[Call], span: u64) -> usize {
    let mut sorted = calls.to_vec();
    sorted.sort_by_key(|c| c.lo);
    let mut best = 0;
    for (j, first) in sorted.iter().enumerate() {
        let end = first.lo + span;
        let inside = sorted[j..].iter().take_while(|c| c.lo < end).filter(|c| c.hi < end).count();
        best = best.max(inside);
    }
    best
}

/// A small deterministic generator per worker (no dependency for this).
struct XorShift(u64);
impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Shared {
    limiter: Limiter,
    log: Mutex<Vec<Call>>,
    abandoned: Mutex<Vec<Permit>>,
    stop: AtomicBool,
}

impl Shared {
    fn now(&self) -> u64 {
        self.limiter.now()
    }
    fn log_call(&self, tenant: usize, lo: u64) {
        let hi = self.limiter.now();
        self.log.lock().push(Call { tenant, lo, hi });
    }
    /// Cancels a reservation; cancelled, the slot is free again and leaves the log. Too late: it counts.
    fn cancel(&self, id: u64, at: u64, tenant: usize) -> bool {
        let mut log = self.log.lock();
        if self.limiter.cancel(id, self.now()).is_err() {
            return false;
        }
        let i =
            log.iter().rposition(|c| c.tenant == tenant && c.lo == at && c.hi == at).expect("reserved call in the log");
        log.swap_remove(i);
        true
    }
    /// A release refused as unknown is fine only if the permit may have outlived its timeout.
    fn expired(&self, granted_at: u64) -> bool {
        self.limiter.now() >= granted_at + PERMIT_TIMEOUT_MS
    }
}

#[derive(Default, Debug)]
struct Tally {
    granted: u64,
    refused: u64,
    released: u64,
    expired_on_release: u64,
    reserved: u64,
    cancelled: u64,
    observed: u64,
    waited: u64,
}

fn feedback(rng: &mut XorShift) -> Feedback {
    let mut f = Feedback {
        status: 200,
        category: Category::Success,
        rate_limit_problem: None,
        recommended_wait_ms: None,
        minute_remaining: Some(30 + rng.below(31) as u32),
        day_remaining: Some(200 + rng.below(201) as u32),
        app_minute_remaining: Some(100 + rng.below(51) as u32),
    };
    match rng.below(20) {
        0 => {
            f.status = 429;
            f.category = Category::RateLimited;
            f.rate_limit_problem = Some(RateLimitProblem::Minute);
            f.recommended_wait_ms = Some(500 + rng.below(1_500));
            f.minute_remaining = Some(0);
        }
        1 => {
            f.status = 503;
            f.category = Category::ServiceUnavailable;
            f.recommended_wait_ms = Some(200);
        }
        _ => {}
    }
    f
}

fn worker(shared: &Shared, seed: u64) -> Tally {
    let mut rng = XorShift(seed);
    let mut tally = Tally::default();
    let mut held: Vec<(Permit, u64)> = Vec::new();
    let mut reservations: Vec<(u64, u64, usize)> = Vec::new(); // (id, at, tenant)
    let l = &shared.limiter;
    while !shared.stop.load(Ordering::Relaxed) {
        let t = rng.below(TENANTS.len() as u64 + 1) as usize;
        let tenant = TENANTS.get(t).copied().unwrap_or(""); // sometimes tenantless
        match rng.below(100) {
            0..=39 => {
                let now = shared.now();
                match l.acquire(tenant, now).unwrap() {
                    Decision::Granted(permit) => {
                        shared.log_call(t, now);
                        tally.granted += 1;
                        held.push((permit, now));
                        let snap = l.snapshot(tenant, shared.now()).unwrap();
                        assert!(snap.in_flight <= CONCURRENCY, "{tenant}: {} permits in flight", snap.in_flight);
                    }
                    Decision::Refused(r) => {
                        assert!(r.wait_ms > 0, "a refusal always waits");
                        tally.refused += 1;
                    }
                }
            }
            40..=59 if !held.is_empty() => {
                let (permit, granted_at) = held.swap_remove(rng.below(held.len() as u64) as usize);
                let now = shared.now();
                match l.release(permit, now) {
                    Ok(()) => tally.released += 1,
                    // Only a permit that may have outlived its timeout can be unknown.
                    Err(PacingError::UnknownPermit) => {
                        assert!(shared.expired(granted_at), "permit {permit:?} lost before it expired");
                        tally.expired_on_release += 1;
                    }
                    Err(e) => panic!("release: {e}"),
                }
            }
            60..=67 => {
                let now = shared.now();
                if let Some(r) = l.peek(tenant, now).unwrap() {
                    assert!(r.wait_ms > 0);
                }
            }
            68..=77 if !tenant.is_empty() => {
                let now = shared.now();
                l.observe(tenant, &feedback(&mut rng), now).unwrap();
                tally.observed += 1;
            }
            78..=85 => {
                let now = shared.now();
                let r = l.reserve(tenant, now).unwrap();
                // The limiter may have counted it at a later `now` than ours, so the wait is at most at - now.
                assert!(r.at_ms >= now && r.wait_ms <= r.at_ms - now, "{r:?} at {now}");
                // A reservation's instant is exact.
                shared.log.lock().push(Call { tenant: t, lo: r.at_ms, hi: r.at_ms });
                tally.reserved += 1;
                if r.wait_ms > 5_000 {
                    // A caller that will not wait that long gives the slot back at once; without this the future
                    // fills with bookings and a long soak ends up refusing every acquire.
                    if shared.cancel(r.id, r.at_ms, t) {
                        tally.cancelled += 1;
                    }
                } else if r.at_ms > now {
                    reservations.push((r.id, r.at_ms, t));
                }
            }
            86..=91 if !reservations.is_empty() => {
                let (id, at, rt) = reservations.swap_remove(rng.below(reservations.len() as u64) as usize);
                if shared.cancel(id, at, rt) {
                    tally.cancelled += 1;
                }
            }
            92..=94 if !tenant.is_empty() && held.len() < 3 => {
                let lo = shared.now();
                match l.acquire_wait(tenant, 300) {
                    Ok(permit) => {
                        shared.log_call(t, lo);
                        held.push((permit, lo));
                        tally.waited += 1;
                    }
                    Err(PacingError::Timeout(_)) => tally.refused += 1,
                    Err(e) => panic!("acquire_wait: {e}"),
                }
            }
            95 => {
                // A caller that crashed holding a permit: it must expire on its own (tenantless calls hold none).
                if let Some(i) = held.iter().position(|(p, _)| p.id != 0) {
                    shared.abandoned.lock().push(held.swap_remove(i).0);
                }
            }
            _ => {
                l.snapshot(tenant, shared.now()).unwrap();
            }
        }
        if held.len() > 4 {
            let (permit, granted_at) = held.remove(0);
            if l.release(permit, shared.now()).is_err() {
                assert!(shared.expired(granted_at), "permit {permit:?} lost before it expired");
                tally.expired_on_release += 1;
            } else {
                tally.released += 1;
            }
        }
    }
    for (permit, granted_at) in held {
        match l.release(permit, shared.now()) {
            Ok(()) => tally.released += 1,
            Err(_) => {
                assert!(shared.expired(granted_at), "permit {permit:?} lost before it expired");
                tally.expired_on_release += 1;
            }
        }
    }
    tally
}

/// How long the soak runs at least: `XEROGUARD_SOAK_SECONDS`, else 3 s.
pub fn seconds() -> u64 {
    std::env::var("XEROGUARD_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3)
}

/// Soaks a limiter from `make` (given the soak's limits; it must use the manual clock) for `seconds` and `days`
/// scaled days, whichever is longer, then checks the log, the permits and that every path ran. The clock pauses
/// `clock_pause` between steps: a backend a network away needs the clock slower, for the same mix of waits and
/// expiries per operation.
pub fn run(make: &dyn Fn(Limits) -> Limiter, seconds: u64, days: u64, clock_pause: Duration) {
    let shared = Arc::new(Shared {
        limiter: make(soak_limits()),
        log: Mutex::new(Vec::new()),
        abandoned: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..WORKERS {
        let (shared, done) = (Arc::clone(&shared), done_tx.clone());
        handles.push(std::thread::spawn(move || {
            let tally = worker(&shared, 0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) * 0x1234_5678_9ABC_DEF1));
            done.send(()).ok();
            tally
        }));
    }
    // The clock: small random steps, so a call's [lo, hi] stays narrow and the log check stays sharp.
    // The clock keeps moving until every worker is done: a worker waiting on a concurrency slot held by an abandoned
    // permit is freed only by that permit's expiry, which needs time to pass.
    let clock_stop = Arc::new(AtomicBool::new(false));
    let clock = {
        let (shared, clock_stop) = (Arc::clone(&shared), Arc::clone(&clock_stop));
        std::thread::spawn(move || {
            let mut rng = XorShift(42);
            for step in 0u64.. {
                if clock_stop.load(Ordering::Relaxed) {
                    break;
                }
                if !clock_pause.is_zero() {
                    std::thread::sleep(clock_pause);
                }
                shared.limiter.advance(1 + rng.below(20)).unwrap();
                // Yielding every step would hand the core to a busy worker each time and starve the clock.
                if step % 16 == 0 {
                    std::thread::yield_now();
                }
            }
        })
    };
    // At least `seconds` of real time and `days` windows of the scaled day on the manual clock: on a loaded machine
    // the clock moves slower, and the run is longer rather than thinner (within a generous cap).
    let started = Instant::now();
    let cap = Duration::from_secs(seconds + 120);
    while (started.elapsed() < Duration::from_secs(seconds) || shared.limiter.now() < days * DAY.1)
        && started.elapsed() < cap
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    shared.stop.store(true, Ordering::Relaxed);
    // Every worker must finish soon after being told to (acquire_wait is bounded by 300 ms of the manual clock,
    // which keeps moving until the workers are done); a hang fails here instead of hanging the suite.
    for _ in 0..WORKERS {
        done_rx.recv_timeout(Duration::from_secs(60)).expect("a worker hung (deadlock?)");
    }
    clock_stop.store(true, Ordering::Relaxed);
    clock.join().unwrap();
    let tallies: Vec<Tally> = handles.into_iter().map(|h| h.join().expect("worker panicked")).collect();
    let l = &shared.limiter;

    let log = shared.log.lock().clone();
    for (t, tenant) in TENANTS.iter().enumerate() {
        let calls: Vec<Call> = log.iter().copied().filter(|c| c.tenant == t).collect();
        let minute = most_certainly_in_one_window(&calls, MINUTE.1);
        let day = most_certainly_in_one_window(&calls, DAY.1);
        assert!(minute <= MINUTE.0 as usize, "{tenant}: {minute} calls in one minute window");
        assert!(day <= DAY.0 as usize, "{tenant}: {day} calls in one day window");
    }
    let app = most_certainly_in_one_window(&log, APP_MINUTE.1);
    assert!(app <= APP_MINUTE.0 as usize, "app: {app} calls in one minute window");

    // Permits: every worker released what it held; abandoned ones expire on their own.
    let now = l.now();
    for tenant in TENANTS {
        let in_flight = l.snapshot(tenant, now).unwrap().in_flight;
        let abandoned_live = shared.abandoned.lock().len() as u32;
        assert!(in_flight <= abandoned_live, "{tenant}: {in_flight} permits in flight after every worker released");
    }
    l.advance(PERMIT_TIMEOUT_MS).unwrap();
    let now = l.now();
    for tenant in TENANTS {
        assert_eq!(l.snapshot(tenant, now).unwrap().in_flight, 0, "{tenant}: an abandoned permit never expired");
    }
    for permit in shared.abandoned.lock().iter() {
        assert_eq!(l.release(*permit, now), Err(PacingError::UnknownPermit), "an expired permit stays expired");
    }

    let total = tallies.iter().fold(Tally::default(), |mut a, t| {
        a.granted += t.granted;
        a.refused += t.refused;
        a.released += t.released;
        a.expired_on_release += t.expired_on_release;
        a.reserved += t.reserved;
        a.cancelled += t.cancelled;
        a.observed += t.observed;
        a.waited += t.waited;
        a
    });
    println!(
        "soak: {:.1} s, virtual {:.1} min, log {} calls (max per minute window: app {app}), {total:?}, {} abandoned",
        started.elapsed().as_secs_f64(),
        now as f64 / 60_000.0,
        log.len(),
        shared.abandoned.lock().len()
    );
    // The run must have exercised every path, or it proves nothing.
    assert!(total.granted > 100 && total.refused > 100 && total.released > 100, "{total:?}");
    assert!(total.reserved > 10 && total.cancelled > 0 && total.observed > 10 && total.waited > 0, "{total:?}");
    assert!(now > days * DAY.1, "the clock crossed {days} day windows ({now} ms)");
}

/// The log check itself must catch an overrun, or the soak proves nothing.
pub fn log_check_catches_an_overrun() {
    let at = |lo: u64, hi: u64| Call { tenant: 0, lo, hi };
    let mut calls: Vec<Call> = (0..60).map(|i| at(i * 1_000, i * 1_000)).collect();
    assert_eq!(most_certainly_in_one_window(&calls, 60_000), 60);
    calls.push(at(59_500, 59_900));
    assert_eq!(most_certainly_in_one_window(&calls, 60_000), 61, "61 calls certainly inside [0, 60 s)");
    // A call that may have happened after the window closed is not held against it.
    calls.pop();
    calls.push(at(59_500, 60_000));
    assert_eq!(most_certainly_in_one_window(&calls, 60_000), 60);
}
