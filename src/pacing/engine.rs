//! The pacing engine: pure decisions over one tenant's state and the app's, at an explicit `now`. No locks, clock
//! reads or I/O: a backend stores the state, makes each operation atomic and calls these. What it means to admit,
//! refuse, book, release and take the server's feedback is decided here and only here (xero-reference §7).

use super::bounds::PHANTOMS_AT_NOW_UP_TO_MS;
use super::config::{Limits, TenantLimits, WindowLimit};
use super::types::{
    Decision, Feedback, MAX_APP_BOOKINGS, MAX_BOOKING_AHEAD_MS, MAX_BOOKINGS, PacingError, Permit, Refusal, Snapshot,
    WindowSnapshot,
};
use super::window::Window;
use crate::vocab::{Category, RateLimitProblem, Reason};

/// A scope (a tenant, or the whole app) blocked until an instant, from the server's feedback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub until: u64,
    pub reason: Reason,
}

/// Keeps the later of two blocks.
pub(crate) fn extend_block(slot: &mut Option<Block>, until: u64, reason: Reason) {
    if slot.is_none_or(|b| until > b.until) {
        *slot = Some(Block { until, reason });
    }
}

/// One tenant's windows, calls in flight and block.
#[derive(Debug, Default)]
pub(crate) struct TenantState {
    pub minute: Window,
    pub day: Window,
    /// (permit id, expiry) of calls in flight.
    pub in_flight: Vec<(u64, u64)>,
    pub block: Option<Block>,
}

impl TenantState {
    /// Forgets what can no longer affect a decision at `now` or later.
    pub fn refresh(&mut self, now: u64, limits: &Limits) {
        self.minute.prune(now, limits.tenant_minute.span());
        self.day.prune(now, limits.tenant_day.span());
        self.in_flight.retain(|&(_, expires)| expires > now);
        self.block = self.block.filter(|b| b.until > now);
    }

    /// Idle after `refresh`: nothing it holds can affect a decision any more.
    pub fn is_idle(&self) -> bool {
        self.minute.is_empty() && self.day.is_empty() && self.in_flight.is_empty() && self.block.is_none()
    }

    /// Gives back a permit; false when this tenant does not hold it.
    pub fn release(&mut self, permit_id: u64) -> bool {
        let Some(at) = self.in_flight.iter().position(|&(id, _)| id == permit_id) else { return false };
        self.in_flight.swap_remove(at);
        true
    }

    pub fn heap_bytes(&self) -> usize {
        self.minute.heap_bytes() + self.day.heap_bytes() + self.in_flight.capacity() * size_of::<(u64, u64)>()
    }
}

/// The app-wide window and block.
#[derive(Debug, Default)]
pub(crate) struct AppState {
    pub minute: Window,
    pub block: Option<Block>,
}

impl AppState {
    pub fn refresh(&mut self, now: u64, limits: &Limits) {
        self.minute.prune(now, limits.app_minute.span());
        self.block = self.block.filter(|b| b.until > now);
    }
}

/// The limits that apply to a scope: a tenant's own (an override) or the app's defaults; the tenantless scope (the
/// empty id) is limited only by the app window.
pub(crate) fn scope_limits(tenant: &str, tenant_override: Option<TenantLimits>, limits: &Limits) -> TenantLimits {
    if tenant.is_empty() {
        return TenantLimits { minute_limit: 0, day_limit: 0, concurrency: 0 };
    }
    tenant_override.unwrap_or_else(|| limits.tenant())
}

/// One operation's view: the limits, the tenant's limits, its state and the app's, at `now`.
pub(crate) struct Scope<'a> {
    pub limits: &'a Limits,
    pub tenant_limits: TenantLimits,
    pub tenant: &'a mut TenantState,
    pub app: &'a mut AppState,
    pub now: u64,
}

