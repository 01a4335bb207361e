//! The figures issue 20 asks for, measured in real time against real redis-server instances (minutes, not part of
//! the test command): `cargo test --test redis_fault_figures -- --ignored --nocapture --test-threads 8`.
//!
//! - `stall_recovery`: per failure policy, 4 threads take turns on one tenant (3 in flight at most) when Redis is
//!   SIGSTOPped for 3 s: the time from SIGCONT to the next grant the store decided.
//! - `idle_drops`: Redis with `timeout 1` closes idle connections; after 1.6 s idle, 10 rounds per policy: how
//!   often the next call failed (closed: refused `store_unavailable`; open: granted blind).
//! - `restart_429s`: 4 limiters ("processes") × 2 tenants × 3 threads call a Xero-like server (fixed windows) through
//!   one Redis; the Redis is killed and started empty after 3 s: the 429s per tenant after the restart.
//!
//! Only the limiter's public API is used, so the same file measures an older checkout ("before").

#[path = "support/redis.rs"]
mod redis_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use redis_support::RedisServer;
use xeroguard::pacing::{Clock, Decision, Feedback, Limiter, Limits, RedisOptions, WindowLimit};
use xeroguard::{FailurePolicy, Reason};

static PREFIXES: AtomicU64 = AtomicU64::new(0);

const POLICIES: [FailurePolicy; 3] = [FailurePolicy::Closed, FailurePolicy::Open, FailurePolicy::Local];

fn options(url: String, policy: FailurePolicy, prefix: &str) -> RedisOptions {
    RedisOptions { on_store_error: policy, workers: 4, ..RedisOptions::new(url, prefix) }
}

