//! Waiting, in real time, for a shared limiter's store to decide again after a fault (the failure policy answers
//! meanwhile).

use std::time::{Duration, Instant};

use xeroguard::pacing::{Decision, Limiter};

/// How long until the store itself (no failure policy) grants `tenant` a call; panics after `limit`. Nothing may
/// raise meanwhile, releases included.
pub fn until_the_store_grants(l: &Limiter, tenant: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match l.acquire(tenant, l.now()) {
            Ok(Decision::Granted(p)) if p.fallback.is_none() => {
                l.release(p, l.now()).expect("a release after the store answered");
                return start.elapsed();
            }
            Ok(Decision::Granted(p)) => {
                // A fallback's permit: the store may still be out of reach, and the release is queued, not raised.
                l.release(p, l.now()).expect("a release never raises for an outage");
            }
            Ok(Decision::Refused(r)) => assert!(r.fallback.is_some(), "only the failure policy refuses here: {r:?}"),
            Err(e) => assert!(
                matches!(e, xeroguard::pacing::PacingError::StoreUnavailable(_)),
                "only an unavailable store may fail a call: {e}"
            ),
        }
        assert!(start.elapsed() < limit, "the store granted nothing within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