/// The earliest instant ≥ `now` at which every constraint holds, and the constraint that set it.
pub(crate) fn earliest(
    limits: &Limits,
    tenant_limits: &TenantLimits,
    tenant: &TenantState,
    app: &AppState,
    now: u64,
    with_concurrency: bool,
) -> (u64, Option<Reason>) {
    let (minute, day, app_minute) = (limits.tenant_minute, limits.tenant_day, limits.app_minute);
    let fit = |w: &Window, limit: u32, spec: WindowLimit, t: u64| w.earliest(t, limit as usize, spec.span());
    let block_end = |b: Option<Block>, t: u64| b.filter(|b| b.until > t).map_or(t, |b| b.until);
    let mut t = now;
    let mut reason = None;
    loop {
        // In priority order: on a tie the first named is the reason reported.
        let constraints = [
            (block_end(app.block, t), app.block.map(|b| b.reason)),
            (block_end(tenant.block, t), tenant.block.map(|b| b.reason)),
            (fit(&tenant.day, tenant_limits.day_limit, day, t), Some(Reason::Day)),
            (fit(&app.minute, app_minute.limit, app_minute, t), Some(Reason::AppMinute)),
            (fit(&tenant.minute, tenant_limits.minute_limit, minute, t), Some(Reason::Minute)),
            (
                if with_concurrency { concurrency_free_at(&tenant.in_flight, tenant_limits.concurrency, t) } else { t },
                Some(Reason::Concurrency),
            ),
        ];
        let mut next = t;
        let mut why = None;
        for (at, r) in constraints {
            if at > next {
                next = at;
                why = r;
            }
        }
        if next == t {
            return (t, reason);
        }
        t = next;
        reason = why;
    }
}

/// When the tenant's in-flight count drops below `limit` by expiry alone (0 means unlimited).
fn concurrency_free_at(in_flight: &[(u64, u64)], limit: u32, t: u64) -> u64 {
    let limit = limit as usize;
    if limit == 0 {
        return t;
    }
    let mut active: Vec<u64> = in_flight.iter().map(|&(_, expires)| expires).filter(|&e| e > t).collect();
    if active.len() < limit {
        return t;
    }
    active.sort_unstable();
    active[active.len() - limit]
}

