//! Idempotency that holds when an operation reaches the store more than once: the same operation sent again (its
//! retry, or the original arriving after its retry) changes nothing more, and a reservation is cancelled by its
//! identity. The commands are the library's own, read back from the server's SLOWLOG and sent again as they were.

#[path = "support/redis.rs"]
mod redis_support;

use redis_support::RedisServer;
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, RedisOptions, WindowLimit};

fn two_a_minute(server: &RedisServer, prefix: &str) -> Limiter {
    let limits = Limits { tenant_minute: WindowLimit::new(2, 60_000, 500), tenant_concurrency: 0, ..Limits::default() };
    Limiter::new_redis(limits, RedisOptions::new(server.url(), prefix), Clock::Manual).unwrap()
}

/// A server that logs every command with its arguments.
fn logging_server() -> RedisServer {
    RedisServer::builder().log_every_command().start()
}

/// The newest engine call of operation `op` the library sent (FCALL, the function named `xg_<hash>_<op>`), as sent.
fn last_call(server: &RedisServer, op: &str) -> Vec<String> {
    server
        .slowlog()
        .into_iter()
        .find(|c| c.name() == "FCALL" && c.args[1].ends_with(&format!("_{op}")))
        .unwrap_or_else(|| panic!("no {op} in the SLOWLOG"))
        .args
}

/// Sends a logged call again; `id` replaces its operation id (argument 8: after FCALL, the function, 5 and the keys).
fn send_again(server: &RedisServer, call: &[String], id: Option<&str>) -> redis_support::Resp {
    let mut args: Vec<&str> = call.iter().map(String::as_str).collect();
    if let Some(id) = id {
        args[8] = id;
    }
    let reply = server.admin_connection().call(&args).unwrap();
    assert!(!reply.is_error(), "{reply:?}");
    reply
}

#[test]
fn an_operation_sent_again_or_after_its_retry_counts_once() {
    let server = logging_server();
    let l = two_a_minute(&server, "replay-once");
    let Decision::Granted(_) = l.acquire("t", 0).unwrap() else { panic!("granted") };
    let acquire = last_call(&server, "acquire");
    l.record("other", 0).unwrap();
    let record = last_call(&server, "record");
    let retried = |call: &[String]| format!("r:{}", call[8]);
    for call in [&acquire, &record] {
        send_again(&server, call, None); // the original after its retry
        send_again(&server, call, Some(&retried(call))); // its retry
    }
    assert_eq!(l.snapshot("t", 0).unwrap().minute.count, 1, "the acquire counted once");
    assert_eq!(l.snapshot("t", 0).unwrap().in_flight, 1, "one permit");
    assert_eq!(l.snapshot("other", 0).unwrap().minute.count, 1, "the record counted once");
    // A booking ahead too: the window is full, so the reserve books the next free slot, once.
    l.record("t", 0).unwrap();
    let r = l.reserve("t", 0).unwrap();
    assert!(r.wait_ms > 0);
    let reserve = last_call(&server, "reserve");
    send_again(&server, &reserve, None);
    send_again(&server, &reserve, Some(&retried(&reserve)));
    assert_eq!(l.snapshot("t", 0).unwrap().minute.booked, 1, "booked once");
}

#[test]
fn a_cancel_sent_twice_never_frees_another_reservations_slot() {
    let server = logging_server();
    let l = two_a_minute(&server, "replay-cancel");
    for _ in 0..2 {
        l.record("t", 0).unwrap();
    }
    // Two reservations at the same instant: the minute after the two calls leave.
    let (first, second) = (l.reserve("t", 0).unwrap(), l.reserve("t", 0).unwrap());
    assert_eq!(first.at_ms, second.at_ms, "both booked when the window frees two slots");
    l.cancel(first.id, 0).unwrap();
    assert_eq!(l.snapshot("t", 0).unwrap().minute.booked, 1);
    let cancel = last_call(&server, "cancel");
    // The same cancel again (its original after its retry), and as a new operation (a replayed queue entry).
    send_again(&server, &cancel, None);
    send_again(&server, &cancel, Some("4242"));
    assert_eq!(l.snapshot("t", 0).unwrap().minute.booked, 1, "the second reservation keeps its slot");
    l.cancel(second.id, 0).unwrap();
    assert_eq!(l.snapshot("t", 0).unwrap().minute.booked, 0);
}

/// The store's time never runs backwards (a failover to a host whose clock is behind, a caller behind another):
/// a call is decided at the latest instant the prefix has seen, with no slack below it, so a window never moves by
/// more than its margin (the old engine allowed 1 s back, above the 500 ms minute margin).
#[test]
fn a_call_from_behind_is_decided_at_the_time_floor_exactly() {
    let server = RedisServer::start();
    let ahead = two_a_minute(&server, "floor");
    let behind = two_a_minute(&server, "floor");
    ahead.set_now(100_000).unwrap();
    behind.set_now(99_000).unwrap();
    for _ in 0..2 {
        ahead.record("t", 100_000).unwrap();
    }
    let Decision::Refused(r) = behind.acquire("t", 99_000).unwrap() else { panic!("the minute is full") };
    assert_eq!(r.wait_ms, 60_500, "decided at 100,000 (the floor), not at 99,000: the calls leave at 160,500");
    assert_eq!(behind.snapshot("t", 99_000).unwrap().now_ms, 100_000);
}
