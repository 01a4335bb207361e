//! acquire+release on the exact four-window limiter (tenant minute, tenant day, concurrency, app minute) beside
//! the `governor` crate's keyed limiter check (60/min), for 1 and 10,000 tenants, on 1 and 2 threads; then heap
//! bytes per active tenant (a full day window) and per idle tenant, counted by a counting allocator.
//! Run: cargo bench --bench pacing
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};
use xeroguard::pacing::{Clock, Decision, Limiter, Limits};

struct Counting;
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Time steps that keep every window admitting: 1 tenant every 20 s (3/min, 4320/day); 10,000 tenants at one
/// call per 7 ms overall (under 10,000/min for the app, 1 per 70 s per tenant).
fn step_ms(tenants: usize) -> u64 {
    if tenants == 1 { 20_000 } else { 7 }
}

fn acquire_release(limiter: &Limiter, tenant: &str, now: u64) {
    match limiter.acquire(tenant, now).unwrap() {
        Decision::Granted(p) => limiter.release(p, now).unwrap(),
        Decision::Refused(r) => panic!("the schedule should always admit: {r:?}"),
    }
}

fn run_threads(threads: usize, iters: u64, tenants: &[String], work: impl Fn(&str, u64) + Sync) -> Duration {
    let clock = AtomicU64::new(0);
    let step = step_ms(tenants.len());
    let start = Instant::now();
    std::thread::scope(|s| {
        for id in 0..threads {
            let (clock, work) = (&clock, &work);
            s.spawn(move || {
                for i in 0..iters / threads as u64 {
                    let now = clock.fetch_add(step, Ordering::Relaxed);
                    let tenant = &tenants[(i as usize * threads + id) % tenants.len()];
                    work(tenant, now);
                }
            });
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquire_release");
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    for tenant_count in [1usize, 10_000] {
        let tenants: Vec<String> = (0..tenant_count).map(|i| format!("{i:08x}-0000-4000-8000-000000000000")).collect();
        for threads in [1usize, 2] {
            group.bench_function(format!("xeroguard/{tenant_count}_tenants/{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    // The shared simulated clock races ahead of a descheduled thread; long permits keep its
                    // release valid. The windows are Xero's, exact.
                    let limits = Limits { permit_timeout_ms: u64::MAX / 4, ..Limits::exact() };
                    let limiter = Arc::new(Limiter::new(limits, Clock::Manual).unwrap());
                    run_threads(threads, iters, &tenants, |t, now| acquire_release(&limiter, t, now))
                })
            });
            group.bench_function(format!("governor_keyed/{tenant_count}_tenants/{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    let limiter = RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(60).unwrap()));
                    run_threads(threads, iters, &tenants, |t, _| {
                        let _ = black_box(limiter.check_key(&t.to_owned()));
                    })
                })
            });
        }
    }
    group.finish();
    memory_report();
}

/// Heap bytes per tenant: active with a full day window (5000 calls), and after going idle (evicted).
fn memory_report() {
    // The app window is the app's cost, not a tenant's: disabled here so only per-tenant state is counted.
    let limits = Limits { app_minute: xeroguard::pacing::WindowLimit::new(0, 60_000, 0), ..Limits::exact() };
    let limiter = Limiter::new(limits, Clock::Manual).unwrap();
    let tenants = 20;
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for t in 0..tenants {
        let tenant = format!("{t:08x}-0000-4000-8000-000000000000");
        for i in 0..5000u64 {
            limiter.record(&tenant, i * 17_000).unwrap(); // 5000 calls spread over the day
        }
    }
    let active = (LIVE_BYTES.load(Ordering::Relaxed) - before) / tenants as isize;
    // A day later every shard, once touched, sweeps its idle tenants away (peeks create no state).
    for shard_probe in 0..1000 {
        limiter.peek(&format!("probe-{shard_probe}"), 5000 * 17_000 + 86_400_000 + 2_000).unwrap();
    }
    let idle = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64 / tenants as f64;
    println!(
        "memory: {active} heap bytes per active tenant (full 5000-call day window); {idle:.1} per idle tenant after eviction"
    );
    if let Ok(dir) = std::env::var("XEROGUARD_BENCH_OUT") {
        let report = serde_json::json!({"active_tenant_bytes": active, "idle_tenant_bytes": idle, "tenants": tenants, "day_window_calls": 5000});
        std::fs::write(std::path::Path::new(&dir).join("memory.json"), report.to_string()).expect("write memory.json");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
