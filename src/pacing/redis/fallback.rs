//! What the limiter does while the store cannot decide: its [`FailurePolicy`]. `closed` refuses (with the breaker's
//! cooldown as the wait), `open` grants (flagged), `local` lets a share of each limit (limit ÷ workers) decide in
//! process and counts those calls into the store when it answers again. The protocol (`super::protocol`) never
//! decides any of this; the backend asks here when a call failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::conn::StoreFailure;
use super::protocol::failure;
use crate::pacing::Backend;
use crate::pacing::config::{Limits, TenantLimits, WindowLimit};
use crate::pacing::memory::MemoryBackend;
use crate::pacing::types::{Decision, PacingError, Permit, Refusal, Reservation};
use crate::vocab::{FailurePolicy, Reason};

/// The high bit marks a permit or reservation of the local share, so release and cancel find where it lives.
pub(crate) const LOCAL_ID: u64 = 1 << 63;

fn share(limit: u32, workers: u32) -> u32 {
    if limit == 0 { 0 } else { (limit / workers.max(1)).max(1) }
}

pub struct Fallback {
    policy: FailurePolicy,
    workers: u32,
    /// The local share (the `local` policy only).
    local: Option<MemoryBackend>,
    /// Calls the local share let through during an outage, per tenant, counted into the store once it answers.
    granted_locally: Mutex<HashMap<Arc<str>, u32>>,
}

impl Fallback {
    /// The policy over `limits` (the stored ones: the local share divides them).
    pub fn new(policy: FailurePolicy, workers: u32, limits: &Limits) -> Result<Self, PacingError> {
        let local = if policy == FailurePolicy::Local {
            let part = |window: WindowLimit| WindowLimit { limit: share(window.limit, workers), ..window };
            Some(MemoryBackend::new(Limits {
                tenant_minute: part(limits.tenant_minute),
                tenant_day: part(limits.tenant_day),
                tenant_concurrency: share(limits.tenant_concurrency, workers),
                app_minute: part(limits.app_minute),
                ..*limits
            })?)
        } else {
            None
        };
        Ok(Fallback { policy, workers, local, granted_locally: Mutex::new(HashMap::new()) })
    }

    pub fn local(&self) -> Option<&MemoryBackend> {
        self.local.as_ref()
    }

    /// What the policy answers for a decision the store could not make (peek asks too: nothing is counted here).
    /// `cooldown` is how long the breaker keeps the store unasked.
    pub fn decision(
        &self,
        why: StoreFailure,
        cooldown: Duration,
        local: impl FnOnce(&MemoryBackend) -> Result<Decision, PacingError>,
    ) -> Result<Decision, PacingError> {
        if !why.is_outage() {
            return Err(failure(why));
        }
        match self.policy {
            FailurePolicy::Closed => {
                let wait_ms = u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX).max(1);
                Ok(Decision::Refused(Refusal {
                    wait_ms,
                    reason: Reason::StoreUnavailable,
                    fallback: Some(FailurePolicy::Closed),
                }))
            }
            FailurePolicy::Open => Ok(Decision::Granted(Permit { id: 0, fallback: Some(FailurePolicy::Open) })),
            FailurePolicy::Local => {
                let decision = local(self.local.as_ref().expect("built for the local policy"))?;
                Ok(match decision {
                    Decision::Granted(p) => {
                        let id = if p.id == 0 { 0 } else { p.id | LOCAL_ID };
                        Decision::Granted(Permit { id, fallback: Some(FailurePolicy::Local) })
                    }
                    Decision::Refused(r) => Decision::Refused(Refusal { fallback: Some(FailurePolicy::Local), ..r }),
                })
            }
        }
    }

    /// For operations that only inform the store: under `closed` they fail, under `open` they are dropped, under
    /// `local` the local share takes them.
    pub fn effect(
        &self,
        why: StoreFailure,
        local: impl FnOnce(&MemoryBackend) -> Result<(), PacingError>,
    ) -> Result<(), PacingError> {
        if !why.is_outage() {
            return Err(failure(why));
        }
        match self.policy {
            FailurePolicy::Closed => Err(failure(why)),
            FailurePolicy::Open => Ok(()),
            FailurePolicy::Local => local(self.local.as_ref().expect("built for the local policy")),
        }
    }

    /// A booking while the store is unavailable: only the local share makes one (counted like a granted call).
    pub fn reserve(&self, why: StoreFailure, tenant: &str, now: u64) -> Result<Reservation, PacingError> {
        match (self.policy, why) {
            (FailurePolicy::Local, why) if why.is_outage() => {
                let r = self.local.as_ref().expect("built for the local policy").reserve(tenant, now)?;
                self.count_local_call(tenant);
                Ok(Reservation { id: r.id | LOCAL_ID, ..r })
            }
            (_, why) => Err(failure(why)),
        }
    }

    /// Remembers a call the local share let through, to count it into the store when it answers again.
    pub fn count_local_call(&self, tenant: &str) {
        *self.granted_locally.lock().entry(tenant.into()).or_default() += 1;
    }

    /// The calls granted locally since the last recovery, to count into the store now.
    pub fn take_local_calls(&self) -> HashMap<Arc<str>, u32> {
        std::mem::take(&mut *self.granted_locally.lock())
    }

    /// Keeps calls that could not be counted into the store for the next recovery.
    pub fn keep_local_calls(&self, tenant: Arc<str>, count: u32) {
        *self.granted_locally.lock().entry(tenant).or_default() += count;
    }

    /// A tenant's own limits for the local share (its part of them).
    pub fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError> {
        let Some(local) = &self.local else { return Ok(()) };
        let w = self.workers;
        let shared = limits.map(|l| TenantLimits {
            minute_limit: share(l.minute_limit, w),
            day_limit: share(l.day_limit, w),
            concurrency: share(l.concurrency, w),
        });
        local.set_tenant_limits(tenant, shared)
    }
}
