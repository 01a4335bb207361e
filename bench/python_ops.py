#!/usr/bin/env python3
"""Python-side throughput: one pacing decision per call, and classify() per response, in real time.

Limiters: xeroguard (ctypes: Limiter.acquire + release), limits 5.x (MovingWindowRateLimiter and
SlidingWindowCounterRateLimiter, memory storage, hit() on both windows) and PyrateLimiter 4.x (InMemoryBucket per
tenant, non-blocking try_acquire), each with a 60 s and a 24 h window per tenant, over (a) 1 tenant and (b) 1000
tenants round-robin. Every limiter is given window limits far above the number of calls, so every call is
granted: the same work (one granted decision) for all of them.

Classify: xeroguard.classify() per call on three Xero responses, beside json.loads of the same body.

Run:  bench/.venv/bin/python bench/python_ops.py [--quick]
Writes bench/results/python-ops.json (--quick: target/bench-smoke/; --out DIR or FILE.json overrides).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

from benchlib import die, dist_version, output_path  # noqa: E402 (bench/ is the script directory)

HERE = Path(__file__).resolve().parent
# Every window limit in the limiter benchmark: far above any trial's calls, so nothing is ever refused.
BIG_LIMIT = 1_000_000
MINUTE_MS = 60_000
DAY_MS = 86_400_000


def _die(msg: str, code: int = 2) -> NoReturn:
    die("python_ops.py", msg, code)


try:
    import xeroguard
    from xeroguard import Limiter as XgLimiter
    from xeroguard import Limits as XgLimits
except Exception as exc:  # ImportError, or OSError when the native library cannot load
    _die("cannot import xeroguard (%s); run `bash bench/setup-venv.sh` and use bench/.venv/bin/python" % exc)
try:
    from limits import RateLimitItemPerDay, RateLimitItemPerMinute
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
except Exception as exc:
    _die("cannot import limits (%s); run `bash bench/setup-venv.sh` (bench/requirements.txt pins it)" % exc)
try:
    from pyrate_limiter import (AbstractBucket, AbstractClock, BucketFactory, InMemoryBucket, MonotonicClock, Rate,
                                RateItem)
    from pyrate_limiter import Limiter as PyrateLimiter
except Exception as exc:
    _die("cannot import pyrate_limiter (%s); run `bash bench/setup-venv.sh`" % exc)



# ---------------------------------------------------------------------------------------------------------------
# Limiters. A contender builds a fresh limiter per trial (so windows never fill up across trials) and returns a
# function that runs the whole tenant sequence and returns how many calls were granted.

RunFn = Callable[[Sequence[str]], int]


def xeroguard_limits() -> "XgLimits":
    d = XgLimits.default()
    # Only the limits change: margins, the app-wide window and the concurrency permit stay as users get them.
    return dataclasses.replace(
        d,
        tenant_minute=dataclasses.replace(d.tenant_minute, limit=BIG_LIMIT),
        tenant_day=dataclasses.replace(d.tenant_day, limit=BIG_LIMIT),
        app_minute=dataclasses.replace(d.app_minute, limit=BIG_LIMIT),
    )


def make_xeroguard() -> Tuple[RunFn, Callable[[], None]]:
    lim = XgLimiter(xeroguard_limits(), clock="monotonic")
    acquire, release = lim.acquire, lim.release

    def run(seq: Sequence[str]) -> int:
        granted = 0
        for tenant in seq:
            d = acquire(tenant)
            if d.granted:
                release(d.permit)  # the call is instantaneous
                granted += 1
        return granted
    return run, lim.close


def _make_limits(strategy_cls: Any) -> Tuple[RunFn, Callable[[], None]]:
    storage = MemoryStorage()  # as users run it, background expiry thread included
    lim = strategy_cls(storage)
    hit = lim.hit
    minute, day = RateLimitItemPerMinute(BIG_LIMIT), RateLimitItemPerDay(BIG_LIMIT)

    def run(seq: Sequence[str]) -> int:
        granted = 0
        for tenant in seq:
            if hit(minute, tenant) and hit(day, tenant):  # Flask-Limiter's way: each limit in turn
                granted += 1
        return granted
    # The timer is re-armed by the next call that finds it stopped; none follows close().
    return run, storage.timer.cancel


def make_limits_moving() -> Tuple[RunFn, Callable[[], None]]:
    return _make_limits(MovingWindowRateLimiter)


def make_limits_sliding() -> Tuple[RunFn, Callable[[], None]]:
    return _make_limits(SlidingWindowCounterRateLimiter)


class TenantBuckets(BucketFactory):
    """One InMemoryBucket per tenant, created on first use: pyrate 4's per-name BucketFactory pattern (its README).
    In 4.x the factory stamps items with its own clock and create(bucket_class, *args) takes no clock; the buckets
    keep their default MonotonicClock for leaking, so the factory uses a MonotonicClock too (one time base)."""

    def __init__(self, clock: "AbstractClock", rates: List["Rate"]) -> None:
        self.clock = clock
        self.rates = rates
        self.buckets: Dict[str, AbstractBucket] = {}

    def wrap_item(self, name: str, weight: int = 1) -> "RateItem":
        return RateItem(name, self.clock.now(), weight=weight)

    def get(self, item: "RateItem") -> "AbstractBucket":
        bucket = self.buckets.get(item.name)
        if bucket is None:
            bucket = self.buckets[item.name] = self.create(InMemoryBucket, self.rates)
        return bucket


# pyrate 4 rejects a rate list whose limits do not strictly increase with the interval (ValueError "Invalid rate
# list"), so its day rate is one above BIG_LIMIT; with every call far below both limits this changes no work.
PYRATE_RATES = ((BIG_LIMIT, MINUTE_MS), (BIG_LIMIT + 1, DAY_MS))


def make_pyrate() -> Tuple[RunFn, Callable[[], None]]:
    factory = TenantBuckets(MonotonicClock(), [Rate(limit, ms) for limit, ms in PYRATE_RATES])
    lim = PyrateLimiter(factory)
    try_acquire = lim.try_acquire

    def run(seq: Sequence[str]) -> int:
        granted = 0
        for tenant in seq:
            # blocking=False: pyrate 4 blocks by default; with everything granted it never would, but the
            # non-blocking call is the like-for-like one (and cannot hide a sleep in the timing).
            if try_acquire(tenant, blocking=False) is True:
                granted += 1
        return granted
    # pyrate 4's Limiter.close() deregisters the buckets and stops the daemon leaker thread.
    return run, lim.close


CONTENDERS: List[Tuple[str, str, Callable[[], Tuple[RunFn, Callable[[], None]]]]] = [
    ("xeroguard %s" % xeroguard.__version__, "Limiter.acquire + release (ctypes)", make_xeroguard),
    ("limits %s" % dist_version("limits"), "MovingWindowRateLimiter.hit x2 (memory)", make_limits_moving),
    ("limits %s" % dist_version("limits"), "SlidingWindowCounterRateLimiter.hit x2 (memory)", make_limits_sliding),
    ("pyrate-limiter %s" % dist_version("pyrate-limiter"), "Limiter.try_acquire(blocking=False) (InMemoryBucket)",
     make_pyrate),
]


def bench_limiters(ops: int, repeats: int, tenant_counts: Sequence[int]) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    # Two rows share the limiter name (limits' two strategies): a contender is (limiter, api).
    keys = [(name, api) for name, api, _ in CONTENDERS]
    for n_tenants in tenant_counts:
        tenants = ["tenant-%04d" % i for i in range(n_tenants)]
        seq = [tenants[i % n_tenants] for i in range(ops)]
        times: Dict[Tuple[str, str], List[float]] = {key: [] for key in keys}
        for trial in range(repeats):
            # Rotate the order per trial so background noise (another process on the machine) spreads evenly.
            k = trial % len(CONTENDERS)
            for name, api, make in CONTENDERS[k:] + CONTENDERS[:k]:
                run, close = make()
                run(tenants)  # untimed: every tenant exists before the clock starts
                gc.collect()
                t0 = time.perf_counter()
                g = run(seq)
                times[(name, api)].append(time.perf_counter() - t0)
                close()
                if g != ops:  # the fairness rule: every call granted, so every limiter did the same work
                    raise AssertionError("%s %s granted %d of %d calls" % (name, api, g, ops))
        xg_key = keys[0]
        xg_ops = ops / statistics.median(times[xg_key])
        for name, api in keys:
            med, best = statistics.median(times[(name, api)]), min(times[(name, api)])
            rows.append({
                "scenario": "1 tenant" if n_tenants == 1 else "%d tenants round-robin" % n_tenants,
                "tenants": n_tenants,
                "limiter": name,
                "api": api,
                "ops": ops,
                "granted": ops,
                "repeats": repeats,
                "median_s": round(med, 6),
                "best_s": round(best, 6),
                "ops_per_s": round(ops / med),
                "ops_per_s_best": round(ops / best),
                "us_per_op": round(med / ops * 1e6, 3),
                "xeroguard_over_peer": None if (name, api) == xg_key else round(xg_ops / (ops / med), 3),
            })
        print("  limiters, %d tenant(s): done" % n_tenants, file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# classify


Headers = List[Tuple[str, str]]


ClassifyCase = Tuple[str, int, Headers, bytes, str, Optional[str]]


def classify_cases(shared: Path) -> List[ClassifyCase]:
    """(name, status, headers, body, expected category, text field read after classifying or None)."""
    fixture = shared / "fixtures" / "xero" / "400_validation_contact_duplicate_name.json"
    conformance = shared / "conformance" / "classify-cases.json"
    try:
        # Compact, as Xero sends it: 1,023 bytes.
        body_400 = json.dumps(json.loads(fixture.read_text()), separators=(",", ":")).encode()
        cases = {c["name"]: c for c in json.loads(conformance.read_text())["cases"]}
        ok = cases["seed_200_ok"]
    except (OSError, ValueError, KeyError) as exc:
        _die("cannot read the reference fixtures under %s (%s); pass --shared DIR" % (shared, exc))
    json_ct = ("Content-Type", "application/json; charset=utf-8")
    headers_429 = [  # a minute breach as Xero answers it: no body, the limit headers and Retry-After
        ("Retry-After", "42"), ("X-Rate-Limit-Problem", "minute"), ("X-MinLimit-Remaining", "0"),
        ("X-DayLimit-Remaining", "4890"), ("X-AppMinLimit-Remaining", "9950"),
    ]
    # A dozen headers, as a real response carries (the names Xero and its front end send; the values made up).
    headers_12 = [
        json_ct, ("Date", "Mon, 30 Nov 2026 14:00:00 GMT"), ("Server", "nginx"),
        ("Xero-Correlation-Id", "0f5e8d6a-1b2c-4d3e-8f9a-0b1c2d3e4f5a"), ("X-MinLimit-Remaining", "58"),
        ("X-DayLimit-Remaining", "4890"), ("X-AppMinLimit-Remaining", "9950"), ("Cache-Control", "no-cache"),
        ("Content-Length", str(len(body_400))), ("Connection", "keep-alive"),
        ("Strict-Transport-Security", "max-age=31536000"), ("X-Frame-Options", "SAMEORIGIN"),
    ]
    return [
        ("400 validation, %d B JSON" % len(body_400), 400, [json_ct], body_400, "validation_error", None),
        ("400 validation, %d B JSON, 12 headers" % len(body_400), 400, headers_12, body_400, "validation_error",
         None),
        # The same, reading a text field: the binding fetches the text fields on their first read.
        ("400 validation, %d B JSON, then .validation_messages" % len(body_400), 400, [json_ct], body_400,
         "validation_error", "validation_messages"),
        ("429 headers only", 429, headers_429, b"", "rate_limited", None),
        ("200 small JSON, %d B" % len(ok["body"].encode()), int(ok["status"]),
         [(str(k), str(v)) for k, v in ok["headers"]], ok["body"].encode(), "success", None),
    ]


def time_per_call(fn: Callable[[], Any], iterations: int, repeats: int) -> Tuple[float, float]:
    """(median, best) seconds per call over `repeats` timed loops of `iterations` calls."""
    fn()  # warm
    samples = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        samples.append((time.perf_counter() - t0) / iterations)
    return statistics.median(samples), min(samples)


def bench_classify(cases: Sequence[ClassifyCase], iterations: int, repeats: int) -> List[Dict[str, Any]]:
    rows = []
    for name, status, headers, body, expect, read in cases:
        got = xeroguard.classify(status, headers, body).category.value
        if got != expect:
            raise AssertionError("%s classified as %s, expected %s" % (name, got, expect))
        if read is None:
            def call() -> Any:
                return xeroguard.classify(status, headers, body)
        else:
            if not getattr(xeroguard.classify(status, headers, body), read):
                raise AssertionError("%s: %s is empty" % (name, read))

            def call() -> Any:
                return getattr(xeroguard.classify(status, headers, body), read)
        med, best = time_per_call(call, iterations, repeats)
        row: Dict[str, Any] = {
            "case": name, "status": status, "headers": len(headers), "body_bytes": len(body),
            "category": got, "iterations": iterations, "repeats": repeats,
            "classify_us": round(med * 1e6, 2), "classify_us_best": round(best * 1e6, 2),
            "json_loads_us": None, "json_loads_us_best": None, "classify_over_json_loads": None,
        }
        if body:
            jmed, jbest = time_per_call(lambda: json.loads(body), iterations, repeats)
            row.update(json_loads_us=round(jmed * 1e6, 2), json_loads_us_best=round(jbest * 1e6, 2),
                       classify_over_json_loads=round(med / jmed, 2))
        rows.append(row)
    print("  classify: done", file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few thousand operations (smoke test; writes to target/bench-smoke by default)")
    ap.add_argument("--ops", type=int, help="limiter calls per trial (default 20000; --quick 2000)")
    ap.add_argument("--repeats", type=int, help="timed trials per measurement (default 7; --quick 3)")
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared",
                    help="the reference directory with fixtures/ and conformance/ (default: ../shared)")
    ap.add_argument("--out", type=Path,
                    help="results directory (default bench/results; --quick target/bench-smoke), or a .json file")
    args = ap.parse_args(argv)
    ops = args.ops or (2_000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 7)
    iterations = 2_000 if args.quick else 10_000
    if ops >= BIG_LIMIT:
        _die("--ops must stay below %d so every call is granted" % BIG_LIMIT)

    cases = classify_cases(args.shared)  # fail on missing fixtures before minutes of work, not after
    t_start = time.perf_counter()
    limiter_rows = bench_limiters(ops, repeats, (1, 1000))
    classify_rows = bench_classify(cases, iterations, repeats)
    elapsed = time.perf_counter() - t_start

    notes = [
        "Times: time.perf_counter; each figure is the MEDIAN of %d timed trials (best also in the JSON); GC on, "
        "gc.collect() before each trial." % repeats,
        "Limiters: every window limit is %d (xeroguard: tenant minute, tenant day and the app window; margins and "
        "the 5-permit concurrency cap unchanged; pyrate's day rate is %d because pyrate 4 requires strictly "
        "increasing limits), so every call is granted (checked: granted == ops in every trial). All of them then "
        "take their 'window not full' path; the cost is one granted decision." % (BIG_LIMIT, PYRATE_RATES[1][0]),
        "Per op: xeroguard = acquire() + release() (two ctypes calls, a Decision object); limits = hit(minute "
        "item) + hit(day item) on one MemoryStorage; pyrate = one try_acquire(blocking=False) (both rates in one "
        "bucket).",
        "Each trial uses a fresh limiter of each kind; an untimed pass first touches every tenant, so tenant "
        "creation is not timed. Trials rotate the order of the %d contenders." % len(CONTENDERS),
        "limits %s MovingWindowRateLimiter keeps one list entry per call and window (inserted at the front, O(n)), "
        "and its MemoryStorage timer thread (10 ms, re-armed by the calls) replaces every list with a sliced copy "
        "on each pass: with 1 tenant each list grows to %d entries per trial, with 1000 tenants to ~%d, so its "
        "1-tenant cost depends on the trial size." % (dist_version("limits"), ops + 1, ops // 1000 + 1),
        "limits SlidingWindowCounterRateLimiter keeps two counters per key and window (the current and the "
        "previous clock-aligned window); a hit reads both and increments the current one (O(1) in the calls "
        "made, constant memory per key), approximate at window edges (see bench/exactness.py); the same timer "
        "thread scans the counters' expiries.",
        "pyrate %s: one InMemoryBucket per tenant from a BucketFactory (also for 1 tenant) stamping items with a "
        "MonotonicClock (the buckets' own default clock); while a bucket holds fewer items than its smallest "
        "limit, put() appends without searching the window (so here it never searches). Its daemon leaker thread (every 10 s) runs as usual; Limiter.close() stops it after each trial."
        % dist_version("pyrate-limiter"),
        "classify: xeroguard.classify(status, headers, body) through the binding (the headers joined into one "
        "NUL-separated buffer, xg_classify_flat filling xg_classification, the struct read into a Classification); the text fields "
        "(messages, lists, ids) are fetched from the library's JSON form on their first read, which the "
        "'then .validation_messages' row includes. Anchor: json.loads of the same body bytes (none for 429).",
    ]
    result = {
        "limiter_rows": limiter_rows,
        "classify_rows": classify_rows,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "xeroguard_library": xeroguard.library_version,
        "quick": args.quick,
        "statistic": "median",
        "elapsed_s": round(elapsed, 1),
        "notes": notes,
    }
    out = output_path(args.out, args.quick, "python-ops.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(limiter_rows, classify_rows, notes)
    print("\nPython %s; wrote %s in %.1f s%s" % (platform.python_version(), out, elapsed,
                                                 " (--quick)" if args.quick else ""))
    return 0


def _table(heads: Sequence[str], cells: Sequence[Sequence[str]], left: int) -> None:
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(s.ljust(widths[i]) if i < left else s.rjust(widths[i]) for i, s in enumerate(line))

    print(fmt(heads))
    print(fmt(["-" * w for w in widths]))
    for line in cells:
        print(fmt(line))


def print_tables(limiter_rows: Sequence[Dict[str, Any]], classify_rows: Sequence[Dict[str, Any]],
                 notes: Sequence[str]) -> None:
    print("\nLimiter decisions (all granted; median of trials)")
    _table(["scenario", "limiter", "api", "ops", "ops/s", "us/op", "xeroguard/peer"],
           [[r["scenario"], r["limiter"], r["api"], str(r["ops"]), "{:,}".format(r["ops_per_s"]),
             "%.2f" % r["us_per_op"],
             "-" if r["xeroguard_over_peer"] is None else "%.2fx" % r["xeroguard_over_peer"]]
            for r in limiter_rows], left=3)
    print("\nclassify per call (median of trials)")
    _table(["case", "xeroguard.classify us", "json.loads us", "classify/json.loads"],
           [[r["case"], "%.2f" % r["classify_us"],
             "-" if r["json_loads_us"] is None else "%.2f" % r["json_loads_us"],
             "-" if r["classify_over_json_loads"] is None else "%.1fx" % r["classify_over_json_loads"]]
            for r in classify_rows], left=1)
    print("\nNotes:")
    for n in notes:
        print("  - " + n)


if __name__ == "__main__":
    sys.exit(main())