impl Scope<'_> {
    fn earliest(&self, with_concurrency: bool) -> (u64, Option<Reason>) {
        earliest(self.limits, &self.tenant_limits, self.tenant, self.app, self.now, with_concurrency)
    }

    /// What `acquire` would answer, changing nothing: `None` when it would be granted.
    pub fn peek(&self) -> Option<Refusal> {
        let (at, reason) = self.earliest(true);
        reason.filter(|_| at > self.now).map(|reason| Refusal::new(at - self.now, reason))
    }

    /// Counts a call at `at` in every window it belongs to (it counts even over a limit: it happened, or is booked).
    pub fn record_call(&mut self, at: u64) {
        let now = self.now;
        self.tenant.minute.insert(at, self.tenant_limits.minute_limit as usize, now);
        self.tenant.day.insert(at, self.tenant_limits.day_limit as usize, now);
        self.app.minute.insert(at, self.limits.app_minute.cap(), now);
    }

    /// Admits a call now, holding permit `permit_id` until it expires (tenantless calls hold none and get permit
    /// 0), or refuses it. A refusal changes nothing.
    pub fn acquire(&mut self, tenantless: bool, permit_id: impl FnOnce() -> u64) -> Decision {
        let (at, reason) = self.earliest(true);
        if at > self.now {
            let reason = reason.expect("a later instant always has a reason");
            return Decision::Refused(Refusal::new(at - self.now, reason));
        }
        self.record_call(self.now);
        if tenantless {
            return Decision::Granted(Permit::new(0));
        }
        let id = permit_id();
        self.tenant.in_flight.push((id, self.permit_expiry()));
        Decision::Granted(Permit::new(id))
    }

    /// When a permit granted now expires.
    pub fn permit_expiry(&self) -> u64 {
        self.now.saturating_add(self.limits.permit_timeout_ms)
    }

    /// Books the next free slot (after those already booked) and counts the call there; returns the instant.
    /// Concurrency is not reserved.
    pub fn reserve(&mut self) -> Result<u64, PacingError> {
        self.check_bookings()?;
        let (at, _) = self.earliest(false);
        let wait_ms = at - self.now;
        if wait_ms > MAX_BOOKING_AHEAD_MS {
            return Err(PacingError::BookingTooFar { wait_ms });
        }
        self.record_call(at);
        Ok(at)
    }

    /// Refuses a booking beyond [`MAX_BOOKINGS`] for the tenant (both its windows hold its bookings) or
    /// [`MAX_APP_BOOKINGS`] for the app, with the wait until the first of them comes due.
    fn check_bookings(&self) -> Result<(), PacingError> {
        let now = self.now;
        let full = [
            (&self.tenant.minute, MAX_BOOKINGS),
            (&self.tenant.day, MAX_BOOKINGS),
            (&self.app.minute, MAX_APP_BOOKINGS),
        ];
        for (window, most) in full {
            if window.booked_after(now) >= most as usize {
                let due = window.next_booked(now).expect("a window with bookings has a next one");
                return Err(PacingError::TooManyBookings { wait_ms: due - now });
            }
        }
        Ok(())
    }

    /// Takes the server's word (see [`Effects`]).
    pub fn observe(&mut self, feedback: &Feedback) {
        Effects::of(feedback).apply(self);
    }

    pub fn snapshot(&self, tenant: &str, tenants_tracked: u64) -> Snapshot {
        let now = self.now;
        let (at, reason) = self.earliest(true);
        let window = |w: &Window, limit: u32, spec: WindowLimit| {
            let count = u32::try_from(w.count_at(now, spec.span())).unwrap_or(u32::MAX);
            WindowSnapshot {
                limit,
                window_ms: spec.window_ms,
                count,
                remaining: limit.saturating_sub(count),
                booked: u32::try_from(w.booked_after(now)).unwrap_or(u32::MAX),
            }
        };
        let live = |b: Option<Block>| b.filter(|b| b.until > now);
        let (tenant_state, app, limits) = (&*self.tenant, &*self.app, self.limits);
        Snapshot {
            tenant: tenant.to_owned(),
            now_ms: now,
            minute: window(&tenant_state.minute, self.tenant_limits.minute_limit, limits.tenant_minute),
            day: window(&tenant_state.day, self.tenant_limits.day_limit, limits.tenant_day),
            app_minute: window(&app.minute, limits.app_minute.limit, limits.app_minute),
            in_flight: tenant_state.in_flight.iter().filter(|&&(_, expires)| expires > now).count() as u32,
            concurrency_limit: self.tenant_limits.concurrency,
            blocked_until_ms: live(tenant_state.block).map(|b| b.until),
            block_reason: live(tenant_state.block).map(|b| b.reason),
            app_blocked_until_ms: live(app.block).map(|b| b.until),
            app_block_reason: live(app.block).map(|b| b.reason),
            wait_ms: at - now,
            wait_reason: reason.filter(|_| at > now),
            tenants_tracked,
        }
    }
}

/// Removes a booking at `at` from every window it was counted in (a cancelled reservation).
pub(crate) fn unbook(tenant: Option<&mut TenantState>, app: &mut AppState, at: u64) {
    if let Some(state) = tenant {
        state.minute.remove(at);
        state.day.remove(at);
    }
    app.minute.remove(at);
}

/// What the server's feedback on one call means for pacing, relative to the moment it is applied: which scope to
/// block for how long, and per window how many calls the server says are left, from which the calls it has seen
/// follow (`limit − remaining`, with the scope's limit): they raise local usage, never lower it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub tenant_block: Option<(u64, Reason)>,
    pub app_block: Option<(u64, Reason)>,
    pub minute_remaining: Option<u32>,
    pub day_remaining: Option<u32>,
    pub app_minute_remaining: Option<u32>,
}

