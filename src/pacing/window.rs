//! One exact rolling window: the admitted calls' timestamps, sorted. A call at `t` fits when, counting it, no
//! window of `span` milliseconds holds more than `limit` calls. Reservations can put entries in the future, so
//! the check covers every window that contains `t`, not only the one ending at `t`.

use std::collections::VecDeque;

/// How many booked calls [`Window::earliest`] checks at once when it looks for a full window among them.
const SCAN_CHUNK: usize = 64;

/// A jump past a full window that passes fewer calls than this ends the jumping: the rest is scanned (see
/// [`Window::leave_full`]).
const JUMP_MIN: usize = 8;

/// The instants are kept as 4-byte offsets from `base` (half the memory of 8-byte instants: a full 5000-call day
/// window is 20 KB). A window only ever holds instants within its span before now and bookings at most
/// [`super::MAX_BOOKING_AHEAD_MS`] after it, so offsets from the oldest entry always fit; `base` moves forward when
/// they would not.
#[derive(Debug, Default, Clone)]
pub(crate) struct Window {
    base: u64,
    offsets: VecDeque<u32>,
}

impl Window {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    fn at(&self, i: usize) -> u64 {
        self.base + u64::from(self.offsets[i])
    }

    fn front(&self) -> Option<u64> {
        self.offsets.front().map(|&o| self.base + u64::from(o))
    }

    /// How many entries are at or before `t`.
    fn count_le(&self, t: u64) -> usize {
        match t.checked_sub(self.base) {
            None => 0,
            Some(off) => match u32::try_from(off) {
                Ok(off) => self.offsets.partition_point(|&e| e <= off),
                Err(_) => self.offsets.len(),
            },
        }
    }

    /// How many entries are before `t`.
    fn count_lt(&self, t: u64) -> usize {
        match t.checked_sub(self.base) {
            None | Some(0) => 0,
            Some(off) => self.count_le(self.base + off - 1),
        }
    }

    /// Forgets calls that no window containing an instant ≥ `now` can hold.
    pub fn prune(&mut self, now: u64, span: u64) {
        if let Some(edge) = now.checked_sub(span) {
            // Usually one or two calls leave: the search gallops from the front.
            let leaving = self.first_past(0, edge, true, 0);
            self.offsets.drain(..leaving);
        }
    }

    /// The first index at or after `from` whose entry is after `t` (`inclusive`) or at or after it: a gallop from
    /// `from` (the searches in [`Window::earliest`] move forward by a little at a time), then a binary search. With
    /// a `hint` (0: none) the answer is looked for first at `from + hint`: a jump past a full window passes about
    /// `limit` calls (exactly that many when bookings come in bursts at the limit's pace), found so in two reads.
    fn first_past(&self, from: usize, t: u64, inclusive: bool, hint: usize) -> usize {
        let n = self.offsets.len();
        let before = |i: usize| if inclusive { self.at(i) <= t } else { self.at(i) < t };
        if from >= n || !before(from) {
            return from;
        }
        // before(lo) holds; find hi with !before(hi) (or n).
        let mut lo = from;
        let mut bound = None;
        if hint > 0 {
            let last = from + hint - 1;
            if last >= n || !before(last) {
                bound = Some(last.min(n));
            } else if last + 1 >= n || !before(last + 1) {
                return last + 1;
            } else {
                lo = last + 1;
            }
        }
        let mut hi = match bound {
            Some(hi) => hi,
            None => {
                let mut step = 1;
                loop {
                    let probe = lo + step;
                    if probe >= n {
                        break n;
                    }
                    if !before(probe) {
                        break probe;
                    }
                    lo = probe;
                    step *= 2;
                }
            }
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if before(mid) { lo = mid } else { hi = mid }
        }
        hi
    }

