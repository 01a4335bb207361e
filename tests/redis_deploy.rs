//! The shared limiter in the setups it meets in production: TLS with a private CA, an ACL user limited to the
//! commands the library needs, keys that all expire, and tenant ids that try to reach other keys.

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::atomic::{AtomicU64, Ordering};

use redis_support::RedisServer;
use xeroguard::pacing::{
    Clock, Decision, Feedback, Limiter, Limits, PacingError, RedisOptions, TenantLimits, WindowLimit,
};
use xeroguard::{Category, RateLimitProblem};

static PREFIXES: AtomicU64 = AtomicU64::new(0);

fn prefix() -> String {
    format!("deploy{}-{}", std::process::id(), PREFIXES.fetch_add(1, Ordering::Relaxed))
}

/// The commands the library uses (README "Redis: the ACL it needs"): the scripts, and inside them only these.
const ACL: &[&str] = &[
    "~xg:*",
    "+fcall",
    "+function|load",
    "+evalsha",
    "+eval",
    "+time",
    "+hget",
    "+hmget",
    "+hset",
    "+hdel",
    "+hscan",
    "+getrange",
    "+setrange",
    "+set",
    "+del",
    "+pexpire",
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
    for functions in [true, false] {
        let options = RedisOptions { functions, ..RedisOptions::new(url.clone(), prefix()) };
        let l = Limiter::new_redis(Limits::exact(), options, Clock::Monotonic).expect("ACL user");
        exercise(&l);
        // The config lost and stored again with this process's overrides: inside the same commands.
        l.set_tenant_limits("vip", Some(TenantLimits { minute_limit: 1, day_limit: 10, concurrency: 0 })).unwrap();
        assert_eq!(server.cli(&["FLUSHALL"]).trim(), "OK");
        let Decision::Granted(_) = l.acquire("vip", l.now()).unwrap() else { panic!("granted") };
        assert_eq!(l.snapshot("vip", l.now()).unwrap().minute.limit, 1, "the override is back");
        // A read-only look needs no more than these either.
        let view = Limiter::inspect_redis(RedisOptions::new(url.clone(), prefix()), Clock::Monotonic).unwrap();
        assert_eq!(view.snapshot("vip", view.now()), Err(PacingError::NoStoredLimits));
    }
    // Without the Functions commands (an ACL written for Redis 6) the engine is sent as scripts.
    let scripts_only: Vec<&str> = ACL.iter().copied().filter(|c| !["+fcall", "+function|load"].contains(c)).collect();
    let server = RedisServer::builder().tcp().acl_user("pacer", "s3cret", &scripts_only).start();
    let url = server.url_for_user("pacer");
    let l = Limiter::new_redis(Limits::exact(), RedisOptions::new(url, prefix()), Clock::Monotonic).expect("scripts");
    exercise(&l);
    // One command fewer (TIME) and the store refuses: a loud error, not an outage the failure policy hides.
    let fewer: Vec<&str> = ACL.iter().copied().filter(|c| *c != "+time").collect();
    let server = RedisServer::builder().tcp().acl_user("pacer", "s3cret", &fewer).start();
    let url = server.url_for_user("pacer");
    let l = Limiter::new_redis(Limits::exact(), RedisOptions::new(url, prefix()), Clock::Monotonic).unwrap();
    let refused = l.acquire("tenant", l.now());
    assert!(
        matches!(&refused, Err(PacingError::StoreForbidden(why)) if why.contains("NOPERM") || why.contains("can't run this command")),
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
    // Days later the next call finds every window empty and deletes the tenant's state instead of keeping it: its
    // rings and its header in the state hash.
    l.set_now(3 * 86_400_000).unwrap();
    let quiet = Feedback {
        status: 200,
        category: Category::Success,
        rate_limit_problem: None,
        recommended_wait_ms: None,
        minute_remaining: None,
        day_remaining: None,
        app_minute_remaining: None,
    };
    for t in hostile {
        l.observe(t, &quiet, l.now()).unwrap();
    }
    let rings: Vec<String> = server.keys(&pattern).into_iter().filter(|k| k.contains(":t:")).collect();
    assert!(rings.is_empty(), "emptied logs are deleted: {rings:?}");
    let state = format!("xg:{{{p}}}:2:s");
    let headers: Vec<String> = server
        .cli(&["HKEYS", &state])
        .lines()
        .filter(|f| ["h:", "c:", "e:"].iter().any(|kind| f.starts_with(kind)))
        .map(str::to_owned)
        .collect();
    assert!(headers.is_empty(), "emptied tenants are forgotten: {headers:?}");
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
    let Decision::Granted(p) = l.acquire("tenant", 0).unwrap() else { panic!("granted") };
    l.release(p, 0).unwrap();
    assert_eq!(server.cli(&["HSET", &key, "lim", &format!("2,{rest},7")]).trim(), "0");
    // Written behind the library's back (not by replace_limits), the limits are read again within a second.
    l.set_now(1_000).unwrap();
    let Decision::Granted(p) = l.acquire("tenant", 1_000).unwrap() else { panic!("granted") };
    l.release(p, 1_000).unwrap();
    let Decision::Refused(r) = l.acquire("tenant", 1_000).unwrap() else { panic!("the stored minute limit applies") };
    assert_eq!(r.reason, xeroguard::Reason::Minute);
}

#[test]
fn replaced_limits_and_tenant_limits_apply_at_every_process_next_call() {
    let server = RedisServer::start();
    let p = prefix();
    let first = Limiter::new_redis(Limits::exact(), RedisOptions::new(server.url(), &p), Clock::Manual).unwrap();
    let Decision::Granted(permit) = first.acquire("tenant", 0).unwrap() else { panic!("granted") };
    first.release(permit, 0).unwrap();
    // Another process replaces the limits: the first one's next call (same instant) decides by them.
    let one_a_minute = Limits { tenant_minute: WindowLimit::new(1, 60_000, 0), ..Limits::exact() };
    let options = RedisOptions { replace_limits: true, ..RedisOptions::new(server.url(), &p) };
    let second = Limiter::new_redis(one_a_minute, options, Clock::Manual).unwrap();
    assert_eq!(second.limits().tenant_minute.limit, 1);
    let Decision::Refused(r) = first.acquire("tenant", 0).unwrap() else { panic!("the replaced limits apply") };
    assert_eq!(r.reason, xeroguard::Reason::Minute);
    // A tenant's own limits set by one process apply to the other's next call.
    second.set_tenant_limits("other", Some(TenantLimits { minute_limit: 5, day_limit: 5, concurrency: 1 })).unwrap();
    let Decision::Granted(_) = first.acquire("other", 0).unwrap() else { panic!("granted") };
    let Decision::Refused(r) = first.acquire("other", 0).unwrap() else { panic!("concurrency 1 applies") };
    assert_eq!(r.reason, xeroguard::Reason::Concurrency);
    second.set_tenant_limits("other", None).unwrap();
    let Decision::Refused(r) = first.acquire("other", 0).unwrap() else { panic!("back to one a minute") };
    assert_eq!(r.reason, xeroguard::Reason::Minute);
}
