//! Limiter operation sequences on the in-process backend, checked against the definition (common/limiter_check.rs).
#![no_main]

#[path = "common/limiter_check.rs"]
mod limiter_check;

use libfuzzer_sys::fuzz_target;
use xeroguard::pacing::{Clock, Limiter};

fuzz_target!(|ops: Vec<limiter_check::Op>| limiter_check::check(
    &|limits| Limiter::new(limits, Clock::Manual).unwrap(),
    ops
));
