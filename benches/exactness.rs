//! Window exactness, Rust side: drives xeroguard's limiter and the `governor` crate with the schedules in
//! bench/schedules.json under virtual time and reports the most calls each admitted in any rolling window.
//! (bench/exactness.py drives the Python peers with the same schedules.)
//! Run: cargo bench --bench exactness   (writes $XEROGUARD_BENCH_OUT/exactness-rust.json when that is set)
//! Under `cargo test` (or with `-- --smoke`) it runs the first two hours of each schedule as a smoke test.
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use serde_json::{Value, json};
use xeroguard::pacing::{Clock, Decision, Limiter, Limits};

#[path = "../tests/common/mod.rs"]
mod common;

const TENANT: &str = "00000000-0000-4000-8000-000000000001";
const SMOKE_HORIZON_MS: u64 = 2 * 3_600_000;

struct Window {
    name: String,
    length_ms: u64,
    limit: u64,
}

/// (instant in ms after the start, most calls to take there) of one schedule, expanded from its ranges; an
/// attempt's own `max_burst` overrides the schedule-wide one.
fn attempt_instants(schedule: &Value, max_burst: u64, horizon_ms: u64) -> Vec<(u64, u64)> {
    let mut instants = std::collections::BTreeMap::new();
    for attempt in schedule["attempts"].as_array().expect("attempts") {
        let cap = attempt["max_burst"].as_u64().unwrap_or(max_burst);
        let times: Vec<u64> = match attempt["at_ms"].as_u64() {
            Some(at) => vec![at],
            None => {
                let (from, to, step) = (
                    attempt["from_ms"].as_u64().unwrap(),
                    attempt["to_ms"].as_u64().unwrap(),
                    attempt["step_ms"].as_u64().unwrap(),
                );
                (from..=to).step_by(step as usize).collect()
            }
        };
        for t in times.into_iter().filter(|&t| t <= horizon_ms) {
            let most = instants.entry(t).or_insert(0);
            *most = cap.max(*most);
        }
    }
    instants.into_iter().collect()
}

/// Admitted-call instants when `try_call(t)` is asked up to the instant's cap at each attempt instant.
fn drive(instants: &[(u64, u64)], mut try_call: impl FnMut(u64) -> bool) -> Vec<u64> {
    let mut admitted = Vec::new();
    for &(t, max_burst) in instants {
        for _ in 0..max_burst {
            if !try_call(t) {
                break;
            }
            admitted.push(t);
        }
    }
    admitted
}

fn xeroguard_driver(limits: Limits, start: u64) -> impl FnMut(u64) -> bool {
    let limiter = Limiter::new(limits, Clock::Manual).expect("limits");
    move |t| match limiter.acquire(TENANT, start + t).expect("acquire") {
        Decision::Granted(permit) => {
            limiter.release(permit, start + t).expect("release");
            true
        }
        Decision::Refused(_) => false,
    }
}

/// Answers whether one call at `t` (ms after the start) is admitted, and counts it if so.
type Driver = Box<dyn FnMut(u64) -> bool>;

type DirectGovernor = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    FakeRelativeClock,
    governor::middleware::NoOpMiddleware<governor::nanos::Nanos>,
>;

/// governor limiters over one fake clock; a call is admitted when every quota admits it, checked in order
/// (the way two governor limiters are combined: a later refusal does not give back an earlier cell).
fn governor_driver(quotas: Vec<Quota>) -> impl FnMut(u64) -> bool {
    let clock = FakeRelativeClock::default();
    let limiters: Vec<DirectGovernor> =
        quotas.into_iter().map(|q| RateLimiter::direct_with_clock(q, clock.clone())).collect();
    let mut clock_ms = 0;
    move |t| {
        clock.advance(Duration::from_millis(t - clock_ms));
        clock_ms = t;
        limiters.iter().all(|l| l.check().is_ok())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--smoke");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/schedules.json");
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("bench/schedules.json")).expect("schedules JSON");
    let start = spec["start_unix_ms"].as_u64().unwrap();
    let max_burst = spec["max_burst"].as_u64().unwrap();
    let windows: Vec<Window> = spec["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| Window {
            name: w["name"].as_str().unwrap().to_owned(),
            length_ms: w["length_ms"].as_u64().unwrap(),
            limit: w["limit"].as_u64().unwrap(),
        })
        .collect();
    let horizon = if full { u64::MAX } else { SMOKE_HORIZON_MS };
    let minute = Quota::per_minute(NonZeroU32::new(windows[0].limit as u32).unwrap());
    let day = Quota::with_period(Duration::from_millis(windows[1].length_ms / windows[1].limit))
        .unwrap()
        .allow_burst(NonZeroU32::new(windows[1].limit as u32).unwrap());

    let mut rows = Vec::new();
    for schedule in spec["schedules"].as_array().unwrap() {
        let name = schedule["name"].as_str().unwrap();
        let instants = attempt_instants(schedule, max_burst, horizon);
        let ours = concat!("xeroguard ", env!("CARGO_PKG_VERSION"), " (Rust)");
        let limiters: Vec<(&str, &str, &str, Driver)> = vec![
            (
                ours,
                "exact windows, default margins",
                "Limits::default(): 60/60.5 s, 5000/24 h + 60 s",
                Box::new(xeroguard_driver(Limits::default(), start)),
            ),
            (ours, "exact windows, no margins", "Limits::exact()", Box::new(xeroguard_driver(Limits::exact(), start))),
            (
                "governor 0.10.4",
                "GCRA per_minute(60)",
                "minute quota only (burst 60)",
                Box::new(governor_driver(vec![minute])),
            ),
            (
                "governor 0.10.4",
                "GCRA minute + day",
                "per_minute(60) then 5000/day (burst 5000), checked in order",
                Box::new(governor_driver(vec![minute, day])),
            ),
        ];
        for (limiter, strategy, note, mut try_call) in limiters {
            let admitted = drive(&instants, &mut try_call);
            let mut row = json!({"limiter": limiter, "strategy": strategy, "schedule": name, "admitted": admitted.len(), "note": note});
            for w in &windows {
                let most = common::max_in_any_window(&admitted, w.length_ms);
                row[format!("max_{}", w.name.replace(' ', ""))] = json!(most);
                if limiter == ours {
                    // The point of the table: whatever the schedule, xeroguard never exceeds a window.
                    assert!(most as u64 <= w.limit, "{strategy} admitted {most} in a {} window ({name})", w.name);
                }
            }
            println!(
                "{name:12} {limiter:24} {strategy:32} max_60s {:4} max_24h {:5} admitted {}",
                row["max_60s"], row["max_24h"], row["admitted"]
            );
            rows.push(row);
        }
    }
    if let Ok(dir) = std::env::var("XEROGUARD_BENCH_OUT") {
        let out = std::path::Path::new(&dir).join("exactness-rust.json");
        std::fs::write(&out, serde_json::to_string_pretty(&json!({"rows": rows, "full": full})).unwrap())
            .expect("write results");
        println!("wrote {}", out.display());
    }
}