    /// The earliest instant ≥ `t` at which a call fits. A call at `t` fits when the window ending at `t` holds fewer
    /// than `limit` calls, and so does the window ending at every booked call in (t, t + span) (the call would be in
    /// those too). So the search moves `t` forward by two rules, each a jump to where fitness can change: past the
    /// instant the limit-th call before `t` leaves (its `e + span`), and past the latest booked call in
    /// (t, t + span) whose window is already full (`e`, then the first rule). Each booked call is checked once per
    /// search: O(log n) when nothing is booked after `t` (every plain acquire), else O(log n) per jump while the
    /// jumps pass many calls, and one pass over the bookings where they pass few (at most [`super::MAX_BOOKINGS`]
    /// in a tenant's windows; see [`Window::leave_full`]).
    pub fn earliest(&self, t: u64, limit: usize, span: u64) -> u64 {
        let n = self.offsets.len();
        if limit == 0 || n < limit {
            return t;
        }
        let mut t = t;
        let mut p = self.count_le(t);
        // Booked calls from `p` up to `checked` are known to end windows that are not full.
        let mut checked = p;
        // Calls at or before t - span (t only grows: the count is found by galloping on).
        let mut left = 0;
        loop {
            if p >= limit && self.at(p - limit).saturating_add(span) > t {
                (t, p) = self.leave_full(t, p, limit, span);
                continue;
            }
            if p == n {
                return t; // nothing booked after t: the common case
            }
            let from = p.max(checked);
            let end = self.first_past(from, t.saturating_add(span), false, 0);
            // A full window ending at a booked call in (t, t + span) lies within (t - span, t + span): with fewer
            // than `limit` calls there, there is none (the common case of a tenant booking ahead).
            if let Some(edge) = t.checked_sub(span) {
                left = self.first_past(left, edge, true, 0);
            }
            if end - left < limit {
                return t;
            }
            let full = self.latest_full(from, end, limit, span);
            checked = checked.max(end);
            let Some(k) = full else { return t };
            t = self.at(k);
            p = self.first_past(p, t, true, 0);
        }
    }

    /// From `t` whose window is full (`p` = calls at or before `t`): the first instant after it whose window holds
    /// fewer than `limit` calls, and the calls at or before that. Jump by jump, each to the instant the limit-th call
    /// before leaves, while a jump passes many calls (bookings made in bursts at the limit's pace pass `limit`);
    /// once one passes few (bookings made one after another: each jump passes one), the rest is scanned
    /// ([`Window::free_after`]), so a chain of 2,000 bookings costs one pass, not 2,000 searches.
    fn leave_full(&self, mut t: u64, mut p: usize, limit: usize, span: u64) -> (u64, usize) {
        let n = self.offsets.len();
        while p >= limit {
            let leaves = self.at(p - limit).saturating_add(span);
            if leaves <= t {
                break;
            }
            let next = self.first_past(p, leaves, true, limit);
            if next - p < JUMP_MIN && next < n {
                return self.free_after(leaves, next, limit, span);
            }
            (t, p) = (leaves, next);
        }
        (t, p)
    }

    /// The first instant ≥ `t` (`p` = calls at or before it, at least `limit`) whose window holds fewer than
    /// `limit` calls, and the calls at or before it: between the calls q − 1 and q it is the first instant
    /// x = max(`t` or the call q − 1, the call q − limit + span), if x comes before the call q (or q is the last).
    fn free_after(&self, t: u64, p: usize, limit: usize, span: u64) -> (u64, usize) {
        let n = self.offsets.len();
        let mut lower = t;
        for q in p..n {
            let x = lower.max(self.at(q - limit).saturating_add(span));
            let here = self.at(q);
            if x < here {
                return (x, q);
            }
            lower = here;
        }
        (lower.max(self.at(n - limit).saturating_add(span)), n)
    }

    /// The latest call in `lo..hi` whose window holds `limit` calls (its `limit - 1`-th predecessor has not left
    /// by its instant). At `k` that is `k + 1 - c(k) >= limit`, where `c(k)` counts the calls at or before
    /// `at(k) - span` and never decreases with `k`: over `a..b` it is at most `b - c(a)`. The range is searched
    /// from the top in chunks of [`SCAN_CHUNK`]; a chunk this bound rules out is skipped whole (one search), the
    /// others are read through.
    fn latest_full(&self, lo: usize, hi: usize, limit: usize, span: u64) -> Option<usize> {
        let lo = lo.max(limit - 1);
        // The latest first: in a run of bookings made at the limit's pace it is full.
        if hi > lo && self.at(hi - limit).saturating_add(span) > self.at(hi - 1) {
            return Some(hi - 1);
        }
        let mut b = hi;
        while b > lo {
            let a = b.saturating_sub(SCAN_CHUNK).max(lo);
            if b - self.at(a).checked_sub(span).map_or(0, |edge| self.count_le(edge)) >= limit {
                let full = (a..b).rev().find(|&k| self.at(k + 1 - limit).saturating_add(span) > self.at(k));
                if full.is_some() {
                    return full;
                }
            }
            b = a;
        }
        None
    }

