#!/usr/bin/env python3
"""Window exactness table, Python side: how many calls each limiter admits in any rolling window.

Every limiter is driven with the schedules of bench/schedules.json under VIRTUAL time (nothing sleeps): at each
attempt instant the driver asks until the limiter refuses or `max_burst` calls were admitted at that instant, and
every admitted call completes at once. From the admitted instants we report the most calls in any half-open
window [s, s+L) for each window length of the json, and the total admitted.

Peers (bench/requirements.txt): limits 5.x (fixed window, moving window and sliding window counter strategies on
its memory storage) and pyrate-limiter 4.x (Limiter over an InMemoryBucket, non-blocking try_acquire).

Run:  bench/.venv/bin/python bench/exactness.py [--quick]
Writes bench/results/exactness-python.json (--quick: target/bench-smoke/; --out DIR or FILE.json overrides).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

from benchlib import die, dist_version, output_path  # noqa: E402 (bench/ is the script directory)

HERE = Path(__file__).resolve().parent
QUICK_SPAN_MS = 2 * 3600 * 1000  # --quick keeps attempts up to 2 h of virtual time (as the Rust smoke run)
TENANT = "tenant-1"


def _die(msg: str, code: int = 2) -> NoReturn:
    die("exactness.py", msg, code)


# Imports are checked up front so a missing peer is one clear message, not a traceback halfway through a run.
try:
    import xeroguard
    from xeroguard import Limiter as XgLimiter
    from xeroguard import Limits as XgLimits
except Exception as exc:  # ImportError, or OSError when the native library cannot load
    _die("cannot import xeroguard (%s); run `bash bench/setup-venv.sh` and use bench/.venv/bin/python" % exc)
try:
    import limits.storage.memory as limits_memory
    import limits.strategies as limits_strategies
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
    from limits.limits import (RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute,
                               RateLimitItemPerSecond)
    from limits.storage import MemoryStorage
except Exception as exc:
    _die("cannot import limits (%s); run `bash bench/setup-venv.sh` (bench/requirements.txt pins it)" % exc)
try:
    from pyrate_limiter import Duration, InMemoryBucket, Rate
    from pyrate_limiter import Limiter as PyrateLimiter
except Exception as exc:
    _die("cannot import pyrate_limiter (%s); run `bash bench/setup-venv.sh`" % exc)



# ---------------------------------------------------------------------------------------------------------------
# Schedules


class Window:
    def __init__(self, name: str, length_ms: int, limit: int) -> None:
        self.name = name
        self.length_ms = length_ms
        self.limit = limit
        # "60 s" -> "max_60s", "24 h" -> "max_24h": the row keys the table contract names.
        self.key = "max_" + name.replace(" ", "")


class Schedule:
    def __init__(self, name: str, description: str, instants: List[Tuple[int, int]]) -> None:
        self.name = name
        self.description = description
        self.instants = instants


def expand(attempts: Sequence[Dict[str, int]], max_burst: int) -> List[Tuple[int, int]]:
    """The (instant in ms after start, most calls to take there) pairs of one schedule, sorted and distinct: an
    instant is one point in time, and the driver's clock can only move forward. An attempt's own max_burst
    overrides the schedule-wide one."""
    out: Dict[int, int] = {}
    for a in attempts:
        cap = int(a.get("max_burst", max_burst))
        if "at_ms" in a:
            times: Sequence[int] = [int(a["at_ms"])]
        elif {"from_ms", "to_ms", "step_ms"} <= set(a):
            if a["step_ms"] <= 0:
                raise ValueError("step_ms must be > 0: %r" % (a,))
            times = range(int(a["from_ms"]), int(a["to_ms"]) + 1, int(a["step_ms"]))
        else:
            raise ValueError("an attempt is {at_ms} or {from_ms,to_ms,step_ms}, not %r" % (a,))
        for t in times:
            out[t] = max(out.get(t, 0), cap)
    return sorted(out.items())


def load_schedules(path: Path, quick: bool) -> Tuple[Dict[str, Any], List[Window], List[Schedule]]:
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        _die("cannot read %s: %s" % (path, exc))
    windows = [Window(w["name"], int(w["length_ms"]), int(w["limit"])) for w in spec["windows"]]
    schedules = []
    for s in spec["schedules"]:
        instants = expand(s["attempts"], int(spec["max_burst"]))
        if quick:
            instants = [(t, cap) for t, cap in instants if t <= QUICK_SPAN_MS]
        schedules.append(Schedule(s["name"], s.get("description", ""), instants))
    return spec, windows, schedules


def max_in_window(instants: Sequence[int], length_ms: int) -> int:
    """Most instants in any half-open [s, s+length): two calls share such a window iff they are < length apart."""
    best = 0
    i = 0
    for j, t in enumerate(instants):
        while t - instants[i] >= length_ms:
            i += 1
        if j - i + 1 > best:
            best = j - i + 1
    return best


# ---------------------------------------------------------------------------------------------------------------
# Drivers. Each takes [(instant, max calls there)] and returns (admitted instants, extra note). Instants are ms after
# start_unix_ms; each driver maps them onto its limiter's own clock.

DriverResult = Tuple[List[int], str]


def drive_xeroguard(limits_cfg: "XgLimits", start_unix_ms: int, instants: Sequence[Tuple[int, int]]) -> DriverResult:
    # The manual clock is ms on the limiter's own clock (it starts at 0 and only moves forward); rolling windows
    # have no origin, so start_unix_ms + t serves as well as t and keeps every driver on one time axis.
    lim = XgLimiter(limits_cfg, clock="manual")
    set_now, acquire, release = lim.set_now, lim.acquire, lim.release
    admitted: List[int] = []
    reasons: Counter = Counter()
    try:
        for t, max_burst in instants:
            set_now(ms=start_unix_ms + t)
            n = 0
            while n < max_burst:
                d = acquire(TENANT)
                if not d.granted:
                    reasons[d.reason.value if d.reason else "?"] += 1
                    break
                release(d.permit)  # the call is instantaneous
                n += 1
            if n:
                admitted.extend([t] * n)
    finally:
        lim.close()
    # A concurrency refusal would mean the driver, not the windows, limited the run.
    if reasons.get("concurrency"):
        raise AssertionError("xeroguard refused for concurrency: permits were not released")
    return admitted, "refusals by reason: " + ", ".join("%s %d" % kv for kv in sorted(reasons.items()))


class _VirtualTime:
    """Stands in for the `time` module inside limits' memory storage and strategies: in limits 5.x both do
    `import time` and read only time.time() (Unix seconds, a float); Entry, incr/get expiries, the moving window's
    acquire_entry and the sliding window counter's timestamped keys all take it from there."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def time(self) -> float:
        return self.now_s


