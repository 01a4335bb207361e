//! The model suite, for any backend: random operation sequences on a manual clock, checked step by step against a
//! brute-force reference model of the rolling windows and concurrency. Every grant keeps every window within its
//! limit; every refusal's wait is the exact earliest instant the model allows; reservations take the model's
//! earliest slot (so they are FIFO) and cancelling frees it. A test file runs `check` with its way to make a
//! limiter (`tests/pacing_props.rs`: in-process).

use std::collections::HashMap;

use proptest::prelude::*;
use xeroguard::pacing::{Decision, Limiter, Limits, PacingError, Permit, WindowLimit};

const TENANTS: [&str; 3] = ["a", "b", ""]; // "" is tenantless: only the app window applies
const BOUND: u64 = 5_000;

pub fn limits() -> Limits {
    Limits {
        tenant_minute: WindowLimit::new(3, 40, 10),
        tenant_day: WindowLimit::new(6, 300, 0),
        tenant_concurrency: 2,
        app_minute: WindowLimit::new(5, 50, 0),
        permit_timeout_ms: 120,
        max_tenants: 0,
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    Acquire(usize),
    Peek(usize),
    Record(usize),
    Reserve(usize),
    Release(usize),
    Cancel(usize),
    Advance(u64),
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize).prop_map(Op::Acquire),
        1 => (0..3usize).prop_map(Op::Peek),
        1 => (0..3usize).prop_map(Op::Record),
        2 => (0..3usize).prop_map(Op::Reserve),
        2 => (0..8usize).prop_map(Op::Release),
        1 => (0..8usize).prop_map(Op::Cancel),
        3 => (0..70u64).prop_map(Op::Advance),
    ]
}

/// The reference: every call ever counted, every permit ever granted, and the definitions, by brute force.
#[derive(Default)]
struct Model {
    calls: HashMap<usize, Vec<u64>>,
    app: Vec<u64>,
    permits: Vec<(Permit, usize, u64)>,
    reservations: Vec<(u64, usize, u64)>,
}

/// Whether one more call at `t` keeps every window of `span` that contains `t` within `limit`.
fn window_fits(calls: &[u64], t: u64, limit: u32, span: u64) -> bool {
    if limit == 0 {
        return true;
    }
    let ends = std::iter::once(t).chain(calls.iter().copied().filter(|&e| e >= t && e < t + span));
    ends.into_iter().all(|s| calls.iter().filter(|&&e| e <= s && e + span > s).count() < limit as usize)
}

impl Model {
    fn fits(&self, tenant: usize, t: u64, with_concurrency: bool) -> bool {
        let l = limits();
        let empty = Vec::new();
        let calls = self.calls.get(&tenant).unwrap_or(&empty);
        let tenantless = TENANTS[tenant].is_empty();
        let tenant_ok = tenantless
            || (window_fits(calls, t, l.tenant_minute.limit, l.tenant_minute.window_ms + l.tenant_minute.margin_ms)
                && window_fits(calls, t, l.tenant_day.limit, l.tenant_day.window_ms + l.tenant_day.margin_ms));
        let in_flight = self.permits.iter().filter(|&&(_, who, expires)| who == tenant && expires > t).count();
        let concurrency_ok = !with_concurrency || tenantless || in_flight < l.tenant_concurrency as usize;
        tenant_ok && concurrency_ok && window_fits(&self.app, t, l.app_minute.limit, l.app_minute.window_ms)
    }

    fn earliest(&self, tenant: usize, now: u64, with_concurrency: bool) -> u64 {
        (now..now + BOUND).find(|&t| self.fits(tenant, t, with_concurrency)).expect("something fits within the bound")
    }

    fn count(&mut self, tenant: usize, t: u64) {
        if !TENANTS[tenant].is_empty() {
            self.calls.entry(tenant).or_default().push(t);
        }
        self.app.push(t);
    }

    fn uncount(&mut self, tenant: usize, t: u64) {
        if let Some(calls) = self.calls.get_mut(&tenant) {
            let at = calls.iter().position(|&e| e == t).expect("the reserved call");
            calls.remove(at);
        }
        let at = self.app.iter().position(|&e| e == t).expect("the reserved call");
        self.app.remove(at);
    }
}

/// Runs `ops` on a fresh limiter from `make` (given [`limits`] and a manual clock) beside the model.
pub fn check(make: &dyn Fn(Limits) -> Limiter, ops: &[Op]) -> Result<(), TestCaseError> {
    let limiter = make(limits());
    let mut model = Model::default();
    let mut now = 0u64;
    let mut last_reservation: HashMap<usize, u64> = HashMap::new();
    for op in ops.iter().cloned() {
        match op {
            Op::Advance(ms) => now += ms,
            Op::Acquire(t) => {
                let want = model.earliest(t, now, true);
                match limiter.acquire(TENANTS[t], now).unwrap() {
                    Decision::Granted(permit) => {
                        prop_assert_eq!(want, now, "granted at {} but the model refuses", now);
                        model.count(t, now);
                        if permit.id != 0 {
                            model.permits.push((permit, t, now + limits().permit_timeout_ms));
                        }
                    }
                    Decision::Refused(r) => {
                        prop_assert_eq!(now + r.wait_ms, want, "refusal wait is not exact ({:?})", r.reason);
                    }
                }
            }
            Op::Peek(t) => {
                let wait = limiter.peek(TENANTS[t], now).unwrap().map_or(0, |r| r.wait_ms);
                prop_assert_eq!(now + wait, model.earliest(t, now, true));
            }
            Op::Record(t) => {
                limiter.record(TENANTS[t], now).unwrap();
                model.count(t, now);
            }
            Op::Reserve(t) => {
                let r = limiter.reserve(TENANTS[t], now).unwrap();
                prop_assert_eq!(r.at_ms, model.earliest(t, now, false), "reservation slot");
                if let Some(&previous) = last_reservation.get(&t) {
                    prop_assert!(r.at_ms >= previous, "FIFO: {} after {}", r.at_ms, previous);
                }
                last_reservation.insert(t, r.at_ms);
                model.count(t, r.at_ms);
                model.reservations.push((r.id, t, r.at_ms));
            }
            Op::Cancel(k) => {
                if model.reservations.is_empty() {
                    continue;
                }
                let (id, t, at) = model.reservations.remove(k % model.reservations.len());
                if at > now {
                    prop_assert_eq!(limiter.cancel(id, now), Ok(()));
                    model.uncount(t, at);
                    // The freed slot (in the shared app window too) may go to a later reservation of any
                    // tenant: FIFO holds between cancellations.
                    last_reservation.clear();
                } else {
                    prop_assert_eq!(limiter.cancel(id, now), Err(PacingError::UnknownReservation));
                }
            }
            Op::Release(k) => {
                if model.permits.is_empty() {
                    continue;
                }
                let (permit, _, expires) = model.permits.remove(k % model.permits.len());
                let want = if expires > now { Ok(()) } else { Err(PacingError::UnknownPermit) };
                prop_assert_eq!(limiter.release(permit, now), want);
            }
        }
    }
    Ok(())
}
