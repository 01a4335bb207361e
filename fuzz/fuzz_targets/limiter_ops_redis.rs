//! Limiter operation sequences on the Redis backend (the Lua engine), checked against the definition
//! (common/limiter_check.rs): each input on a fresh key prefix of the redis-server at XEROGUARD_FUZZ_REDIS, which
//! scripts/fuzz.sh starts for this target (and stops).
#![no_main]

#[path = "common/limiter_check.rs"]
mod limiter_check;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use xeroguard::pacing::{Clock, Limiter, RedisOptions};

static URL: LazyLock<String> = LazyLock::new(|| {
    std::env::var("XEROGUARD_FUZZ_REDIS")
        .expect("XEROGUARD_FUZZ_REDIS: the URL of a redis-server for this target (scripts/fuzz.sh starts one)")
});

fuzz_target!(|ops: Vec<limiter_check::Op>| {
    static INPUTS: AtomicU64 = AtomicU64::new(0);
    let prefix = format!("fuzz{}-{}", std::process::id(), INPUTS.fetch_add(1, Ordering::Relaxed));
    limiter_check::check(
        &|limits| {
            Limiter::new_redis(limits, RedisOptions::new(URL.as_str(), prefix.as_str()), Clock::Manual)
                .expect("the fuzzing redis-server answers")
        },
        ops,
    )
});