impl Effects {
    /// 429s block the scope they name (the app for `app_minute`), an offline organisation blocks its tenant, a 503
    /// outage blocks the app, for the classification's recommended wait; remaining counts apply, except in the
    /// window a 429 names, whose block already covers it (phantoms there would outlast the server's Retry-After).
    pub fn of(feedback: &Feedback) -> Self {
        let wait = feedback.recommended_wait_ms.unwrap_or(0);
        let limited = (feedback.category == Category::RateLimited)
            .then(|| feedback.rate_limit_problem.unwrap_or(RateLimitProblem::Unknown));
        let mut effects = Effects::default();
        match (feedback.category, limited) {
            (_, Some(RateLimitProblem::AppMinute)) => effects.app_block = Some((wait, Reason::RetryAfter)),
            (_, Some(_)) => effects.tenant_block = Some((wait, Reason::RetryAfter)),
            (Category::OrganisationOffline, _) => effects.tenant_block = Some((wait, Reason::OrganisationOffline)),
            (Category::ServiceUnavailable, _) if feedback.status == 503 => {
                effects.app_block = Some((wait, Reason::Outage))
            }
            _ => {}
        }
        let uncovered =
            |problem: RateLimitProblem, remaining: Option<u32>| remaining.filter(|_| limited != Some(problem));
        effects.minute_remaining = uncovered(RateLimitProblem::Minute, feedback.minute_remaining);
        effects.day_remaining = uncovered(RateLimitProblem::Day, feedback.day_remaining);
        effects.app_minute_remaining = uncovered(RateLimitProblem::AppMinute, feedback.app_minute_remaining);
        effects
    }

    pub(crate) fn apply(&self, scope: &mut Scope<'_>) {
        let now = scope.now;
        if let Some((wait, reason)) = self.tenant_block {
            extend_block(&mut scope.tenant.block, now.saturating_add(wait), reason);
        }
        if let Some((wait, reason)) = self.app_block {
            extend_block(&mut scope.app.block, now.saturating_add(wait), reason);
        }
        let limits = scope.limits;
        let (minute, day) = (scope.tenant_limits.minute_limit, scope.tenant_limits.day_limit);
        add_phantoms(&mut scope.tenant.minute, minute, limits.tenant_minute, self.minute_remaining, now);
        add_phantoms(&mut scope.tenant.day, day, limits.tenant_day, self.day_remaining, now);
        add_phantoms(&mut scope.app.minute, limits.app_minute.limit, limits.app_minute, self.app_minute_remaining, now);
    }
}

