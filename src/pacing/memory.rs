//! The in-process backend. Tenants live in shards (one lock each) so independent tenants do not contend; the app
//! window has its own lock, always taken after a shard lock, so it stays exact. Each lock keeps a time floor (see
//! [`later`]); idle tenants are swept on the call path (no background thread).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};

use super::Backend;
use super::clock::later;
use super::config::{Limits, TenantLimits};
use super::engine::{AppState, Scope, TenantState, scope_limits, unbook};
use super::types::{Decision, Feedback, PacingError, Permit, Reservation, Snapshot, check_tenant};

const SHARD_BITS: u32 = 5;
const SHARDS: usize = 1 << SHARD_BITS;
/// How often (in limiter time) a shard looks for idle tenants to evict, on the call path. A tenant turns idle only
/// when its day window empties, so a minute is prompt enough and keeps the sweep's cost per call tiny.
const SWEEP_INTERVAL_MS: u64 = 60_000;

/// Maps keyed by tenant ids the app itself supplies: a fast seeded hash, no need for SipHash's DoS resistance.
type FastMap<K, V> = HashMap<K, V, RandomState>;

#[derive(Debug, Default)]
struct Tenant {
    /// The tenant id, shared with the map key and the permit table (no allocation per permit).
    name: Arc<str>,
    state: TenantState,
}

#[derive(Default)]
struct Shard {
    tenants: FastMap<Arc<str>, Tenant>,
    overrides: FastMap<Box<str>, TenantLimits>,
    /// permit id → (tenant, expiry)
    permits: FastMap<u64, (Arc<str>, u64)>,
    /// reservation id → (tenant, booked instant)
    reservations: FastMap<u64, (Arc<str>, u64)>,
    next_sweep: u64,
    /// The latest instant any operation on this shard used.
    floor: u64,
}

#[derive(Default)]
struct App {
    state: AppState,
    /// The latest instant any operation on the app window used.
    floor: u64,
}

/// A tenant's shard and the app window, locked, for one operation at `now`.
struct Entered<'l> {
    index: usize,
    now: u64,
    tenant_limits: TenantLimits,
    shard: MutexGuard<'l, Shard>,
    app: MutexGuard<'l, App>,
}

pub struct MemoryBackend {
    limits: Limits,
    shards: Box<[Mutex<Shard>]>,
    app: Mutex<App>,
    tenants: AtomicUsize,
    next_id: AtomicU64,
    hasher: RandomState,
}

impl MemoryBackend {
    pub fn new(limits: Limits) -> Result<Self, PacingError> {
        limits.validate().map_err(PacingError::InvalidLimits)?;
        Ok(MemoryBackend {
            limits,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            app: Mutex::new(App::default()),
            tenants: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            hasher: RandomState::default(),
        })
    }

    fn shard_index(&self, tenant: &str) -> usize {
        (self.hasher.hash_one(tenant) as usize) & (SHARDS - 1)
    }

    /// Ids carry their shard in the low bits, so release and cancel find it without a lookup.
    fn new_id(&self, shard: usize) -> u64 {
        (self.next_id.fetch_add(1, Ordering::Relaxed) << SHARD_BITS) | shard as u64
    }

    fn shard_of_id(id: u64) -> usize {
        (id as usize) & (SHARDS - 1)
    }

    /// Locks shard `index` and moves its time to `now`.
    fn lock_index(&self, index: usize, now: u64) -> (MutexGuard<'_, Shard>, u64) {
        let mut shard = self.shards[index].lock();
        let now = later(&mut shard.floor, now);
        (shard, now)
    }

    /// Locks the tenant's shard at `now`, sweeping its idle tenants when due.
    fn lock_shard(&self, tenant: &str, now: u64) -> (usize, MutexGuard<'_, Shard>, u64) {
        let index = self.shard_index(tenant);
        let (mut shard, now) = self.lock_index(index, now);
        if now >= shard.next_sweep {
            self.sweep(&mut shard, now);
        }
        (index, shard, now)
    }