# Every module of limits' synchronous memory path that reads the clock. The strategies module reads it only in
# SlidingWindowCounterRateLimiter.get_window_stats (not on the hit() path), patched so the whole library agrees.
_LIMITS_TIME_MODULES = (limits_memory, limits_strategies)


class _patched_limits_clock:
    """Context manager: limits' memory storage and strategies read the virtual clock instead of the wall clock."""

    def __init__(self, vt: _VirtualTime) -> None:
        self.vt = vt
        self.saved: List[Any] = []

    def __enter__(self) -> _VirtualTime:
        for mod in _LIMITS_TIME_MODULES:
            if not hasattr(getattr(mod, "time", None), "time"):
                _die("%s no longer reads the clock through a module-level `time`; the virtual clock cannot be "
                     "injected (limits %s)" % (mod.__name__, dist_version("limits")))
            self.saved.append(mod.time)
            mod.time = self.vt  # every time.time() in that module now reads the virtual clock
        return self.vt

    def __exit__(self, *exc: Any) -> None:
        for mod, saved in zip(_LIMITS_TIME_MODULES, self.saved):
            mod.time = saved
        self.saved = []


def _quiet_memory_storage() -> "MemoryStorage":
    """A MemoryStorage without its background expiry thread. That thread (a threading.Timer of 10 ms real time,
    re-armed by incr/decr/acquire_entry) deletes moving-window entries whose expiry <= now, while acquire_entry
    refuses when the limit-th newest entry has atime >= now - expiry: at an exact window boundary (which a
    ms-grid virtual clock hits all the time) the decision would depend on whether the thread happened to run
    (it reads the same virtual clock, from another thread). Without it the storage's own decision code decides,
    deterministically; fixed-window and sliding-window-counter counters expire in get() under the same test
    (expiry <= now) the thread uses, so for them it changes nothing."""
    storage = MemoryStorage()
    storage.timer.cancel()
    if not hasattr(storage, "_MemoryStorage__schedule_expiry"):
        _die("limits %s: MemoryStorage has no __schedule_expiry any more; cannot keep its expiry thread off"
             % dist_version("limits"))
    storage._MemoryStorage__schedule_expiry = lambda: None  # type: ignore[attr-defined]
    return storage