/// Adds the calls the server saw (`limit − remaining`) and we did not, `n` of them. In a window up to
/// [`PHANTOMS_AT_NOW_UP_TO_MS`] (the minute) at now, the conservative place: they leave last, so the wait is at most
/// the window plus its margin and no 429 follows. In a longer one (the day) spread evenly over the window the header
/// describes (`step` = window ÷ (n + 1) apart, the k-th `window − max(1, k·step)` before now), as the server's own
/// calls may have come: they leave at that pace, and a tenant that used its remaining calls waits window ÷ (n + 1)
/// plus the margin, not the whole day (`X-DayLimit-Remaining: 10` after an empty restart refused it for 24 h).
/// Calls that in fact came later than assumed can make one 429, whose `Retry-After` then blocks the tenant. A
/// disabled window (limit 0) takes none.
fn add_phantoms(window: &mut Window, limit: u32, spec: WindowLimit, remaining: Option<u32>, now: u64) {
    let Some(remaining) = remaining.filter(|_| limit > 0) else { return };
    let seen = limit.saturating_sub(remaining) as u64;
    let here = window.count_at(now, spec.window_ms) as u64;
    let n = seen.saturating_sub(here);
    let step = spec.window_ms / (n + 1);
    for k in 1..=n {
        let before = if spec.window_ms <= PHANTOMS_AT_NOW_UP_TO_MS { 0 } else { spec.window_ms - (k * step).max(1) };
        window.insert(now - before.min(now), limit as usize, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            tenant_minute: WindowLimit::new(3, 1_000, 0),
            tenant_day: WindowLimit::new(5, 10_000, 0),
            tenant_concurrency: 2,
            app_minute: WindowLimit::new(4, 1_000, 0),
            permit_timeout_ms: 500,
            max_tenants: 0,
        }
    }

    struct World {
        limits: Limits,
        tenant: TenantState,
        app: AppState,
        next_id: u64,
    }

    impl World {
        fn new() -> Self {
            World { limits: limits(), tenant: TenantState::default(), app: AppState::default(), next_id: 1 }
        }

        fn at(&mut self, now: u64) -> Scope<'_> {
            self.tenant.refresh(now, &self.limits);
            self.app.refresh(now, &self.limits);
            let tenant_limits = scope_limits("t", None, &self.limits);
            Scope { limits: &self.limits, tenant_limits, tenant: &mut self.tenant, app: &mut self.app, now }
        }

        fn acquire(&mut self, now: u64) -> Decision {
            let id = self.next_id;
            self.next_id += 1;
            self.at(now).acquire(false, || id)
        }
    }

    fn refused(d: Decision) -> Refusal {
        match d {
            Decision::Refused(r) => r,
            Decision::Granted(p) => panic!("granted {p:?}"),
        }
    }

    #[test]
    fn concurrency_then_minute_then_day_with_exact_waits() {
        let mut w = World::new();
        assert!(matches!(w.acquire(0), Decision::Granted(Permit { id: 1, .. })));
        assert!(matches!(w.acquire(10), Decision::Granted(_)));
        // Two in flight: the third waits for the first permit's expiry (granted at 0, 500 ms timeout).
        assert_eq!(refused(w.acquire(20)), Refusal::new(480, Reason::Concurrency));
        assert!(w.tenant.release(1));
        assert!(!w.tenant.release(1), "released twice");
        assert!(matches!(w.acquire(20), Decision::Granted(_)));
        // Three in the minute: the fourth waits until the first leaves (0 + 1000).
        w.tenant.in_flight.clear();
        assert_eq!(refused(w.acquire(30)), Refusal::new(970, Reason::Minute));
        assert!(matches!(w.acquire(1_000), Decision::Granted(_)));
        w.tenant.in_flight.clear();
        assert!(matches!(w.acquire(2_000), Decision::Granted(_)));
        w.tenant.in_flight.clear();
        // Five in the day: the day window (the first call at 0 leaves at 10,000) outranks everything.
        assert_eq!(refused(w.acquire(2_001)), Refusal::new(7_999, Reason::Day));
        assert_eq!(w.at(2_001).peek(), Some(Refusal::new(7_999, Reason::Day)));
    }

    #[test]
    fn a_refusal_changes_nothing() {
        let mut w = World::new();
        for t in 0..3 {
            w.acquire(t);
            w.tenant.in_flight.clear();
        }
        let before = w.at(5).snapshot("t", 1);
        refused(w.acquire(5));
        assert_eq!(w.at(5).snapshot("t", 1), before);
    }

    #[test]
    fn reservations_book_in_order_and_unbook() {
        let mut w = World::new();
        let booked: Vec<u64> = (0..5).map(|_| w.at(0).reserve().unwrap()).collect();
        // Minute limit 3, app minute 4 (both 1 s): three at 0, then the next two a window later.
        assert_eq!(booked, [0, 0, 0, 1_000, 1_000]);
        let next = w.at(0).reserve();
        assert_eq!(next, Ok(10_000), "the day limit of 5 pushes the sixth a day-window later");
        unbook(Some(&mut w.tenant), &mut w.app, 10_000);
        assert_eq!(w.at(0).snapshot("t", 1).day.booked, 2, "the two at 1000; those at 0 are now");
    }

    #[test]
    fn bookings_beyond_the_horizon_are_refused() {
        let mut w = World::new();
        w.tenant.block = Some(Block { until: MAX_BOOKING_AHEAD_MS + 1, reason: Reason::RetryAfter });
        assert_eq!(w.at(0).reserve(), Err(PacingError::BookingTooFar { wait_ms: MAX_BOOKING_AHEAD_MS + 1 }));
        assert!(w.tenant.day.is_empty(), "nothing booked");
    }

    #[test]
    fn bookings_are_capped_per_tenant_and_per_app() {
        let limits = Limits {
            tenant_minute: WindowLimit::new(1, 1_000, 0),
            tenant_day: WindowLimit::new(0, 0, 0),
            app_minute: WindowLimit::new(0, 0, 0),
            ..limits()
        };
        let (mut tenant, mut app) = (TenantState::default(), AppState::default());
        let tenant_limits = scope_limits("t", None, &limits);
        let mut scope = Scope { limits: &limits, tenant_limits, tenant: &mut tenant, app: &mut app, now: 0 };
        // The first is booked now, the others a second apart: MAX_BOOKINGS of them ahead.
        for i in 0..=u64::from(MAX_BOOKINGS) {
            assert_eq!(scope.reserve(), Ok(i * 1_000));
        }
        assert_eq!(scope.reserve(), Err(PacingError::TooManyBookings { wait_ms: 1_000 }), "until the next comes due");
        scope.now = 1_000;
        assert_eq!(scope.reserve(), Ok((u64::from(MAX_BOOKINGS) + 1) * 1_000), "one came due: one more fits");
        // The app window holds every tenant's bookings (here: tenantless calls, which only the app limits).
        let limits = Limits { app_minute: WindowLimit::new(1, 10, 0), ..limits };
        let (mut tenant, mut app) = (TenantState::default(), AppState::default());
        let tenant_limits = scope_limits("", None, &limits);
        let mut scope = Scope { limits: &limits, tenant_limits, tenant: &mut tenant, app: &mut app, now: 0 };
        for _ in 0..=MAX_APP_BOOKINGS {
            scope.reserve().unwrap();
        }
        assert_eq!(scope.reserve(), Err(PacingError::TooManyBookings { wait_ms: 10 }));
    }

    fn feedback(status: u16, category: Category, problem: Option<RateLimitProblem>, wait: Option<u64>) -> Feedback {
        Feedback {
            status,
            category,
            rate_limit_problem: problem,
            recommended_wait_ms: wait,
            minute_remaining: None,
            day_remaining: None,
            app_minute_remaining: None,
        }
    }

    #[test]
    fn feedback_effects_follow_the_reference() {
        let minute_429 = feedback(429, Category::RateLimited, Some(RateLimitProblem::Minute), Some(7_000));
        assert_eq!(
            Effects::of(&Feedback { minute_remaining: Some(0), day_remaining: Some(1), ..minute_429 }),
            Effects { tenant_block: Some((7_000, Reason::RetryAfter)), day_remaining: Some(1), ..Effects::default() },
            "the minute window is covered by the block; the day window learns what is left"
        );
        let app_429 = feedback(429, Category::RateLimited, Some(RateLimitProblem::AppMinute), Some(60_000));
        assert_eq!(Effects::of(&app_429).app_block, Some((60_000, Reason::RetryAfter)));
        let offline = feedback(503, Category::OrganisationOffline, None, Some(300_000));
        assert_eq!(Effects::of(&offline).tenant_block, Some((300_000, Reason::OrganisationOffline)));
        let outage = feedback(503, Category::ServiceUnavailable, None, Some(60_000));
        assert_eq!(Effects::of(&outage).app_block, Some((60_000, Reason::Outage)));
        let gateway = feedback(504, Category::ServiceUnavailable, None, Some(5_000));
        assert_eq!(Effects::of(&gateway), Effects::default(), "a gateway hiccup blocks nothing");
    }

    #[test]
    fn remaining_counts_apply_with_the_scopes_limits() {
        let ok = Feedback { minute_remaining: Some(1), ..feedback(200, Category::Success, None, Some(0)) };
        let mut w = World::new();
        w.at(0).observe(&ok);
        assert_eq!(w.at(0).snapshot("t", 1).minute.count, 2, "limit 3 - 1 remaining");
        let (limits, mut tenant, mut app) = (limits(), TenantState::default(), AppState::default());
        let tenant_limits = scope_limits("", None, &limits);
        let mut tenantless = Scope { limits: &limits, tenant_limits, tenant: &mut tenant, app: &mut app, now: 0 };
        tenantless.observe(&ok);
        assert!(tenant.minute.is_empty(), "no tenant windows to correct");
    }

    #[test]
    fn server_counts_raise_usage_and_never_lower_it() {
        let mut w = World::new();
        w.acquire(0);
        let seen_two = Feedback { minute_remaining: Some(1), ..feedback(200, Category::Success, None, Some(0)) };
        w.at(10).observe(&seen_two);
        assert_eq!(w.at(10).snapshot("t", 1).minute.count, 2);
        let seen_none = Feedback { minute_remaining: Some(3), ..seen_two };
        w.at(20).observe(&seen_none);
        assert_eq!(w.at(20).snapshot("t", 1).minute.count, 2, "never lowered");
        let blocked = feedback(429, Category::RateLimited, Some(RateLimitProblem::Day), Some(1_234));
        w.at(30).observe(&blocked);
        w.tenant.in_flight.clear();
        assert_eq!(refused(w.acquire(30)), Refusal::new(1_234, Reason::RetryAfter));
    }
}
