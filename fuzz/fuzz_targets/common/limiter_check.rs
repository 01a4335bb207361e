//! The limiter fuzz targets' check: operation sequences on a manual clock, checked against the definition.
//! Whatever the sequence, no window of any limit ever holds more calls than its limit, in flight never exceeds the
//! concurrency limit, and nothing panics. It takes the way to make a limiter, so every backend is fuzzed by it
//! (limiter_ops: in-process; limiter_ops_redis: Redis).

use std::collections::HashMap;

use arbitrary::Arbitrary;
use xeroguard::pacing::{Decision, Feedback, Limiter, Limits, WindowLimit};
use xeroguard::{Category, RateLimitProblem};

const TENANTS: [&str; 3] = ["a", "b", ""];

#[derive(Arbitrary, Debug)]
pub enum Op {
    Acquire(u8),
    Peek(u8),
    Reserve(u8),
    Release(u8),
    Cancel(u8),
    Advance(u8),
    Observe429 { tenant: u8, wait: u8, app: bool },
    ObserveRemaining { tenant: u8, minute: u8 },
}

pub fn limits() -> Limits {
    Limits {
        tenant_minute: WindowLimit::new(3, 40, 5),
        tenant_day: WindowLimit::new(7, 400, 0),
        tenant_concurrency: 2,
        app_minute: WindowLimit::new(5, 50, 0),
        permit_timeout_ms: 100,
        max_tenants: 2,
    }
}

fn exceeded(times: &[u64], limit: u32, span: u64) -> bool {
    times.iter().any(|&s| times.iter().filter(|&&e| e <= s && e + span > s).count() > limit as usize)
}

/// Runs `ops` on a limiter from `make` (given [`limits`]; manual clock) and checks the windows after them.
pub fn check(make: &dyn Fn(Limits) -> Limiter, ops: Vec<Op>) {
    let l = make(limits());
    let (mut now, mut counted, mut app) = (0u64, HashMap::<usize, Vec<u64>>::new(), Vec::<u64>::new());
    let (mut permits, mut reservations) = (Vec::new(), Vec::new());
    for op in ops.into_iter().take(200) {
        match op {
            Op::Acquire(t) => {
                let t = t as usize % 3;
                if let Ok(Decision::Granted(p)) = l.acquire(TENANTS[t], now) {
                    counted.entry(t).or_default().push(now);
                    app.push(now);
                    if p.id != 0 {
                        permits.push((p, t, now));
                    }
                    let live = permits.iter().filter(|&&(_, who, at)| who == t && at + 100 > now).count();
                    assert!(live <= 2, "{live} in flight");
                }
            }
            Op::Peek(t) => {
                let _ = l.peek(TENANTS[t as usize % 3], now);
            }
            Op::Reserve(t) => {
                let t = t as usize % 3;
                if let Ok(r) = l.reserve(TENANTS[t], now) {
                    counted.entry(t).or_default().push(r.at_ms);
                    app.push(r.at_ms);
                    reservations.push((r, t));
                }
            }
            Op::Release(k) if !permits.is_empty() => {
                let (p, _, _) = permits.remove(k as usize % permits.len());
                let _ = l.release(p, now);
            }
            Op::Cancel(k) if !reservations.is_empty() => {
                let (r, t) = reservations.remove(k as usize % reservations.len());
                if l.cancel(r.id, now).is_ok() {
                    let calls = counted.get_mut(&t).unwrap();
                    calls.remove(calls.iter().position(|&e| e == r.at_ms).unwrap());
                    app.remove(app.iter().position(|&e| e == r.at_ms).unwrap());
                }
            }
            Op::Advance(ms) => now += ms as u64,
            Op::Observe429 { tenant, wait, app: app_wide } => {
                let problem = if app_wide { RateLimitProblem::AppMinute } else { RateLimitProblem::Minute };
                let feedback = Feedback {
                    status: 429,
                    category: Category::RateLimited,
                    rate_limit_problem: Some(problem),
                    recommended_wait_ms: Some(wait as u64),
                    minute_remaining: None,
                    day_remaining: None,
                    app_minute_remaining: None,
                };
                let _ = l.observe(TENANTS[tenant as usize % 3], &feedback, now);
            }
            Op::ObserveRemaining { tenant, minute } => {
                // Phantom calls only make the limiter stricter; the definition below counts real calls only.
                let feedback = Feedback {
                    status: 200,
                    category: Category::Success,
                    rate_limit_problem: None,
                    recommended_wait_ms: Some(0),
                    minute_remaining: Some(minute as u32 % 4),
                    day_remaining: None,
                    app_minute_remaining: None,
                };
                let _ = l.observe(TENANTS[tenant as usize % 3], &feedback, now);
            }
            _ => {}
        }
    }
    for (t, calls) in &counted {
        if !TENANTS[*t].is_empty() {
            assert!(!exceeded(calls, 3, 45), "tenant minute window exceeded: {calls:?}");
            assert!(!exceeded(calls, 7, 400), "tenant day window exceeded: {calls:?}");
        }
    }
    assert!(!exceeded(&app, 5, 50), "app window exceeded: {app:?}");
}
