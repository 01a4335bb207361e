//! The shared limiter in the setups it meets in production: TLS with a private CA, an ACL user limited to the
//! commands the library needs, keys that all expire, and tenant ids that try to reach other keys.

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::atomic::{AtomicU64, Ordering};

use redis_support::RedisServer;
use xeroguard::pacing::{Clock, Decision, Feedback, Limiter, Limits, PacingError, RedisOptions, TenantLimits};
use xeroguard::{Category, RateLimitProblem};

static PREFIXES: AtomicU64 = AtomicU64::new(0);

fn prefix() -> String {
    format!("deploy{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed))
}

/// The commands the library uses (README "Redis: the ACL it needs"): the scripts, and inside them only these.
const ACL: &[&str] = &[
    "~xg:*",
    "+evalsha",
    "+eval",
    "+time",
    "+hget",
    "+hmget",
    "+hset",
    "+hdel",
    "+get",
    "+set",
    "+del",
    "+getrange",
    "+setrange",
    "+pexpire",
    "+zadd",
    "+zrem",
    "+zscore",
    "+zrangebyscore",
    "+zremrangebyscore",
];

#[test]
fn the_readme_names_exactly_these_commands() {
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("**The ACL it needs**").expect("the README's ACL section")..];
    let block = section.split("```").nth(1).expect("the ACL's code block");
    let mut named: Vec<&str> = block.split_whitespace().filter(|w| w.starts_with(['+', '~'])).collect();
    let mut tested = ACL.to_vec();
    named.sort_unstable();
    tested.sort_unstable();
    assert_eq!(named, tested);
}

/// Every operation once, as a worker would use them.
fn exercise(l: &Limiter) {
    let now = l.now();
    let Decision::Granted(p) = l.acquire("tenant", now).unwrap() else { panic!("granted") };
    l.release(p, now).unwrap();
    assert!(l.peek("tenant", now).unwrap().is_none());
    for _ in 1..60 {
        l.record("tenant", now).unwrap();
    }
    // The minute is full: the next slot is a minute away, and can be given back before then.
    let r = l.reserve("tenant", now).unwrap();
    assert!(r.wait_ms > 50_000, "{r:?}");
    assert_eq!(l.cancel(r.id, l.now()), Ok(()));
    l.observe("tenant", &limited(), now).unwrap();
    l.set_tenant_limits("tenant", Some(TenantLimits { minute_limit: 10, day_limit: 1000, concurrency: 2 })).unwrap();
    assert_eq!(l.snapshot("tenant", now).unwrap().day.limit, 1000);
    l.set_tenant_limits("tenant", None).unwrap();
}

fn limited() -> Feedback {
    Feedback {
        status: 429,
        category: Category::RateLimited,
        rate_limit_problem: Some(RateLimitProblem::Minute),
        recommended_wait_ms: Some(1_000),
        minute_remaining: Some(0),
        day_remaining: Some(4_000),
        app_minute_remaining: Some(9_000),
    }
}

#[test]
fn tls_with_a_private_certificate_authority() {
    let server = RedisServer::builder().tls().start();
    let ca = server.ca_cert_path().expect("a TLS server has a CA").to_str().unwrap().to_owned();
    let options = RedisOptions { tls_ca_file: Some(ca), ..RedisOptions::new(server.url(), prefix()) };
    assert!(server.url().starts_with("rediss://"));
    let l = Limiter::new_redis(Limits::exact(), options, Clock::Monotonic).expect("TLS connects with the CA");
    exercise(&l);
    // Without the CA the server's certificate is not trusted: refused, within the deadline, not hung.
    let untrusted = Limiter::new_redis(Limits::exact(), RedisOptions::new(server.url(), prefix()), Clock::Monotonic);
    assert!(
        matches!(untrusted, Err(PacingError::StoreUnavailable(_)) | Err(PacingError::Store(_))),
        "{:?}",
        untrusted.err()
    );
}

