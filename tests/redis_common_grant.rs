//! The common grant's cost and reach on a real server: most acquires are decided off the envelopes and the hot
//! fields alone (one HMGET, one HSET: src/pacing/redis/acquire.lua), write nothing but the hot fields and the
//! permit, and a change the envelopes stand for (a tenant's own limits) reaches the very next call.

#[path = "support/redis.rs"]
mod redis_support;

use redis_support::RedisServer;
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, RedisOptions, TenantLimits, WindowLimit};

/// Limits a long run stays under, so that every call is granted.
fn roomy() -> Limits {
    Limits {
        tenant_minute: WindowLimit::new(1_000, 60_000, 500),
        tenant_day: WindowLimit::new(100_000, 86_400_000, 60_000),
        app_minute: WindowLimit::new(10_000, 60_000, 500),
        tenant_concurrency: 5,
        ..Limits::default()
    }
}

fn logging_server() -> RedisServer {
    RedisServer::builder().log_every_command().start()
}

/// Every acquire FCALL the server logged, oldest first, with the commands it ran (their arguments).
fn acquires(server: &RedisServer) -> Vec<Vec<Vec<String>>> {
    let (mut calls, mut nested) = (Vec::new(), Vec::new());
    for command in server.slowlog().into_iter().rev() {
        match command.name().as_str() {
            "FCALL" => {
                if command.args[1].ends_with("_acquire") {
                    calls.push(std::mem::take(&mut nested));
                } else {
                    nested.clear();
                }
            }
            "HDEL" if nested.is_empty() => {} // a release
            "SLOWLOG" | "CONFIG" => {}
            _ => nested.push(command.args),
        }
    }
    calls
}

fn names(commands: &[Vec<String>]) -> Vec<&str> {
    commands.iter().map(|c| c[0].as_str()).collect()
}

/// The common grant: its HMGET and HSET, and between them, at the permit limit, an HMGET of the permits it lists
/// (the engine's own path starts alike: the common grant's HMGET, then the cold fields).
fn common_grant(commands: &[Vec<String>]) -> bool {
    match names(commands)[..] {
        ["HMGET", "HSET"] => true,
        ["HMGET", "HMGET", "HSET"] => commands[1][2].starts_with("p:"),
        _ => false,
    }
}

#[test]
fn most_grants_read_envelopes_and_write_only_hot_fields() {
    let server = logging_server();
    let l = Limiter::new_redis(roomy(), RedisOptions::new(server.url(), "common"), Clock::Manual).unwrap();
    for i in 0..300u64 {
        let Decision::Granted(p) = l.acquire("t", i * 50).unwrap() else { panic!("call {i} is granted") };
        l.release(p, i * 50).unwrap();
    }
    let calls = acquires(&server);
    assert_eq!(calls.len(), 300);
    // The engine runs when a tail is full (every 48 calls, the three tails at once), for the first call, and when
    // the config is read again (every second); the permit list is recounted at the limit (an extra HMGET).
    let recounted = calls.iter().filter(|c| common_grant(c) && c.len() == 3).count();
    let common: Vec<_> = calls.iter().filter(|c| common_grant(c) && c.len() == 2).collect();
    assert!(common.len() + recounted >= 270, "{} common, {recounted} recounted, of {}", common.len(), calls.len());
    assert!(common.len() >= 200, "{} common grants of {}", common.len(), calls.len());
    for c in common {
        let (read, write) = (&c[0], &c[1]);
        assert_eq!(read[2..], ["e", "a", "e:t", "h:t"], "the envelopes and the hot fields: {read:?}");
        let written: Vec<&str> = write[2..].iter().step_by(2).map(String::as_str).collect();
        assert_eq!(written[1..], ["a", "h:t"], "no cold field, no envelope: {write:?}");
        assert!(written[0].starts_with("p:"));
    }
}

#[test]
fn a_tenants_own_limits_reach_its_next_call() {
    let server = RedisServer::start();
    let l = Limiter::new_redis(roomy(), RedisOptions::new(server.url(), "own"), Clock::Manual).unwrap();
    for i in 0..10u64 {
        for tenant in ["t", "u"] {
            let Decision::Granted(p) = l.acquire(tenant, i).unwrap() else { panic!("granted") };
            l.release(p, i).unwrap();
        }
    }
    // Another process lowers t's limit; a call for u reads the config again first and writes the app's envelope
    // back: t's envelope, written under the config before, must not decide t's next call.
    let other = Limiter::new_redis(roomy(), RedisOptions::new(server.url(), "own"), Clock::Manual).unwrap();
    other.set_tenant_limits("t", Some(TenantLimits { minute_limit: 12, day_limit: 1_000, concurrency: 5 })).unwrap();
    assert!(matches!(l.acquire("u", 10).unwrap(), Decision::Granted(_)));
    let granted = (10..20u64).filter(|&i| matches!(l.acquire("t", i).unwrap(), Decision::Granted(_))).count();
    assert_eq!(granted, 2, "the 11th and 12th calls of t's minute, no more");
    other.set_tenant_limits("t", None).unwrap();
    assert!(matches!(l.acquire("u", 20).unwrap(), Decision::Granted(_)));
    assert!(matches!(l.acquire("t", 20).unwrap(), Decision::Granted(_)), "back to the app's limits");
}

#[test]
fn many_tenants_keep_the_common_grant_across_config_rereads() {
    let server = logging_server();
    let l = Limiter::new_redis(roomy(), RedisOptions::new(server.url(), "many"), Clock::Manual).unwrap();
    let tenants: Vec<String> = (0..20).map(|i| format!("org{i}")).collect();
    // Ten rounds 400 ms apart: the config is read again every second (CONFIG_REFRESH_MS), unchanged.
    for round in 0..10u64 {
        for (i, tenant) in tenants.iter().enumerate() {
            let now = round * 400 + i as u64;
            let Decision::Granted(p) = l.acquire(tenant, now).unwrap() else { panic!("granted") };
            l.release(p, now).unwrap();
        }
    }
    let calls = acquires(&server);
    assert_eq!(calls.len(), 200);
    let engine = calls.iter().filter(|c| !common_grant(c)).count();
    // Each tenant's first call, the app's tail flushed every 48 calls, one call per re-read: about 30. A re-read
    // that sent every tenant to the engine would make it 100 or more.
    assert!(engine <= 40, "{engine} of 200 calls took the engine's path");
}
