//! The model suite (tests/suites/model.rs) on the in-process backend.

#[path = "suites/model.rs"]
mod model;

use proptest::prelude::*;
use xeroguard::pacing::{Clock, Limiter};

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn in_process_limiter_matches_the_reference_model(ops in proptest::collection::vec(model::op(), 1..80)) {
        model::check(&|limits| Limiter::new(limits, Clock::Manual).unwrap(), &ops)?;
    }
}