    /// The offset of `t`, moving `base` to the oldest entry first when `t` is too far from it.
    fn offset_of(&mut self, t: u64) -> u32 {
        if self.offsets.is_empty() {
            self.base = t;
        }
        if let Some(off) = t.checked_sub(self.base).and_then(|off| u32::try_from(off).ok()) {
            return off;
        }
        let new_base = self.front().map_or(t, |front| front.min(t));
        let old_base = self.base;
        for off in self.offsets.iter_mut() {
            *off = fit_u32(old_base + u64::from(*off) - new_base);
        }
        self.base = new_base;
        fit_u32(t - new_base)
    }

    /// Records a call at `t`. Of the calls at or before `now`, only the newest `cap` are kept: an older one
    /// cannot decide any admission once `cap` newer calls exist (only recorded or phantom calls get there).
    pub fn insert(&mut self, t: u64, cap: usize, now: u64) {
        if cap == 0 {
            return;
        }
        if self.offsets.len() == self.offsets.capacity() && self.offsets.len() < cap {
            // Grow towards the limit, never past it: a full day window holds exactly `cap` calls.
            let target = (self.offsets.len() * 2).max(4).min(cap);
            self.offsets.reserve_exact(target - self.offsets.len());
        }
        let off = self.offset_of(t);
        if self.offsets.back().is_none_or(|&last| last <= off) {
            self.offsets.push_back(off); // the common case: calls arrive in time order
        } else {
            let p = self.offsets.partition_point(|&e| e <= off);
            self.offsets.insert(p, off);
        }
        if self.offsets.len() > cap {
            let past = self.count_le(now);
            self.offsets.drain(..past.saturating_sub(cap));
        }
    }

    /// Removes one call recorded at `t`; false when there is none.
    pub fn remove(&mut self, t: u64) -> bool {
        let p = self.count_lt(t);
        if p < self.offsets.len() && self.at(p) == t {
            self.offsets.remove(p);
            true
        } else {
            false
        }
    }

    /// Calls in the window ending at `now`: (now − span, now].
    pub fn count_at(&self, now: u64, span: u64) -> usize {
        let upto_now = self.count_le(now);
        let expired = now.checked_sub(span).map_or(0, |edge| self.count_le(edge));
        upto_now - expired
    }

    /// Calls booked after `now` (reservations).
    pub fn booked_after(&self, now: u64) -> usize {
        self.offsets.len() - self.count_le(now)
    }

    /// The first call booked after `now`, if any.
    pub fn next_booked(&self, now: u64) -> Option<u64> {
        let p = self.count_le(now);
        (p < self.offsets.len()).then(|| self.at(p))
    }

    /// Bytes this window holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * std::mem::size_of::<u32>()
    }
}

