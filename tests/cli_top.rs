//! The operator's view against a real redis-server: `snapshot --all` lists every tenant with state (ids decoded,
//! busiest first, bounded), `top --once` draws a frame, both write nothing to the store; and the live `top` under a
//! pseudo-terminal (Python's pty support drives it): two frames, then q or Ctrl-C ends it with exit status 0 and the
//! terminal as it was. The frames' layout is tested on fixed snapshots in src/cli/view.rs (golden text).
#[path = "support/redis.rs"]
mod redis_support;

use std::process::Command;

use xeroguard::pacing::RedisOptions;
use xeroguard::{Clock, Limiter, Limits};

fn xeroguard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xeroguard")).args(args).output().expect("running xeroguard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Writes the server has taken since it started (INFO's dirty counter): a read-only view leaves it alone.
fn writes(server: &redis_support::RedisServer) -> u64 {
    let info = server.cli(&["INFO", "persistence"]);
    let line = info.lines().find_map(|l| l.strip_prefix("rdb_changes_since_last_save:")).expect("INFO persistence");
    line.trim().parse().unwrap()
}

/// Ids that need the key encoding (a space, a colon, a brace, a percent sign, non-ASCII) and how many calls each makes.
const TENANTS: &[(&str, u32)] =
    &[("4f8a2a1e-0000-4000-8000-000000000001", 50), ("demo company (uk)", 5), ("a:m}{%", 20), ("ünï", 1)];

/// A server with traffic under `prefix`: calls for each of [`TENANTS`], two permits held, a 429 for one tenant.
fn busy_store(prefix: &str) -> (redis_support::RedisServer, Limiter) {
    let server = redis_support::RedisServer::start();
    let worker =
        Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), prefix), Clock::Monotonic).unwrap();
    for &(tenant, calls) in TENANTS {
        for _ in 0..calls {
            worker.record(tenant, worker.now()).unwrap();
        }
    }
    for _ in 0..2 {
        assert!(matches!(worker.acquire("a:m}{%", worker.now()).unwrap(), xeroguard::Decision::Granted(_)));
    }
    let answer = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 42\r\nX-Rate-Limit-Problem: minute\r\n\r\n";
    let c = xeroguard::classify_raw(answer, std::time::SystemTime::now()).unwrap();
    worker.observe("ünï", &xeroguard::pacing::Feedback::from(&c), worker.now()).unwrap();
    (server, worker)
}