def _limits_item(w: Window) -> "RateLimitItem":
    """The window as users write it ("60/minute", "5000/day"): the coarsest granularity that divides it."""
    for cls in (RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond):
        unit_ms = cls.GRANULARITY.seconds * 1000
        if w.length_ms % unit_ms == 0:
            return cls(w.limit, w.length_ms // unit_ms)
    raise ValueError("limits has no granularity for a %d ms window" % w.length_ms)


def make_limits_driver(strategy_cls: Any, windows: Sequence[Window]) -> Callable[..., DriverResult]:
    def drive(start_unix_ms: int, instants: Sequence[Tuple[int, int]]) -> DriverResult:
        items = [_limits_item(w) for w in windows]  # shortest window first, as users list them
        vt = _VirtualTime()
        with _patched_limits_clock(vt):
            limiter = strategy_cls(_quiet_memory_storage())
            hit = limiter.hit
            admitted: List[int] = []
            for t, max_burst in instants:
                vt.now_s = (start_unix_ms + t) / 1000.0
                n = 0
                while n < max_burst:
                    # The Flask-Limiter way: hit each limit in turn and refuse at the first that fails. Hits
                    # already taken stay taken (limits 5.x strategies have no call to give one back).
                    if not all(hit(item, TENANT) for item in items):
                        break
                    n += 1
                if n:
                    admitted.extend([t] * n)
        return admitted, ""
    return drive


class VirtualClockBucket(InMemoryBucket):
    """pyrate-limiter 4.x moved the clock from the Limiter to the bucket: SingleBucketFactory.wrap_item stamps
    items with bucket.now() and the Leaker leaks with it. Overriding now() is the way its README recommends to
    give a bucket its own time source; here it returns the virtual run's Unix ms."""

    def __init__(self, rates: List["Rate"]) -> None:
        super().__init__(rates)  # default algorithm: SlidingWindowLog
        self.virtual_ms = 0

    def now(self) -> int:
        return self.virtual_ms


def _pyrate_limiter(rates: List["Rate"]) -> Tuple["PyrateLimiter", VirtualClockBucket]:
    bucket = VirtualClockBucket(rates)
    # Limiter(bucket) wraps it in a SingleBucketFactory, which registers it with the daemon Leaker thread (every
    # 10 s of real time). That thread is left on, as users run it: under the bucket's lock it drops items older
    # than now() - the longest rate, which put() does not count, and now() only moves forward, so it cannot
    # change a decision. lim.close() stops it (pyrate 4 has a working close(); 3.7's dispose() asserted).
    return PyrateLimiter(bucket), bucket


def drive_pyrate(windows: Sequence[Window], start_unix_ms: int, instants: Sequence[Tuple[int, int]]) -> DriverResult:
    lim, bucket = _pyrate_limiter([Rate(w.limit, w.length_ms) for w in windows])
    try_acquire = lim.try_acquire
    admitted: List[int] = []
    try:
        for t, max_burst in instants:
            bucket.virtual_ms = start_unix_ms + t
            n = 0
            while n < max_burst:
                # blocking=False: pyrate 4's try_acquire blocks (sleeping in real time) by default.
                got = try_acquire(TENANT, blocking=False)
                if got is not True:
                    if got is not False:
                        raise AssertionError("pyrate try_acquire returned %r, not a bool" % (got,))
                    break
                n += 1
            if n:
                admitted.extend([t] * n)
    finally:
        lim.close()
    return admitted, ""


# ---------------------------------------------------------------------------------------------------------------
# Checks that virtual time really reaches the peers (a silent fallback to the wall clock would void the table).


def check_virtual_clocks(start_unix_ms: int) -> None:
    """Each peer, 2 calls per minute, at virtual time start_unix_ms (a UTC midnight, so also a minute boundary,
    weeks away from the wall clock): 2 admitted, the 3rd refused, still refused at +59.999 s, admitted again
    at +60.5 s. A peer still on the wall clock would refuse at +60.5 s (its first minute is not over). The state
    each peer stored must also carry the virtual timestamps: that fails even if the wall clock crossed a minute
    boundary during the check."""
    t0 = start_unix_ms / 1000.0
    item = RateLimitItemPerMinute(2)
    key = item.key_for("check")
    for cls in (FixedWindowRateLimiter, MovingWindowRateLimiter, SlidingWindowCounterRateLimiter):
        name = "limits " + cls.__name__
        vt = _VirtualTime()
        with _patched_limits_clock(vt):
            storage = _quiet_memory_storage()
            lim = cls(storage)
            vt.now_s = t0
            got = [lim.hit(item, "check") for _ in range(3)]
            assert got == [True, True, False], (name, got)
            # Where the virtual clock must show up in the storage's own state:
            if cls.__name__ == "FixedWindowRateLimiter":  # the counter's expiry: first hit + 60 s
                seen: Any = storage.expirations.get(key)
                assert seen == t0 + 60, "%s: counter expires at %r, not virtual %r" % (name, seen, t0 + 60)
            elif cls.__name__ == "MovingWindowRateLimiter":  # each entry's access time
                seen = [e.atime for e in storage.events.get(key, [])]
                assert seen == [t0, t0], "%s: entry times %r, not virtual %r" % (name, seen, t0)
            else:  # sliding window counter: the current window's key is "<key>/<int(now / 60)>"
                cur = "%s/%d" % (key, int(t0 / 60))
                seen = dict(storage.storage)
                assert seen.get(cur) == 2 and storage.expirations.get(cur) == t0 + 120, (
                    "%s: counters %r, expected %s=2 expiring at virtual %r" % (name, seen, cur, t0 + 120))
            vt.now_s = t0 + 59.999
            assert not lim.hit(item, "check"), name + ": admitted before the virtual minute passed"
            vt.now_s = t0 + 60.5  # a wall-clock limiter would still be inside its first minute here
            assert lim.hit(item, "check"), name + ": the virtual clock did not reach limits' storage"
            if cls.__name__ == "SlidingWindowCounterRateLimiter":
                # At 60.5 s the previous window's 2 hits weigh 2 * 59.5/60 = 1.98 (refused hits are never
                # counted): one hit fitted (floor 1.98 + 1 <= 2), a second must not (floor 2.98 + 1 > 2).
                assert not lim.hit(item, "check"), name + ": weighted previous window ignored"
    lim_p, bucket = _pyrate_limiter([Rate(2, Duration.MINUTE)])
    try:
        bucket.virtual_ms = start_unix_ms
        got = [lim_p.try_acquire("check", blocking=False) for _ in range(3)]
        assert got == [True, True, False] and all(type(g) is bool for g in got), ("pyrate", got)
        stamps = [i.timestamp for i in bucket.items]
        assert stamps == [start_unix_ms] * 2, "pyrate: items stamped %r, not virtual %d" % (stamps, start_unix_ms)
        bucket.virtual_ms = start_unix_ms + 59_999
        assert lim_p.try_acquire("check", blocking=False) is False, "pyrate: admitted before the virtual minute"
        bucket.virtual_ms = start_unix_ms + 60_500
        assert lim_p.try_acquire("check", blocking=False) is True, "pyrate: the virtual clock did not reach the bucket"
    finally:
        lim_p.close()


# ---------------------------------------------------------------------------------------------------------------


# limits' strategies, in table order. FixedWindowElasticExpiryRateLimiter (3.x) is shown only if present.
LIMITS_STRATEGIES = ("FixedWindowRateLimiter", "MovingWindowRateLimiter", "SlidingWindowCounterRateLimiter",
                     "FixedWindowElasticExpiryRateLimiter")
LIMITS_OPTIONAL = ("FixedWindowElasticExpiryRateLimiter",)


class Contender:
    def __init__(self, limiter: str, strategy: str, note: str, drive: Callable[..., DriverResult]) -> None:
        self.limiter = limiter
        self.strategy = strategy
        self.note = note
        self.drive = drive


def contenders(windows: Sequence[Window]) -> List[Contender]:
    by_len = {w.length_ms: w for w in windows}
    xg_default, xg_exact = XgLimits.default(), XgLimits.exact()
    # The binding's tenant windows are Xero's; the table is only meaningful if they are the json's windows.
    for lim in (xg_default, xg_exact):
        for wl in (lim.tenant_minute, lim.tenant_day):
            w = by_len.get(wl.window_ms)
            if w is None or w.limit != wl.limit:
                _die("xeroguard's window %d/%d ms is not one of schedules.json's windows" % (wl.limit, wl.window_ms))
    xg_name = "xeroguard %s (Python)" % xeroguard.__version__
    def xg_note(lim: "XgLimits") -> str:
        return ("ctypes Limiter(clock='manual'), acquire() then release() at once; margins +%d ms (minute), "
                "+%d ms (day)" % (lim.tenant_minute.margin_ms, lim.tenant_day.margin_ms))

    out = [Contender(xg_name, "exact rolling, Limits.default()", xg_note(xg_default),
                     lambda s, i: drive_xeroguard(xg_default, s, i))]
    if xg_exact != xg_default:
        out.append(Contender(xg_name, "exact rolling, Limits.exact()", xg_note(xg_exact),
                             lambda s, i: drive_xeroguard(xg_exact, s, i)))
    lname = "limits %s" % dist_version("limits")
    combine = ("MemoryStorage (expiry thread off, see notes), virtual time.time(); hit() %s in turn, "
               "refuse at the first failure (Flask-Limiter's way)"
               % " then ".join('"%s"' % _limits_item(w) for w in windows))
    for name in LIMITS_STRATEGIES:
        cls = getattr(limits_strategies, name, None)
        if cls is None:
            if name in LIMITS_OPTIONAL:
                continue  # not in limits 5.x; reported in the notes
            _die("limits %s has no %s" % (dist_version("limits"), name))
        out.append(Contender(lname, name, combine, make_limits_driver(cls, windows)))
    out.append(Contender(
        "pyrate-limiter %s" % dist_version("pyrate-limiter"), "InMemoryBucket",
        "Limiter(InMemoryBucket([%s]) with now() = virtual Unix ms, default SlidingWindowLog); "
        "try_acquire(blocking=False)" % ", ".join("Rate(%d, %d)" % (w.limit, w.length_ms) for w in windows),
        lambda s, i: drive_pyrate(windows, s, i)))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the first 2 h of virtual time (smoke test; writes to target/bench-smoke by default)")
    ap.add_argument("--schedules", type=Path, default=HERE / "schedules.json")
    ap.add_argument("--out", type=Path,
                    help="results directory (default bench/results; --quick target/bench-smoke), or a .json file")
    args = ap.parse_args(argv)

    spec, windows, schedules = load_schedules(args.schedules, args.quick)
    start_unix_ms = int(spec["start_unix_ms"])
    check_virtual_clocks(start_unix_ms)
    cands = contenders(windows)

    rows: List[Dict[str, Any]] = []
    timings: List[float] = []
    run_start = time.perf_counter()
    for sched in schedules:
        for c in cands:
            t0 = time.perf_counter()
            admitted, extra = c.drive(start_unix_ms, sched.instants)
            timings.append(time.perf_counter() - t0)
            row: Dict[str, Any] = {"limiter": c.limiter, "strategy": c.strategy, "schedule": sched.name}
            for w in windows:
                row[w.key] = max_in_window(admitted, w.length_ms)
            row["admitted"] = len(admitted)
            row["note"] = c.note + ("; " + extra if extra else "")
            rows.append(row)
            print("  %-12s %-40s %6.1f s" % (sched.name, c.limiter + " " + c.strategy, timings[-1]),
                  file=sys.stderr, flush=True)
    total_s = time.perf_counter() - run_start

    notes = [
        "Virtual time: no sleeping. xeroguard: Limiter(clock='manual').set_now(start_unix_ms + t); limits: the "
        "`time` module seen by limits.storage.memory and limits.strategies replaced by a virtual clock; "
        "pyrate-limiter 4 (whose Limiter has no clock= any more; the bucket owns its time): an InMemoryBucket "
        "subclass whose now() returns start_unix_ms + t. Checked at start for every peer: a window reopens only "
        "after virtual time passes, and the peer's stored state carries the virtual timestamps.",
        "max_* = most admitted calls in any half-open window [s, s+L); a value above the window's limit is an "
        "overshoot a server counting exact rolling windows would answer with 429.",
        "limits MemoryStorage's expiry thread is disabled: it deletes expired moving-window entries on a 10 ms "
        "real-time timer, which races the storage's own check at exact boundaries (a ms-grid virtual clock lands "
        "on them), so results could depend on thread timing. Decisions are the storage's own either way; for the "
        "fixed window and the sliding window counter the thread applies the same expiry test as get(). With the "
        "thread on, 2 trial runs of both schedules (limits 5.8.0) gave the same numbers.",
        "limits %s semantics: the fixed window's memory counter starts at a key's first hit and expires window "
        "length later (not aligned to the clock); the sliding window counter keeps counters for clock-aligned "
        "windows (int(now / length); start_unix_ms is a UTC midnight, so aligned with the run) and admits while "
        "floor(previous * share of the previous window still inside the rolling window + current) + 1 <= limit; "
        "the moving window counts entries with atime >= now - length (closed at both ends)."
        % dist_version("limits"),
        "pyrate-limiter %s: InMemoryBucket's default SlidingWindowLog counts items with timestamp >= now - "
        "interval (closed at both ends); its daemon Leaker thread stays on (it only drops items older than the "
        "longest rate) and Limiter.close() stops it after each run." % dist_version("pyrate-limiter"),
    ]
    if not hasattr(limits_strategies, "FixedWindowElasticExpiryRateLimiter"):
        notes.append("limits %s no longer has FixedWindowElasticExpiryRateLimiter (3.14.1's fourth strategy), so "
                     "it has no row; SlidingWindowCounterRateLimiter (added in 4.1) is new." % dist_version("limits"))
    if args.quick:
        notes.append("--quick: schedules truncated to attempts at or before %d ms of virtual time." % QUICK_SPAN_MS)
    result = {
        "rows": rows,
        "quick": args.quick,
        "windows": [{"name": w.name, "length_ms": w.length_ms, "limit": w.limit} for w in windows],
        "attempt_instants": {s.name: len(s.instants) for s in schedules},
        "python": platform.python_version(),
        "elapsed_s": round(total_s, 1),
        "notes": notes,
    }
    out = output_path(args.out, args.quick, "exactness-python.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print_table(rows, windows, schedules, notes)
    print("\nwrote %s in %.1f s%s" % (out, total_s, " (--quick)" if args.quick else ""))
    return 0


def print_table(rows: Sequence[Dict[str, Any]], windows: Sequence[Window], schedules: Sequence[Schedule],
                notes: Sequence[str]) -> None:
    heads = ["schedule", "limiter", "strategy"] + [w.key for w in windows] + ["admitted"]
    cells = []
    for r in rows:
        line = [r["schedule"], r["limiter"], r["strategy"]]
        for w in windows:
            v = r[w.key]
            line.append("%d%s" % (v, " !" if v > w.limit else ""))  # "!" marks an overshoot
        line.append(str(r["admitted"]))
        cells.append(line)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    numeric = set(range(3, len(heads)))

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(s.rjust(widths[i]) if i in numeric else s.ljust(widths[i]) for i, s in enumerate(line))

    print("\nWindow exactness (limits: %s; attempt instants: %s)" % (
        ", ".join("%d per %s" % (w.limit, w.name) for w in windows),
        ", ".join("%s %d" % (s.name, len(s.instants)) for s in schedules)))
    print(fmt(heads))
    print(fmt(["-" * w for w in widths]))
    for line in cells:
        print(fmt(line))
    print("\n'!' = more than the window's limit. Row notes:")
    seen: Dict[str, int] = {}
    for r in rows:
        key = r["limiter"] + " | " + r["strategy"]
        if key not in seen:
            seen[key] = 1
            print("  - %s: %s" % (key, r["note"]))
        elif r["note"] and "refusals" in r["note"]:
            print("  - %s [%s]: %s" % (key, r["schedule"], r["note"].split("; ")[-1]))
    print("Notes:")
    for n in notes:
        print("  - " + n)


if __name__ == "__main__":
    sys.exit(main())
