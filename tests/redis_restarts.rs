//! After the store was restarted empty, or ran out of memory, every process is decided for by the store again
//! within the breaker's cooldown and a second, with the per-tenant limits it set, under every failure policy.
//! Real time is kept small: a 100 ms cooldown (a killed or full store fails at once, not at the deadline).

#[path = "support/redis.rs"]
mod redis_support;
#[path = "support/store_grants.rs"]
mod store_grants;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_support::RedisServer;
use store_grants::until_the_store_grants;
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, RedisOptions, TenantLimits};
use xeroguard::{FailurePolicy, Reason};

const POLICIES: [FailurePolicy; 3] = [FailurePolicy::Closed, FailurePolicy::Open, FailurePolicy::Local];
const COOLDOWN: Duration = Duration::from_millis(100);

static PREFIXES: AtomicU64 = AtomicU64::new(0);

fn limiter(server: &RedisServer, policy: FailurePolicy) -> Limiter {
    let prefix = format!("restarts{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed));
    let options = RedisOptions {
        on_store_error: policy,
        deadline: Duration::from_secs(1),
        breaker_cooldown: COOLDOWN,
        workers: 2,
        ..RedisOptions::new(server.url(), prefix)
    };
    let l = Limiter::new_redis(Limits::default(), options, Clock::Monotonic).unwrap();
    l.set_tenant_limits("vip", Some(TenantLimits { minute_limit: 2, day_limit: 100, concurrency: 0 })).unwrap();
    l
}

/// The overrides this process set apply again: 2 calls a minute for "vip", decided by the store.
fn vip_is_limited_again(l: &Limiter) {
    let decisions: Vec<Decision> = (0..3).map(|_| l.acquire("vip", l.now()).unwrap()).collect();
    assert!(matches!(decisions[..2], [Decision::Granted(_), Decision::Granted(_)]), "{decisions:?}");
    let Decision::Refused(r) = decisions[2] else { panic!("the override is back: {decisions:?}") };
    assert_eq!((r.reason, r.fallback), (Reason::Minute, None));
}

#[test]
fn after_a_kill_and_an_empty_restart_the_store_decides_again_with_the_overrides() {
    for policy in POLICIES {
        let mut server = RedisServer::start_tcp();
        let l = limiter(&server, policy);
        until_the_store_grants(&l, "tenant", Duration::from_secs(5));
        server.kill();
        server.restart();
        let took = until_the_store_grants(&l, "tenant", Duration::from_secs(10));
        assert!(took <= COOLDOWN + Duration::from_secs(1), "{policy:?}: the store granted again after {took:?}");
        vip_is_limited_again(&l);
    }
}

#[test]
fn a_store_out_of_memory_decides_again_once_it_has_room() {
    for (eviction, policy) in POLICIES.map(|p| ("noeviction", p)).into_iter().chain([("allkeys-lru", POLICIES[0])]) {
        let server = RedisServer::builder().config("maxmemory", "4mb").config("maxmemory-policy", eviction).start();
        let l = limiter(&server, policy);
        let mut admin = server.admin_connection();
        let junk = "x".repeat(256 * 1024);
        // Fill the memory: with noeviction writes are refused (OOM) from then on, with allkeys-lru keys go.
        for i in 0..40 {
            if admin.call(&["SET", &format!("junk:{i}"), &junk]).unwrap().is_error() {
                break;
            }
        }
        // The refused write's buffer is freed after it, which can leave the server just under its limit (by how
        // much depends on every byte stored, the engine's source among them): the limit goes under what is used.
        let info = admin.call(&["INFO", "memory"]).unwrap().text();
        let used: u64 = info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
        let lowered = admin.call(&["CONFIG", "SET", "maxmemory", &(used - 64 * 1024).to_string()]).unwrap();
        assert!(!lowered.is_error(), "{lowered:?}");
        let mut by_the_policy = 0;
        for _ in 0..20 {
            match l.acquire("tenant", l.now()) {
                Ok(Decision::Granted(p)) => {
                    by_the_policy += usize::from(p.fallback.is_some());
                    let _ = l.release(p, l.now());
                }
                Ok(Decision::Refused(r)) => by_the_policy += usize::from(r.fallback.is_some()),
                Err(e) => assert!(
                    matches!(e, xeroguard::pacing::PacingError::StoreUnavailable(_)),
                    "{eviction} {policy:?}: only an unavailable store may fail a call: {e}"
                ),
            }
        }
        // A full store refuses writes (OOM): the policy decides. One that evicts keeps deciding.
        assert_eq!(by_the_policy > 0, eviction == "noeviction", "{eviction} {policy:?}: {by_the_policy} of 20");
        for i in 0..40 {
            admin.call(&["DEL", &format!("junk:{i}")]).unwrap();
        }
        let took = until_the_store_grants(&l, "tenant", Duration::from_secs(10));
        assert!(took <= COOLDOWN + Duration::from_secs(1), "{eviction} {policy:?}: granted again after {took:?}");
        vip_is_limited_again(&l);
    }
}

#[test]
fn a_peek_the_failure_policy_answers_says_so() {
    for policy in POLICIES {
        let mut server = RedisServer::start();
        let l = limiter(&server, policy);
        let Decision::Granted(p) = l.peek_decision("tenant", l.now()).unwrap() else { panic!("granted") };
        assert_eq!(p.fallback, None, "the store decided");
        server.kill();
        let flag = match l.peek_decision("tenant", l.now()).unwrap() {
            Decision::Granted(p) => p.fallback,
            Decision::Refused(r) => r.fallback,
        };
        assert_eq!(flag, Some(policy), "the policy that decided is named, as for acquire");
    }
}