/// An offset that fits by the window's invariant (see [`Window`]); saturates rather than wrap if it ever did not.
fn fit_u32(offset: u64) -> u32 {
    debug_assert!(offset <= u64::from(u32::MAX), "a window spans more than 2^32 ms");
    u32::try_from(offset).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brute-force definition: does any window (s − span, s] hold more than `limit` calls?
    fn exceeded(times: &[u64], limit: usize, span: u64) -> bool {
        times.iter().any(|&s| times.iter().filter(|&&e| e <= s && e + span > s).count() > limit)
    }

    #[test]
    fn earliest_is_exact_against_brute_force_with_future_entries() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..400 {
            let limit = 1 + next(4) as usize;
            let span = 1 + next(20);
            let mut w = Window::default();
            let mut all = Vec::new();
            for _ in 0..(next(12)) {
                let t = next(60);
                let at = w.earliest(t, limit, span);
                assert!(at >= t);
                for probe in t..at {
                    let mut with = all.clone();
                    with.push(probe);
                    assert!(
                        exceeded(&with, limit, span),
                        "refused {probe} but it fits: {all:?} limit {limit} span {span}"
                    );
                }
                let mut with = all.clone();
                with.push(at);
                assert!(!exceeded(&with, limit, span), "admitted {at} over the limit: {all:?}");
                w.insert(at, usize::MAX, 0);
                all = with;
            }
        }
    }

    #[test]
    fn earliest_is_exact_through_long_booking_chains() {
        // Bookings made one after another as a reserve makes them (each at the earliest free instant), with the
        // clock standing still (bursts of `limit`) or moving a little between them (chains the jumps pass one call
        // at a time): both ways past the full windows (jumps, then the scan) must find the brute-force answer.
        let mut seed = 0x7f4a_7c15_9e37_79b9u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..60 {
            let limit = 2 + next(14) as usize;
            let span = 5 + next(40);
            let step = next(3);
            let mut w = Window::default();
            let mut all = Vec::new();
            let mut now = 0;
            for _ in 0..(limit * (2 + next(12) as usize)) {
                let at = w.earliest(now, limit, span);
                w.insert(at, usize::MAX, 0);
                all.push(at);
                now += step;
            }
            all.sort_unstable();
            for t in [0, now, next(now + span), next(all[all.len() - 1] + span)] {
                let want = (t..).find(|&c| fits(&all, c, limit, span)).unwrap();
                assert_eq!(w.earliest(t, limit, span), want, "from {t}: {all:?} limit {limit} span {span}");
            }
        }
    }

    #[test]
    fn first_past_finds_the_same_index_with_any_hint() {
        let mut seed = 0x5851_f42d_4c95_7f2du64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..500 {
            let mut w = Window::default();
            // Bursts of equal instants (as bookings at a limit's pace), and single calls.
            for _ in 0..next(40) {
                let t = next(200);
                for _ in 0..=next(6) {
                    w.insert(t, usize::MAX, 0);
                }
            }
            let n = w.len();
            for _ in 0..20 {
                let (from, t, inclusive) = (next(n as u64 + 2) as usize, next(210), next(2) == 0);
                let linear = (from..n).find(|&i| if inclusive { w.at(i) > t } else { w.at(i) >= t }).unwrap_or(n);
                let expected = if from >= n { from } else { linear };
                for hint in [0, 1, 2, 3, 5, 8, 64] {
                    assert_eq!(w.first_past(from, t, inclusive, hint), expected, "from {from} t {t} hint {hint}");
                }
            }
        }
    }

    /// Whether a call at `t` keeps every window that would hold it within `limit`, whatever the log (also one that
    /// is over its limit elsewhere: recorded calls and the server's counts can put it there).
    fn fits(times: &[u64], t: u64, limit: usize, span: u64) -> bool {
        (t..t + span).all(|s| times.iter().filter(|&&e| e <= s && e + span > s).count() < limit)
    }

    #[test]
    fn earliest_is_exact_on_any_log() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..3_000 {
            let limit = 1 + next(5) as usize;
            let span = 1 + next(15);
            let mut w = Window::default();
            let mut all = Vec::new();
            // Clusters, gaps and over-limit runs, in the past and booked ahead.
            for _ in 0..next(25) {
                let t = next(80);
                for _ in 0..=next(3) {
                    w.insert(t, usize::MAX, 0);
                    all.push(t);
                }
            }
            for _ in 0..next(4) {
                if let Some(&e) = all.get(next(all.len().max(1) as u64) as usize) {
                    assert!(w.remove(e));
                    all.remove(all.iter().position(|&x| x == e).unwrap());
                }
            }
            all.sort_unstable();
            for t in [0, next(90), next(90)] {
                let want = (t..).find(|&c| fits(&all, c, limit, span)).unwrap();
                assert_eq!(w.earliest(t, limit, span), want, "from {t}: {all:?} limit {limit} span {span}");
            }
        }
    }

    #[test]
    fn counts_prune_and_remove() {
        let mut w = Window::default();
        for t in [0, 10, 20, 30] {
            w.insert(t, usize::MAX, 0);
        }
        assert_eq!(w.count_at(30, 25), 3);
        assert_eq!(w.booked_after(15), 2);
        assert!(w.remove(20) && !w.remove(20));
        w.prune(40, 25);
        assert_eq!(w.len(), 1);
        w.insert(50, 1, 50);
        assert_eq!(w.len(), 1, "capped to the newest");
        w.insert(90, 1, 50);
        assert_eq!(w.len(), 2, "future bookings are never dropped");
    }

    #[test]
    fn offsets_stay_exact_across_rebases() {
        // A window that is never empty for 120 days (its base must move), with bookings ahead, checked against
        // a plain list of instants.
        let (span, limit) = (86_400_000u64, 3usize);
        let start = 1_700_000_000_000u64;
        let mut w = Window::default();
        let mut all: Vec<u64> = Vec::new();
        let mut now = start;
        while now < start + 120 * span {
            w.prune(now, span);
            all.retain(|&e| e + span > now);
            let at = w.earliest(now, limit, span);
            let mut with = all.clone();
            with.push(at);
            assert!(!exceeded(&with, limit, span));
            assert!(at == now || exceeded(&[all.clone(), vec![at - 1]].concat(), limit, span));
            w.insert(at, limit, now);
            all.push(at);
            all.sort_unstable();
            assert_eq!(w.count_at(now, span), all.iter().filter(|&&e| e <= now && e + span > now).count());
            assert_eq!(w.booked_after(now), all.iter().filter(|&&e| e > now).count());
            now += span / 2 + 12_345;
        }
        assert!(w.base > start, "the base moved forward");
        assert!(w.remove(*all.last().unwrap()));
    }
}