    /// Then locks the app window (always after a shard) and returns the instant the operation decides at: the
    /// latest of both locks' floors, which the shard keeps too. The app window is pruned to it.
    fn lock_app<'a>(&'a self, shard: &mut Shard, now: u64) -> (MutexGuard<'a, App>, u64) {
        let mut app = self.app.lock();
        let now = later(&mut app.floor, now);
        shard.floor = now;
        app.state.refresh(now, &self.limits);
        (app, now)
    }

    fn sweep(&self, shard: &mut Shard, now: u64) {
        later(&mut shard.floor, now); // also when sweeping another thread's shard at the tenant cap
        shard.permits.retain(|_, (_, expires)| *expires > now);
        shard.reservations.retain(|_, (_, at)| *at > now);
        let before = shard.tenants.len();
        shard.tenants.retain(|_, tenant| {
            tenant.state.refresh(now, &self.limits);
            !tenant.state.is_idle()
        });
        self.tenants.fetch_sub(before - shard.tenants.len(), Ordering::AcqRel);
        // Idle tenants should cost no memory: give back table space once most of it is empty.
        if shard.tenants.is_empty() || shard.tenants.capacity() > 4 * shard.tenants.len() + 16 {
            shard.tenants.shrink_to_fit();
        }
        shard.next_sweep = now.saturating_add(SWEEP_INTERVAL_MS);
    }

    /// Makes sure the tenant has state (within `max_tenants`), refreshed to `now`.
    fn admit_tenant(&self, shard: &mut Shard, tenant: &str, now: u64) -> Result<(), PacingError> {
        if !shard.tenants.contains_key(tenant) {
            let cap = self.limits.max_tenants as usize;
            if cap > 0 && self.tenants.load(Ordering::Acquire) >= cap {
                self.sweep(shard, now);
                // Other shards too, without waiting: this thread holds a shard lock, so blocking could deadlock.
                for other in self.shards.iter() {
                    if let Some(mut other) = other.try_lock() {
                        self.sweep(&mut other, now);
                    }
                }
                if self.tenants.load(Ordering::Acquire) >= cap {
                    return Err(PacingError::TooManyTenants);
                }
            }
            self.tenants.fetch_add(1, Ordering::AcqRel);
            let name: Arc<str> = tenant.into();
            shard.tenants.insert(Arc::clone(&name), Tenant { name, state: TenantState::default() });
        }
        shard.tenants.get_mut(tenant).expect("inserted above").state.refresh(now, &self.limits);
        Ok(())
    }

    /// Locks the tenant's shard and the app window, with the tenant's state created and every window pruned.
    fn enter(&self, tenant: &str, now: u64) -> Result<Entered<'_>, PacingError> {
        check_tenant(tenant)?;
        let (index, mut shard, now) = self.lock_shard(tenant, now);
        let tenant_limits = scope_limits(tenant, shard.overrides.get(tenant).copied(), &self.limits);
        self.admit_tenant(&mut shard, tenant, now)?;
        // The tenant's windows were pruned to the shard's instant; deciding at a later one is safe.
        let (app, now) = self.lock_app(&mut shard, now);
        Ok(Entered { index, now, tenant_limits, shard, app })
    }

    /// Runs `read` on the tenant's state (an empty one if unknown: reading creates nothing) and the app window.
    fn view<R>(&self, tenant: &str, now: u64, read: impl FnOnce(Scope<'_>, u64) -> R) -> Result<R, PacingError> {
        check_tenant(tenant)?;
        let (_, mut shard, now) = self.lock_shard(tenant, now);
        let (mut app, now) = self.lock_app(&mut shard, now);
        let tenant_limits = scope_limits(tenant, shard.overrides.get(tenant).copied(), &self.limits);
        let mut scratch = TenantState::default();
        let state = match shard.tenants.get_mut(tenant) {
            Some(t) => {
                t.state.refresh(now, &self.limits);
                &mut t.state
            }
            None => &mut scratch,
        };
        let scope = Scope { limits: &self.limits, tenant_limits, tenant: state, app: &mut app.state, now };
        Ok(read(scope, self.tenants.load(Ordering::Acquire) as u64))
    }
}

