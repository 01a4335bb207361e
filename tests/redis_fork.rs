//! A limiter made before `fork()` (gunicorn --preload, Celery prefork) keeps working in the parent and the child,
//! and the two never share a connection (a shared socket would mix their replies). Its own test binary: forking a
//! process that runs other tests' threads would be asking for trouble.

#[path = "support/redis.rs"]
mod redis_support;

use redis_support::RedisServer;
use xeroguard::pacing::{Clock, Decision, Limiter, Limits, RedisOptions};

/// Acquires and releases `n` times; true when every call was granted by the store.
fn calls(l: &Limiter, tenant: &str, n: u32) -> bool {
    (0..n).all(|_| match l.acquire(tenant, 0) {
        Ok(Decision::Granted(p)) if p.fallback.is_none() => l.release(p, 0).is_ok(),
        _ => false,
    })
}

/// The descriptors this process holds open.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn a_limiter_made_before_fork_serves_parent_and_child() {
    let server = RedisServer::start();
    let prefix = format!("fork{}", std::process::id());
    let l = Limiter::new_redis(Limits::exact(), RedisOptions::new(server.url(), prefix), Clock::Manual).unwrap();
    assert!(calls(&l, "tenant", 5), "the parent's pool holds a connection before the fork");
    // SAFETY: the child only uses the limiter (its locks are free: no other thread of this test binary touches
    // it) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The inherited connection is closed, not leaked: the child's first call replaces it with its own.
        let before = open_descriptors();
        let ok = calls(&l, "tenant", 20) && open_descriptors() == before;
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let parent_ok = calls(&l, "tenant", 20);
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(parent_ok, "the parent kept deciding");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child decided on its own connection and closed the inherited one"
    );
    // Nothing was written to the parent's socket by the child (a QUIT would have closed it under the parent).
    assert_eq!(l.stats().store.failures.iter().sum::<u64>(), 0, "the parent's connection kept working");
    // Both processes' calls are in the one shared window.
    assert_eq!(l.snapshot("tenant", 0).unwrap().minute.count, 45);
}