#[test]
fn snapshot_all_lists_every_tenant_busiest_first_and_writes_nothing() {
    let prefix = format!("all{}", std::process::id());
    let (server, _worker) = busy_store(&prefix);
    let url = server.url();
    let before = writes(&server);
    let (code, out, err) = xeroguard(&["snapshot", "--redis", &url, "--prefix", &prefix, "--all", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = json["tenants"].as_array().unwrap().iter().map(|t| t["tenant"].as_str().unwrap()).collect();
    // Blocked by the 429 first; then 50 of 60 in the minute; then 20 (with 2 in flight, booked into the minute
    // too); then 5.
    assert_eq!(ids, ["ünï", "4f8a2a1e-0000-4000-8000-000000000001", "a:m}{%", "demo company (uk)"], "{out}");
    assert_eq!(json["complete"], true);
    assert_eq!(json["app_minute"]["count"], 78, "{out}");
    assert_eq!(json["tenants"][0]["pressure"]["blocked"], true);
    assert_eq!(json["tenants"][2]["in_flight"], 2);

    let (code, text, err) = xeroguard(&["snapshot", "--redis", &url, "--prefix", &prefix, "--all"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("4 tenants with state, busiest first"), "{text}");
    assert!(text.contains("retry_after: blocked 4"), "{text}");
    let rows: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("tenant")).skip(1).collect();
    assert!(rows[0].starts_with("ünï ") && rows[3].starts_with("demo company (uk)"), "{text}");

    // Bounded: the most asked for, and saying so.
    let (code, text, _) = xeroguard(&["snapshot", "--redis", &url, "--prefix", &prefix, "--all", "--max-tenants", "2"]);
    assert_eq!(code, 0);
    assert!(text.contains("2 tenants with state listed, the most asked for (--max-tenants)"), "{text}");
    let (code, _, err) = xeroguard(&["snapshot", "--redis", &url, "--prefix", &prefix, "--all", "--max-tenants", "0"]);
    assert!(code == 2 && err.contains("--max-tenants takes 1 to 100000"), "{err}");
    let (code, _, err) = xeroguard(&["snapshot", "--redis", &url, "--prefix", &prefix, "--all", "t"]);
    assert!(code == 2 && err.contains("not both"), "{err}");

    let (code, frame, err) = xeroguard(&["top", "--redis", &url, "--prefix", &prefix, "--once"]);
    assert_eq!(code, 0, "{err}");
    assert!(frame.starts_with(&format!("xeroguard top · prefix {prefix} · ")), "{frame}");
    assert!(frame.contains("78/10000") && frame.contains("50/60"), "{frame}");
    assert_eq!(writes(&server), before, "snapshot and top only read");
}

#[test]
fn a_prefix_without_tenants_and_a_store_that_is_down() {
    let server = redis_support::RedisServer::start();
    let url = server.url();
    // A prefix no worker has used holds no limits: said so, and nothing is written (issue 20).
    let (code, _, err) = xeroguard(&["snapshot", "--redis", &url, "--prefix", "empty", "--all"]);
    assert!(code == 1 && err.contains("no limits are stored for this key prefix"), "{code} {err}");
    assert_eq!(server.cli(&["DBSIZE"]).trim(), "0");
    let (code, _, err) = xeroguard(&["top", "--redis", "redis://127.0.0.1:1", "--prefix", "p", "--once"]);
    assert!(code == 1 && err.contains("unavailable"), "{code} {err}");
    let (code, _, err) = xeroguard(&["top", "--redis", &url, "--prefix", "p", "--interval", "0"]);
    assert!(code == 2 && err.contains("--interval"), "{err}");
    // Not a terminal: says so rather than drawing escape codes into a pipe.
    let (code, _, err) = xeroguard(&["top", "--redis", &url, "--prefix", "p"]);
    assert!(code == 1 && err.contains("needs a terminal"), "{code} {err}");
}

/// Runs `top` on a pseudo-terminal of 100 × 24, waits for two frames, sends `key`, and reports (as JSON) the frames
/// seen, the exit status, the terminal's local modes before, during and after, and the output.
const PTY_DRIVER: &str = r#"
import fcntl, json, os, select, struct, subprocess, sys, termios, time
key = bytes([int(sys.argv[1])])
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
before = termios.tcgetattr(slave)
child = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
out, during, deadline = b"", None, time.monotonic() + 60
def read(timeout):
    global out
    ready, _, _ = select.select([master], [], [], timeout)
    if ready:
        try:
            out += os.read(master, 65536)
        except OSError:
            pass
while out.count(b"\x1b[H") < 2 and child.poll() is None and time.monotonic() < deadline:
    read(0.2)
frames = out.count(b"\x1b[H")
during = termios.tcgetattr(slave)
os.write(master, key)
try:
    code = child.wait(timeout=30)
except subprocess.TimeoutExpired:
    child.kill()
    code = "hung"
read(0.5)
after = termios.tcgetattr(slave)
print(json.dumps({"frames": frames, "code": code, "lflag": [before[3], during[3], after[3]],
                  "echo": termios.ECHO, "icanon": termios.ICANON, "out": out.decode("utf-8", "replace")}))
"#;

fn top_under_a_pty(key: u8, url: &str, prefix: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .args(["-c", PTY_DRIVER, &key.to_string()])
        .args([env!("CARGO_BIN_EXE_xeroguard"), "top", "--redis", url, "--prefix", prefix, "--interval", "0.2"])
        .output()
        .expect("python3 (the Python binding's tests need it too)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn top_runs_live_on_a_terminal_and_q_or_ctrl_c_restores_it() {
    let prefix = format!("top{}", std::process::id());
    let (server, _worker) = busy_store(&prefix);
    let before = writes(&server);
    for (key, name) in [(b'q', "q"), (0x03, "Ctrl-C")] {
        let run = top_under_a_pty(key, &server.url(), &prefix);
        let out = run["out"].as_str().unwrap();
        assert!(run["frames"].as_u64().unwrap() >= 2, "{name}: {out}");
        assert_eq!(run["code"], 0, "{name}: {out}");
        let lflag: Vec<u64> = run["lflag"].as_array().unwrap().iter().map(|f| f.as_u64().unwrap()).collect();
        let (echo, icanon) = (run["echo"].as_u64().unwrap(), run["icanon"].as_u64().unwrap());
        assert!(lflag[0] & echo != 0 && lflag[0] & icanon != 0, "{name}: a cooked terminal to start with");
        assert_eq!(lflag[1] & (echo | icanon), 0, "{name}: raw while it runs");
        assert_eq!(lflag[2], lflag[0], "{name}: the terminal's modes restored");
        // The alternate screen entered, then left with the cursor shown again.
        assert!(out.contains("\x1b[?1049h") && out.ends_with("\x1b[?25h\x1b[?1049l"), "{name}: {out:?}");
        assert!(out.contains("50/60") && out.contains("4 tenants with state"), "{name}: {out}");
    }
    assert_eq!(writes(&server), before, "top only reads");
}

#[test]
fn the_listing_takes_several_scan_steps_and_stops_at_its_bound() {
    let server = redis_support::RedisServer::start();
    let limiter =
        Limiter::new_redis(Limits::default(), RedisOptions::new(server.url(), "many"), Clock::Monotonic).unwrap();
    // More tenants than one HSCAN step returns (a COUNT of 500 over a hash of headers and more).
    let tenants: Vec<String> = (0..1200).map(|i| format!("tenant {i}/é")).collect();
    for tenant in &tenants {
        limiter.record(tenant, limiter.now()).unwrap();
    }
    let all = limiter.tenants_with_state(10_000).unwrap();
    assert!(all.complete && all.scan_steps > 1, "{} steps", all.scan_steps);
    let mut listed = all.tenants.clone();
    listed.sort();
    let mut expected = tenants.clone();
    expected.sort();
    assert_eq!(listed, expected, "every tenant once, its id decoded");
    let some = limiter.tenants_with_state(700).unwrap();
    assert_eq!(some.tenants.len(), 700);
    assert!(!some.complete);
    // A limiter of this process has no shared store to list.
    let local = Limiter::new(Limits::default(), Clock::Manual).unwrap();
    assert!(local.tenants_with_state(10).unwrap_err().to_string().contains("only a shared store"));
}
