"""Issue 12's fleet test: many processes in three languages share tenants through one Redis, in real time, against
the local Xero-like server, some of them on a skewed clock.

    bindings/python/.venv/bin/python -m pytest -s tests/fleet        (scripts/test.sh runs it after the C# suite)

What runs, at the same time, for RUN_MS: C workers (tests/fleet/worker.c: xg_limiter_new_redis, acquire_wait, a
keep-alive HTTP/1.1 client, observe_raw, release), C# workers under Mono (tests/fleet/Worker.cs: XeroGuardHandler
over a Redis Limiter), Python workers (tests/fleet/worker.py: XeroGuardTransport over
xeroguard.Limiter(limits, redis_url=..., key_prefix=...)) and Node workers (tests/fleet/worker.mjs: guardFetch over
a Redis Limiter of the npm package). One worker of each language runs under faketime with its clock moved by
SKEWS. All use one key prefix and the same TENANTS, with a thread (or task) per tenant each, so every tenant has
more callers than its concurrency limit.

The shape of the limits. Real time cannot be scaled, so the windows are short with Xero's shape: per tenant 6 per
1 s ("minute"), 50 per 10 s ("day") and 2 in flight, per app 20 per 1 s. Windows of 1 s rather than 600 ms because
a call's send-to-arrival delay on a loaded 2-core machine varies by a few ms typically and by tens of ms at worst
(a Mono or Python thread waiting to be scheduled): the margin that covers that must stay small beside the window,
or it costs throughput. The app window (20/s) is below the tenants' sum (24/s), so tenants compete for it, and the
day window (50/10 s) binds as soon as a tenant gets more than its share.

Checks: every worker ran without error; a skewed worker's clock really was skewed; the server answered 0 x 429
(nothing but 200s); in its arrival log no tenant's 1 s or 10 s window and no app 1 s window (rolling, half-open, at
the server's window lengths) holds more than its limit; the server never saw more than 2 calls of a tenant in
flight; and the calls that arrived in the first SPAN_WINDOWS whole windows after the first arrival are at least
99 % of the ceiling: the most an exact rolling limiter could admit in a span that long, found by a greedy
simulation (arrivals.greedy_ceiling; it equals the per-window bound here, so it is the maximum). The span ends
before the workers stop, so no partly-run window at the end counts against them.

XEROGUARD_FLEET_LANGUAGES (default c,csharp,python,node) narrows the run to some languages, for debugging only: the
test command runs all four.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from arrivals import greedy_ceiling, spread_summary, window_bound, worst_window  # noqa: E402
from harness import (APP, CONCURRENCY, DAY, LANGUAGES, MARGIN_MS, MINUTE, ROOT, RedisServer, Worker,  # noqa: E402
                     XeroLikeServer, pair_of_workers_per_language, run_fleet, worker_args, xero_like_server)
from harness import redis  # noqa: E402,F401 (a fixture: pytest finds it here)

TENANTS = ["fleet-tenant-%d" % i for i in range(1, 6)]
RUN_MS = 15_000
SPAN_WINDOWS = 14  # the measured span: this many app windows from the first arrival, all before the workers stop
MIN_SHARE_OF_CEILING = 0.99
# One worker of each language on a skewed clock: decisions use Redis's clock, so this must change nothing.
SKEWS = {"c": "+5s", "csharp": "-3s", "python": "+5s", "node": "-3s"}
SKEW_SECONDS = {"+5s": 5.0, "-3s": -3.0}
OUT = ROOT / "target" / "fleet"


# --------------------------------------------------------------------------------------------------------------
# The checks' own arithmetic, on data where the answer is known (a check that cannot fail proves nothing).


def test_worst_window_counts_half_open_windows() -> None:
    assert worst_window([], 1000) == 0
    assert worst_window([0, 999.9, 1000], 1000) == 2  # 1000 starts the next window
    assert worst_window([5, 0, 400, 1200, 1300, 1399], 1000) == 4  # unsorted input; [400, 1400) holds 4
    assert worst_window([5, 0, 400, 1400, 1500], 1000) == 3  # [0, 1000) holds 3, [400, 1400) 2
    assert worst_window([0.0] * 7, 1000) == 7


def test_greedy_ceiling_is_the_window_bound_for_the_fleet_shape() -> None:
    # One tenant, one window: 6 at 0, 6 at 1000, ... ; a span of 2.5 windows holds 3 bursts.
    assert greedy_ceiling(2500, 1, [(6, 1000)], []) == 18
    # The fleet's shape: the app window (20/s) binds before the tenants' (4 x 6/s) and their day (4 x 50/10 s).
    span = SPAN_WINDOWS * APP[1]
    ceiling = greedy_ceiling(span, len(TENANTS), [MINUTE, DAY], [APP])
    assert ceiling == window_bound(span, [APP]) == 20 * SPAN_WINDOWS
    # With a day window that binds: 2 tenants x 8 per 10 s over 14 s = 2 x 16.
    assert greedy_ceiling(14_000, 2, [(6, 1000), (8, 10_000)], [(20, 1000)]) == 32


@pytest.fixture
def xero() -> Iterator[XeroLikeServer]:
    # On the unskewed workers' clock, so send-to-arrival delays can be measured.
    with xero_like_server(seed=12) as server:
        yield server


# --------------------------------------------------------------------------------------------------------------
# The run


def test_fleet_shares_the_limits_through_redis(redis: RedisServer, xero: XeroLikeServer, tmp_path: Path) -> None:
    workers = pair_of_workers_per_language(tmp_path, SKEWS)
    common = worker_args(redis, "fleet", xero, TENANTS)
    run_fleet(workers, common, xero, RUN_MS)
    log = xero.log()
    stats = xero.stats()
    summary = analyse(workers, log, stats, xero.state.started)
    print_summary(summary)
    # For a look afterwards (target/ is not committed): every arrival, every worker's calls, the figures.
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "arrivals.json").write_text(json.dumps(log))
    (OUT / "workers.json").write_text(json.dumps([dict(w.result, skew=w.skew) for w in workers]))
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))

    for w in workers:
        assert not w.result["errors"], "worker %s reported errors: %s" % (w.id, w.result["errors"])
        assert w.result["calls"], "worker %s made no call" % w.id
        # The skew is real: the worker's wall clock differs from ours by it (a second's slack for the pipe).
        expected = SKEW_SECONDS.get(w.skew or "", 0.0)
        assert abs(w.ready_unix - w.harness_unix_at_ready - expected) < 1.5, \
            "worker %s: clock %.1f s off ours, expected %+.0f s" % (w.id, w.ready_unix - w.harness_unix_at_ready,
                                                                  expected)
    assert stats["count_429"] == 0, "429s: %s" % stats["by_problem"]
    assert set(stats["by_status"]) == {"200"}, "statuses other than 200: %s" % stats["by_status"]
    assert summary["unmatched_calls"] == 0, "calls the workers made that the server's log lacks"
    assert summary["log_entries_without_worker"] == 0, "arrivals no worker reported"
    for tenant, worst in summary["worst_tenant_minute"].items():
        assert worst <= MINUTE[0], "%s: %d calls in one rolling %d ms window" % (tenant, worst, MINUTE[1])
    for tenant, worst in summary["worst_tenant_day"].items():
        assert worst <= DAY[0], "%s: %d calls in one rolling %d ms window" % (tenant, worst, DAY[1])
    assert summary["worst_app_minute"] <= APP[0], "app: %d calls in one rolling window" % summary["worst_app_minute"]
    for tenant, most in stats["max_in_flight"].items():
        assert most <= CONCURRENCY, "%s: %d calls in flight at the server" % (tenant, most)
    assert summary["span_calls"] >= MIN_SHARE_OF_CEILING * summary["ceiling"], \
        "throughput %d of a ceiling of %d (%.1f %%)" % (summary["span_calls"], summary["ceiling"], summary["pct"])


def analyse(workers: Sequence[Worker], log: List[Dict[str, Any]], stats: Dict[str, Any],
            server_started: float) -> Dict[str, Any]:
    arrivals: Dict[str, Any] = {}  # the last path segment ("<worker id>-<seq>") -> its log entry
    for entry in log:
        arrivals[entry["path"].rsplit("/", 1)[-1]] = entry
    unmatched = 0
    delays: Dict[str, List[float]] = {}  # unskewed workers: arrival - send, both on CLOCK_MONOTONIC
    extra: Dict[str, List[float]] = {}  # every worker: the delay beyond that worker's quickest call
    calls_by_language: Dict[str, int] = {}
    for w in workers:
        calls_by_language[w.language] = calls_by_language.get(w.language, 0) + len(w.result["calls"])
        raw: List[float] = []
        for seq, sent_ms, _status in w.result["calls"]:
            entry = arrivals.pop("%s-%d" % (w.id, seq), None)
            if entry is None:
                unmatched += 1
            else:
                raw.append(server_started * 1000.0 + entry["t_ms"] - sent_ms)
        # A faketime'd worker's monotonic clock is moved by a constant: its delays count from its quickest call.
        if w.skew is None:
            delays.setdefault(w.language, []).extend(raw)
        extra.setdefault(w.language, []).extend(d - min(raw) for d in raw)
    ok = sorted((e for e in log if e["status"] == 200), key=lambda e: e["t_ms"])
    by_tenant: Dict[str, List[float]] = {t: [] for t in TENANTS}
    for e in ok:
        by_tenant.setdefault(e["tenant"], []).append(e["t_ms"])
    times = [e["t_ms"] for e in ok]
    span_ms = SPAN_WINDOWS * APP[1]
    span_calls = sum(1 for t in times if times and t < times[0] + span_ms)
    ceiling = greedy_ceiling(span_ms, len(TENANTS), [MINUTE, DAY], [APP])
    # The pace: how long the app takes for each 20 calls (the window plus what the run adds to it).
    cycles = [b - a for a, b in zip(times, times[APP[0]:])]
    all_extra = [d for ds in extra.values() for d in ds]
    return {
        "calls_by_language": calls_by_language,
        "calls_by_worker": {"%s%s" % (w.id, " (faketime %s)" % w.skew if w.skew else ""): len(w.result["calls"])
                            for w in workers},
        "admitted": len(ok),
        "count_429": stats["count_429"],
        "unmatched_calls": unmatched,
        "log_entries_without_worker": len(arrivals),
        "worst_tenant_minute": {t: worst_window(v, MINUTE[1]) for t, v in by_tenant.items()},
        "worst_tenant_day": {t: worst_window(v, DAY[1]) for t, v in by_tenant.items()},
        "worst_app_minute": worst_window(times, APP[1]),
        "max_in_flight": stats["max_in_flight"],
        "span_calls": span_calls,
        "ceiling": ceiling,
        "pct": 100.0 * span_calls / ceiling if ceiling else 0.0,
        "cycle_ms": {"min": round(min(cycles), 1), "median": round(sorted(cycles)[len(cycles) // 2], 1)}
        if cycles else {},
        "send_to_arrival_ms": {lang: spread_summary(ds) for lang, ds in sorted(delays.items())},
        "extra_delay_ms": {lang: spread_summary(ds) for lang, ds in sorted(extra.items())},
        "send_to_arrival_spread_ms": round(max(all_extra), 1) if all_extra else None,
    }


def print_summary(s: Dict[str, Any]) -> None:
    print("\nfleet: %d workers, %s, tenants %d, limits per tenant %d/%d ms + %d/%d ms + %d in flight, app %d/%d ms, "
          "margin %d ms, %d ms run" % (len(s["calls_by_worker"]), ", ".join(LANGUAGES), len(TENANTS), MINUTE[0],
                                      MINUTE[1], DAY[0], DAY[1], CONCURRENCY, APP[0], APP[1], MARGIN_MS, RUN_MS))
    print("  calls by language: %s" % ", ".join("%s %d" % kv for kv in s["calls_by_language"].items()))
    print("  calls by worker:   %s" % ", ".join("%s %d" % kv for kv in s["calls_by_worker"].items()))
    print("  429s: %d; admitted %d; max in flight per tenant %s" % (s["count_429"], s["admitted"],
                                                                   sorted(s["max_in_flight"].values())))
    print("  worst rolling windows: tenant %d ms %s (limit %d), tenant %d ms %s (limit %d), app %d ms %d (limit %d)"
          % (MINUTE[1], sorted(s["worst_tenant_minute"].values()), MINUTE[0], DAY[1],
             sorted(s["worst_tenant_day"].values()), DAY[0], APP[1], s["worst_app_minute"], APP[0]))
    print("  throughput: %d calls in the first %d ms after the first arrival = %.1f %% of the ceiling %d (greedy "
          "exact rolling limiter); %d calls take %s ms (the window is %d)"
          % (s["span_calls"], SPAN_WINDOWS * APP[1], s["pct"], s["ceiling"], APP[0], s["cycle_ms"], APP[1]))
    print("  send-to-arrival delay, unskewed workers, ms: %s" % json.dumps(s["send_to_arrival_ms"]))
    print("  delay beyond each worker's quickest call, every worker, ms: %s" % json.dumps(s["extra_delay_ms"]))
    print("  the most a call arrived later than another: %s ms (the margin is %d ms)"
          % (s["send_to_arrival_spread_ms"], MARGIN_MS))