impl Entered<'_> {
    /// The operation's scope and the tenant's shared name.
    fn scope<'s>(&'s mut self, tenant: &str, limits: &'s Limits) -> (Scope<'s>, &'s Arc<str>) {
        let t = self.shard.tenants.get_mut(tenant).expect("created by enter");
        let scope = Scope {
            limits,
            tenant_limits: self.tenant_limits,
            tenant: &mut t.state,
            app: &mut self.app.state,
            now: self.now,
        };
        (scope, &t.name)
    }
}

impl Backend for MemoryBackend {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn sees_every_release(&self) -> bool {
        true
    }

    fn acquire(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        let mut e = self.enter(tenant, now)?;
        let index = e.index;
        let (mut scope, name) = e.scope(tenant, &self.limits);
        let decision = scope.acquire(tenant.is_empty(), || self.new_id(index));
        if let Decision::Granted(permit) = decision
            && permit.id != 0
        {
            let entry = (Arc::clone(name), scope.permit_expiry());
            e.shard.permits.insert(permit.id, entry);
        }
        Ok(decision)
    }

    fn peek(&self, tenant: &str, now: u64) -> Result<Decision, PacingError> {
        let refusal = self.view(tenant, now, |scope, _| scope.peek())?;
        Ok(refusal.map_or(Decision::Granted(Permit::new(0)), Decision::Refused))
    }

    fn record(&self, tenant: &str, now: u64) -> Result<(), PacingError> {
        let mut e = self.enter(tenant, now)?;
        let now = e.now;
        e.scope(tenant, &self.limits).0.record_call(now);
        Ok(())
    }

    fn release(&self, permit: Permit, now: u64) -> Result<(), PacingError> {
        if permit.id == 0 {
            return Ok(());
        }
        let (mut shard, now) = self.lock_index(Self::shard_of_id(permit.id), now);
        let (tenant, expires) = shard.permits.remove(&permit.id).ok_or(PacingError::UnknownPermit)?;
        let held = shard.tenants.get_mut(&tenant).is_some_and(|t| t.state.release(permit.id));
        if !held || expires <= now {
            return Err(PacingError::UnknownPermit);
        }
        Ok(())
    }

    fn reserve(&self, tenant: &str, now: u64) -> Result<Reservation, PacingError> {
        let mut e = self.enter(tenant, now)?;
        let (index, now) = (e.index, e.now);
        let (mut scope, name) = e.scope(tenant, &self.limits);
        let at = scope.reserve()?;
        let name = Arc::clone(name);
        let id = self.new_id(index);
        e.shard.reservations.insert(id, (name, at));
        Ok(Reservation { id, at_ms: at, wait_ms: at - now })
    }

    fn cancel(&self, reservation_id: u64, now: u64) -> Result<(), PacingError> {
        let (mut guard, now) = self.lock_index(Self::shard_of_id(reservation_id), now);
        let shard = &mut *guard;
        let (mut app, now) = self.lock_app(shard, now);
        let (tenant, at) = shard.reservations.remove(&reservation_id).ok_or(PacingError::UnknownReservation)?;
        if at <= now {
            return Err(PacingError::UnknownReservation);
        }
        unbook(shard.tenants.get_mut(&tenant).map(|t| &mut t.state), &mut app.state, at);
        Ok(())
    }

    fn observe(&self, tenant: &str, feedback: &Feedback, now: u64) -> Result<(), PacingError> {
        let mut e = self.enter(tenant, now)?;
        e.scope(tenant, &self.limits).0.observe(feedback);
        Ok(())
    }

    fn snapshot(&self, tenant: &str, now: u64) -> Result<Snapshot, PacingError> {
        self.view(tenant, now, |scope, tracked| scope.snapshot(tenant, tracked))
    }

    fn set_tenant_limits(&self, tenant: &str, limits: Option<TenantLimits>) -> Result<(), PacingError> {
        check_tenant(tenant)?;
        let mut shard = self.shards[self.shard_index(tenant)].lock();
        match limits {
            Some(limits) => shard.overrides.insert(tenant.into(), limits),
            None => shard.overrides.remove(tenant),
        };
        Ok(())
    }

    fn tenant_heap_bytes(&self, tenant: &str) -> usize {
        let shard = self.shards[self.shard_index(tenant)].lock();
        shard.tenants.get(tenant).map_or(0, |t| t.state.heap_bytes() + t.name.len())
    }
}