#[test]
fn an_acl_user_with_only_the_needed_commands_can_do_everything() {
    let server = RedisServer::builder().tcp().acl_user("pacer", "s3cret", ACL).start();
    let url = server.url_for_user("pacer");
    let l = Limiter::new_redis(Limits::exact(), RedisOptions::new(url, prefix()), Clock::Monotonic).expect("ACL user");
    exercise(&l);
    // One command fewer (ZADD) and the store refuses: a loud error, not an outage the failure policy hides.
    let fewer: Vec<&str> = ACL.iter().copied().filter(|c| *c != "+zadd").collect();
    let server = RedisServer::builder().tcp().acl_user("pacer", "s3cret", &fewer).start();
    let url = server.url_for_user("pacer");
    let l = Limiter::new_redis(Limits::exact(), RedisOptions::new(url, prefix()), Clock::Monotonic).unwrap();
    let refused = l.acquire("tenant", l.now());
    assert!(
        matches!(&refused, Err(PacingError::Store(why)) if why.contains("NOPERM") || why.contains("can't run this command")),
        "{refused:?}"
    );
}

#[test]
fn every_key_but_the_limits_expires_and_emptied_logs_go() {
    let server = RedisServer::start();
    let p = prefix();
    let l = Limiter::new_redis(Limits::exact(), RedisOptions::new(server.url(), &p), Clock::Manual).unwrap();
    let hostile = ["tenant-a", "x}:t:y", "{other}", "a:m", ""];
    for t in hostile {
        let Decision::Granted(permit) = l.acquire(t, 0).unwrap() else { panic!("granted") };
        l.record(t, 0).unwrap();
        l.observe(t, &limited(), 0).unwrap();
        if permit.id != 0 {
            l.release(permit, 0).unwrap();
        }
    }
    let pattern = format!("xg:{{{p}}}:*");
    let keys = server.keys(&pattern);
    assert!(keys.iter().all(|k| k.starts_with(&format!("xg:{{{p}}}:"))), "every key in the app's slot: {keys:?}");
    assert_eq!(server.keys_without_ttl(&pattern), vec![format!("xg:{{{p}}}:cfg")], "only the limits persist");
    // Days later the next call finds every window empty and deletes the logs instead of keeping them.
    l.set_now(3 * 86_400_000).unwrap();
    for t in hostile {
        l.observe(
            t,
            &Feedback { minute_remaining: None, day_remaining: None, app_minute_remaining: None, ..limited() },
            l.now(),
        )
        .unwrap();
    }
    let logs: Vec<String> = server
        .keys(&pattern)
        .into_iter()
        .filter(|k| k.ends_with(":m") || k.ends_with(":d") || k.ends_with(":am"))
        .collect();
    assert!(logs.is_empty(), "emptied logs are deleted: {logs:?}");
}

#[test]
fn limits_stored_by_a_later_version_with_more_fields_are_read() {
    let server = RedisServer::start();
    let p = prefix();
    let l = Limiter::new_redis(Limits::exact(), RedisOptions::new(server.url(), &p), Clock::Manual).unwrap();
    let key = format!("xg:{{{p}}}:cfg");
    let stored = server.cli(&["HGET", &key, "lim"]).trim().to_owned();
    // A minute limit of 2 where this version stores 60, and a field this version does not know.
    let (_, rest) = stored.split_once(',').expect("comma-separated limits");
    assert_eq!(server.cli(&["HSET", &key, "lim", &format!("2,{rest},7")]).trim(), "0");
    for _ in 0..2 {
        let Decision::Granted(p) = l.acquire("tenant", 0).unwrap() else { panic!("granted") };
        l.release(p, 0).unwrap();
    }
    let Decision::Refused(r) = l.acquire("tenant", 0).unwrap() else { panic!("the stored minute limit applies") };
    assert_eq!(r.reason, xeroguard::Reason::Minute);
}