fn prefix(name: &str) -> String {
    format!("{name}{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed))
}

/// A tenant with 3 calls in flight at most and windows that never bind; the default permit timeout (120 s).
fn stall_limits() -> Limits {
    Limits {
        tenant_minute: WindowLimit::new(100_000, 60_000, 0),
        tenant_day: WindowLimit::new(1_000_000, 86_400_000, 0),
        tenant_concurrency: 3,
        app_minute: WindowLimit::new(1_000_000, 60_000, 0),
        ..Limits::default()
    }
}

/// Seconds from SIGCONT to the next grant the store made, after a 3 s stall under `policy` (None: none within
/// `give_up`).
fn stall_recovery(policy: FailurePolicy, give_up: Duration) -> (Option<Duration>, u64) {
    let mut server = RedisServer::start_tcp();
    let l = Arc::new(
        Limiter::new_redis(stall_limits(), options(server.url(), policy, &prefix("stall")), Clock::Monotonic)
            .expect("connect"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let resumed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let first_grant: Arc<Mutex<Option<Instant>>> = Arc::default();
    let release_errors = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (l, stop, resumed_at, first_grant, errors) =
                (l.clone(), stop.clone(), resumed_at.clone(), first_grant.clone(), release_errors.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.acquire("tenant", l.now()) {
                        Ok(Decision::Granted(p)) => {
                            if p.fallback.is_none()
                                && let Some(resumed) = *resumed_at.lock().unwrap()
                            {
                                first_grant.lock().unwrap().get_or_insert_with(Instant::now);
                                let _ = resumed;
                            }
                            std::thread::sleep(Duration::from_millis(30));
                            if l.release(p, l.now()).is_err() {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(Decision::Refused(r)) => std::thread::sleep(Duration::from_millis(r.wait_ms.clamp(1, 50))),
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    server.pause();
    std::thread::sleep(Duration::from_secs(3));
    server.resume();
    let resumed = Instant::now();
    *resumed_at.lock().unwrap() = Some(resumed);
    let recovered = loop {
        if let Some(at) = *first_grant.lock().unwrap() {
            break Some(at - resumed);
        }
        if resumed.elapsed() > give_up {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    (recovered, release_errors.load(Ordering::Relaxed))
}

#[test]
#[ignore = "a figure, in real time (up to minutes): run with --ignored --nocapture"]
fn stall_recovery_per_policy() {
    let results: Vec<_> = POLICIES
        .map(|policy| std::thread::spawn(move || (policy, stall_recovery(policy, Duration::from_secs(150)))))
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for (policy, (recovered, release_errors)) in results {
        match recovered {
            Some(d) => println!("stall 3 s, {policy:?}: next store grant {:.3} s after SIGCONT", d.as_secs_f64()),
            None => println!("stall 3 s, {policy:?}: no store grant within 150 s of SIGCONT"),
        }
        println!("  releases that returned an error: {release_errors}");
    }
}

/// Of `rounds` calls made after 1.6 s idle against a Redis with `timeout 1`, how many the store did not decide.
/// Also the median time of that call and of the call right after it (on a live connection): what noticing the
/// dead pool costs.
fn idle_drop_failures(server: &RedisServer, policy: FailurePolicy, rounds: u32) -> (u32, Duration, Duration) {
    let l = Limiter::new_redis(Limits::default(), options(server.url(), policy, &prefix("idle")), Clock::Monotonic)
        .expect("connect");
    let mut failed = 0;
    let (mut after_idle, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Four calls at once, so the pool keeps several connections (as a multi-threaded worker's does).
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    barrier.wait();
                    if let Ok(Decision::Granted(p)) = l.acquire("tenant", l.now()) {
                        std::thread::sleep(Duration::from_millis(20));
                        let _ = l.release(p, l.now());
                    }
                });
            }
        });
        std::thread::sleep(Duration::from_millis(1_600));
        let started = Instant::now();
        let decision = l.acquire("tenant", l.now());
        after_idle.push(started.elapsed());
        match decision {
            Ok(Decision::Granted(p)) => {
                if p.fallback.is_some() {
                    failed += 1;
                }
                let _ = l.release(p, l.now());
            }
            Ok(Decision::Refused(r)) => {
                failed += u32::from(r.reason == Reason::StoreUnavailable || r.fallback.is_some())
            }
            Err(_) => failed += 1,
        }
        let started = Instant::now();
        if let Ok(Decision::Granted(p)) = l.acquire("tenant", l.now()) {
            warm.push(started.elapsed());
            let _ = l.release(p, l.now());
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    (failed, median(after_idle), median(warm))
}

#[test]
#[ignore = "a figure, in real time (about 20 s): run with --ignored --nocapture"]
fn idle_drops_per_policy() {
    let server = Arc::new(RedisServer::builder().tcp().config("timeout", "1").start());
    let results: Vec<_> = POLICIES
        .map(|policy| {
            let server = server.clone();
            std::thread::spawn(move || (policy, idle_drop_failures(&server, policy, 10)))
        })
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for (policy, (failed, after_idle, warm)) in results {
        println!("idle drop (timeout 1), {policy:?}: {failed} of 10 calls after 1.6 s idle not decided by the store");
        println!("  median call after the idle pause {after_idle:?}, on a live connection {warm:?}");
    }
}

/// The Xero-like server (tests/server/xero_like_server.py), killed on drop.
pub struct XeroLike {
    child: Child,
    pub port: u16,
}

impl XeroLike {
    pub fn start(args: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/server/xero_like_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the Xero-like server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok()).expect("READY <port>");
        XeroLike { child, port }
    }

    /// One GET on a fresh connection, its raw response.
    pub fn get(&self, path: &str) -> Vec<u8> {
        let mut c = HttpClient::connect(self.port);
        c.request(path, None)
    }
}

impl Drop for XeroLike {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 client, just enough for the Xero-like server.
pub struct HttpClient {
    port: u16,
    stream: Option<BufReader<TcpStream>>,
}

impl HttpClient {
    pub fn connect(port: u16) -> Self {
        HttpClient { port, stream: None }
    }

    /// Sends a GET and returns the raw response (status line, headers, body).
    pub fn request(&mut self, path: &str, tenant: Option<&str>) -> Vec<u8> {
        for attempt in 0..2 {
            let stream = self.stream.get_or_insert_with(|| {
                let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the Xero-like server");
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                BufReader::new(s)
            });
            let tenant_header = tenant.map_or(String::new(), |t| format!("Xero-Tenant-Id: {t}\r\n"));
            let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{tenant_header}\r\n");
            match Self::exchange(stream, request.as_bytes()) {
                Ok(raw) => return raw,
                Err(e) if attempt == 0 => {
                    self.stream = None;
                    let _ = e;
                }
                Err(e) => panic!("HTTP to the Xero-like server: {e}"),
            }
        }
        unreachable!()
    }

    fn exchange(stream: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.get_mut().write_all(request)?;
        let mut raw = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
            raw.extend_from_slice(line.as_bytes());
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body)?;
        raw.extend_from_slice(&body);
        Ok(raw)
    }
}

/// The fleet's limits (tests/fleet): per tenant 6 per 1 s, 50 per 10 s, 2 in flight; per app 20 per 1 s.
pub fn fleet_limits() -> Limits {
    Limits {
        tenant_minute: WindowLimit::new(6, 1_000, 30),
        tenant_day: WindowLimit::new(50, 10_000, 30),
        tenant_concurrency: 2,
        app_minute: WindowLimit::new(20, 1_000, 30),
        permit_timeout_ms: 10_000,
        max_tenants: 0,
    }
}

/// One paced call: acquire (waiting), GET, observe, release. Returns the status, or None when no permit came.
pub fn paced_call(l: &Limiter, http: &mut HttpClient, tenant: &str) -> Option<u16> {
    let permit = l.acquire_wait(tenant, 2_000).ok()?;
    let raw = http.request("/api.xro/2.0/Invoices", Some(tenant));
    let classification = xeroguard::classify_raw(&raw, SystemTime::now()).expect("an HTTP response");
    let _ = l.observe(tenant, &Feedback::from(&classification), l.now());
    let _ = l.release(permit, l.now());
    Some(classification.status)
}

/// 429s per tenant after an empty restart of Redis under `policy`.
fn restart_429s(policy: FailurePolicy) -> Vec<(String, u32, u32)> {
    let xero = XeroLike::start(&[
        "--minute-ms",
        "1000",
        "--minute-limit",
        "6",
        "--day-ms",
        "10000",
        "--day-limit",
        "50",
        "--concurrency",
        "2",
        "--app-minute-limit",
        "20",
        "--latency-ms",
        "5",
    ]);
    let mut server = RedisServer::start_tcp();
    let prefix = prefix("restart");
    let tenants = ["tenant-a", "tenant-b"];
    let stop = Arc::new(AtomicBool::new(false));
    let restarted_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let limiters: Vec<Arc<Limiter>> = (0..4)
        .map(|_| {
            Arc::new(
                Limiter::new_redis(fleet_limits(), options(server.url(), policy, &prefix), Clock::Monotonic)
                    .expect("connect"),
            )
        })
        .collect();
    let tally: Arc<Mutex<Vec<(String, u16, bool)>>> = Arc::default();
    let mut threads = Vec::new();
    for l in &limiters {
        for tenant in tenants {
            for _ in 0..3 {
                let (l, stop, tally, restarted_at, port) =
                    (l.clone(), stop.clone(), tally.clone(), restarted_at.clone(), xero.port);
                threads.push(std::thread::spawn(move || {
                    let mut http = HttpClient::connect(port);
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(status) = paced_call(&l, &mut http, tenant) {
                            let after = restarted_at.lock().unwrap().is_some();
                            tally.lock().unwrap().push((tenant.to_owned(), status, after));
                        }
                    }
                }));
            }
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    server.kill();
    server.restart();
    *restarted_at.lock().unwrap() = Some(Instant::now());
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let tally = tally.lock().unwrap();
    tenants
        .iter()
        .map(|t| {
            let count = |when: bool| {
                tally.iter().filter(|(tenant, status, after)| tenant == t && *status == 429 && *after == when).count()
            };
            ((*t).to_owned(), count(false) as u32, count(true) as u32)
        })
        .collect()
}

#[test]
#[ignore = "a figure, in real time (about 10 s): run with --ignored --nocapture"]
fn restart_429s_per_policy() {
    for policy in POLICIES {
        let per_tenant = restart_429s(policy);
        println!("empty restart, {policy:?}: 429s per tenant (before, after it): {per_tenant:?}");
    }
}
