//! The soak suite (tests/suites/soak.rs) on the in-process backend.

#[path = "suites/soak.rs"]
mod soak;

use std::time::Duration;

use xeroguard::pacing::{Clock, Limiter};

#[test]
fn soak_in_process_limiter() {
    soak::run(&|limits| Limiter::new(limits, Clock::Manual).unwrap(), soak::seconds(), 3, Duration::ZERO);
}

#[test]
fn the_log_check_catches_a_window_overrun() {
    soak::log_check_catches_an_overrun();
}
