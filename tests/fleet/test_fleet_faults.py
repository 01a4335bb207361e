"""Issue 20's many-process run: a fleet sharing tenants through one Redis, in real time, through a Redis stall and
an empty restart, checked against the Xero-like server's arrival log (an independent record: the server counts what
arrives, not what the limiter believes).

    bindings/python/.venv/bin/python -m pytest -s tests/fleet/test_fleet_faults.py    (the fleet stage runs it)

Workers: two per language (tests/fleet: worker.c, Worker.cs, worker.py, worker.mjs; XEROGUARD_FLEET_LANGUAGES
narrows them for debugging), one thread or task per tenant each, under the default failure policy (closed); the
breaker opens after 3 failures in a row and probes after BREAKER_COOLDOWN_MS (scaled like the windows, see there).
What a worker does when the store is out of reach is what an app does: it waits and asks again. The library's
waits do that: under `closed` an outage is a refusal (reason store_unavailable) whose wait is the cooldown, not an
error, so a worker waits through it as through a full window.

The run, on the server's clock (ms after GO):
- STALL_AT: the redis-server is SIGSTOPped for STALL_MS, then SIGCONTed;
- KILL_AT: as soon as the app window has just filled (the most calls for the store to forget), it is killed
  (SIGKILL) and, RESTART_GAP_MS later, started EMPTY on the same socket (no persistence);
- RUN_MS: the workers stop asking (calls already granted still go).

Checks:
(a) before the kill (the stall and the healthy time around it): the server answered 0 x 429, and in its arrival
    log no tenant's 1 s or 10 s rolling window and no app 1 s window holds more than its limit;
(b) after the store answers again (SIGCONT; the restart answering PING) every tenant's next call arrives within
    the breaker's cooldown + 1 s. (The acquires that timed out during the stall run when Redis wakes and count in
    the windows, though their permits are given back: when they fill the app window, the next call waits for it
    to roll, a window plus the margin, 1.1 s.)
(c) no worker reports an error (worker.c fails a release that does not return OK; the guards of the other
    languages raise nothing once a response exists) and every worker called after the restart;
(d) across the empty restart the store forgot every call of the windows; the workers learn the server's counts
    from the X-*-Remaining headers and from 429s. The 429s per tenant from the kill on are printed and bounded by
    the tenant's minute limit: with 2 calls in flight at most, every response teaches the store what the server
    counts and every 429 blocks its scope for its Retry-After, so a tenant cannot keep meeting 429s for long; the
    bound holds for any sane rule for the phantom calls from those headers (README: at now in windows up to a
    minute, spread over longer ones).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from arrivals import spread_summary, worst_window  # noqa: E402
from harness import (APP, DAY, LANGUAGES, MINUTE, ROOT, RedisServer, Worker, XeroLikeServer,  # noqa: E402
                     pair_of_workers_per_language, run_fleet, worker_args, xero_like_server)
from harness import redis  # noqa: E402,F401 (a fixture: pytest finds it here)

TENANTS = ["fault-tenant-%d" % i for i in range(1, 6)]  # the fleet's shape: harness.py
# The margin on every window covers how much later one call arrives after its send than another. The first calls
# of the Python workers after the stall arrived up to 81 ms after they left the guard (every other call within
# 32 ms), beyond test_fleet.py's 40 ms: a rolling app window then held 21 calls (2 runs of 25). The margin costs
# only throughput, which this test does not measure; the delays are printed (send_to_arrival_ms).
FAULT_MARGIN_MS = 100
# The breaker's cooldown (xg_redis_options.breaker_cooldown_ms; README "The breaker"), scaled like the windows: the
# default 1 s is a 60th of Xero's minute, and an outage lasts at least a cooldown for a worker whose breaker opened,
# so with the default every 1 s "minute" the store forgot would have emptied before anyone asked again.
BREAKER_COOLDOWN_MS = 300
GRANT_AFTER_RECOVERY_MS = BREAKER_COOLDOWN_MS + 1000
STALL_AT_MS = 2500
STALL_MS = 1000
KILL_AT_MS = 6500
RESTART_GAP_MS = 200
BURST_MS = 50
RUN_MS = 11_000
MAX_429_PER_TENANT_ACROSS_RESTART = MINUTE[0]
OUT = ROOT / "target" / "fleet-faults"


@pytest.fixture
def xero() -> Iterator[XeroLikeServer]:
    with xero_like_server(seed=20) as server:
        yield server


class Faults:
    """Drives the store's faults on the run's timeline and notes when each happened, on the server's clock (the
    one its arrival log uses)."""

    def __init__(self, redis: RedisServer, xero: XeroLikeServer) -> None:
        self.redis = redis
        self.xero = xero
        self.go_ms = 0.0
        self.at: Dict[str, float] = {}

    def now_ms(self) -> float:
        return self.xero.state.now_ms()

    def sleep_until(self, run_ms: float) -> None:
        time.sleep(max(0.0, (self.go_ms + run_ms - self.now_ms()) / 1000.0))

    def wait_for_burst(self) -> float:
        """Waits (at most a window) until the app's window has just filled: half its limit arrived within
        BURST_MS. Killing the store then makes it forget the most calls the server still counts. Returns when the
        burst's last call arrived."""
        deadline = self.now_ms() + APP[1]
        while True:
            now = self.now_ms()
            with self.xero.state.lock:  # the log's tail only: the server's threads wait for this lock
                tail = [e["t_ms"] for e in self.xero.state.log[-APP[0]:]]
            recent = [t for t in tail if t >= now - BURST_MS]
            if len(recent) >= APP[0] // 2 or now >= deadline:
                return max(recent, default=now)
            time.sleep(0.005)

    def run(self) -> None:
        self.go_ms = self.now_ms()
        self.sleep_until(STALL_AT_MS)
        self.redis.pause()
        self.at["stalled"] = self.now_ms()
        self.sleep_until(STALL_AT_MS + STALL_MS)
        self.at["resumed"] = self.now_ms()  # before SIGCONT: the delays measured from here are not too short
        self.redis.resume()
        self.sleep_until(KILL_AT_MS)
        self.at["burst"] = self.wait_for_burst()
        self.at["killed"] = self.now_ms()
        self.redis.kill()
        time.sleep(RESTART_GAP_MS / 1000.0)
        self.redis.restart()  # empty: the server keeps nothing (no AOF, no RDB)
        self.at["restarted"] = self.now_ms()  # it answers PING
        self.sleep_until(RUN_MS)


def first_arrivals_after(log: List[Dict[str, Any]], since_ms: float) -> Dict[str, Optional[float]]:
    """Per tenant, how long after since_ms its first call arrived (None: none did)."""
    first: Dict[str, Optional[float]] = {t: None for t in TENANTS}
    for e in log:
        tenant = e["tenant"]
        if e["t_ms"] >= since_ms and tenant in first and first[tenant] is None:
            first[tenant] = round(e["t_ms"] - since_ms, 1)
    return first


def send_to_arrival_ms(workers: List[Worker], log: List[Dict[str, Any]], server_started: float) -> Dict[str, Any]:
    """Per language, how long calls took from leaving the guard to arriving (ms; min/p50/p99/max): sends and
    arrivals are both on CLOCK_MONOTONIC (no worker here runs on a moved clock)."""
    arrivals = {e["path"].rsplit("/", 1)[-1]: e["t_ms"] for e in log}
    delays: Dict[str, List[float]] = {}
    for w in workers:
        for seq, sent_ms, _status in w.result["calls"]:
            arrived = arrivals.get("%s-%d" % (w.id, seq))
            if arrived is not None:
                delays.setdefault(w.language, []).append(server_started * 1000.0 + arrived - sent_ms)
    return {language: spread_summary(d) for language, d in sorted(delays.items())}


def test_fleet_through_a_stall_and_an_empty_restart(redis: RedisServer, xero: XeroLikeServer,
                                                     tmp_path: Path) -> None:
    workers = pair_of_workers_per_language(tmp_path)
    common = worker_args(redis, "faults", xero, TENANTS, FAULT_MARGIN_MS) + [
        "--breaker-cooldown-ms", str(BREAKER_COOLDOWN_MS)]
    faults = Faults(redis, xero)
    run_fleet(workers, common, xero, RUN_MS, faults.run)
    log = sorted(xero.log(), key=lambda e: e["t_ms"])
    at = faults.at

    before_kill = [e for e in log if e["t_ms"] < at["killed"]]
    after_kill = [e for e in log if e["t_ms"] >= at["killed"]]
    admitted_before = [e for e in before_kill if e["status"] == 200]
    by_tenant: Dict[str, List[float]] = {t: [] for t in TENANTS}
    for e in admitted_before:
        by_tenant[e["tenant"]].append(e["t_ms"])
    count_429_across_restart = {t: 0 for t in TENANTS}
    problems_across_restart: Dict[str, int] = {}
    for e in after_kill:
        if e["status"] == 429:
            count_429_across_restart[e["tenant"]] += 1
            problems_across_restart[e["problem"]] = problems_across_restart.get(e["problem"], 0) + 1
    summary: Dict[str, Any] = {
        "faults_ms_after_go": {k: round(v - faults.go_ms, 1) for k, v in at.items()},
        "calls_by_worker": {w.id: len(w.result["calls"]) for w in workers},
        "statuses_before_kill": sorted({e["status"] for e in before_kill}),
        "count_429_before_kill": sum(1 for e in before_kill if e["status"] == 429),
        "arrivals_during_stall": sum(1 for e in log if at["stalled"] <= e["t_ms"] < at["resumed"]),
        "worst_tenant_minute": {t: worst_window(v, MINUTE[1]) for t, v in by_tenant.items()},
        "worst_tenant_day": {t: worst_window(v, DAY[1]) for t, v in by_tenant.items()},
        "worst_app_minute": worst_window([e["t_ms"] for e in admitted_before], APP[1]),
        "first_arrival_after_stall_ms": first_arrivals_after(log, at["resumed"]),
        "first_arrival_after_restart_ms": first_arrivals_after(log, at["restarted"]),
        "count_429_across_restart": count_429_across_restart,
        "problems_across_restart": problems_across_restart,
        "admitted_after_restart": sum(1 for e in log if e["t_ms"] >= at["restarted"] and e["status"] == 200),
        "last_arrival_ms_after_go": round(log[-1]["t_ms"] - faults.go_ms, 1) if log else None,
        "send_to_arrival_ms": send_to_arrival_ms(workers, log, xero.state.started),
    }
    print("\nfleet through faults: %d workers (%s), %d tenants; stall %d ms at %d ms, kill at %d ms, empty restart "
          "%d ms later; run %d ms" % (len(workers), ", ".join(LANGUAGES), len(TENANTS), STALL_MS, STALL_AT_MS,
                                      KILL_AT_MS, RESTART_GAP_MS, RUN_MS))
    for key, value in summary.items():
        print("  %s: %s" % (key, json.dumps(value)))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "arrivals.json").write_text(json.dumps(log))
    (OUT / "workers.json").write_text(json.dumps([w.result for w in workers]))
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))

    # (c) nobody failed, and everyone kept calling after the restart.
    for w in workers:
        assert not w.result["errors"], "worker %s reported errors: %s" % (w.id, w.result["errors"])
    after_restart = {e["path"].rsplit("/", 1)[-1].split("-")[0] for e in log if e["t_ms"] >= at["restarted"]}
    assert after_restart >= {w.id for w in workers}, "workers without a call after the restart: %s" \
        % sorted({w.id for w in workers} - after_restart)
    # (a) the stall broke no limit.
    assert summary["count_429_before_kill"] == 0, "429s before the kill: %s" % [
        (e["t_ms"], e["tenant"], e["problem"]) for e in before_kill if e["status"] == 429]
    assert summary["statuses_before_kill"] == [200], "statuses before the kill: %s" % summary["statuses_before_kill"]
    for tenant, worst in summary["worst_tenant_minute"].items():
        assert worst <= MINUTE[0], "%s: %d calls in one rolling %d ms window" % (tenant, worst, MINUTE[1])
    for tenant, worst in summary["worst_tenant_day"].items():
        assert worst <= DAY[0], "%s: %d calls in one rolling %d ms window" % (tenant, worst, DAY[1])
    assert summary["worst_app_minute"] <= APP[0], "app: %d calls in one rolling window" % summary["worst_app_minute"]
    # (b) every tenant is granted soon after the store answers again.
    for moment in ("stall", "restart"):
        for tenant, delay in summary["first_arrival_after_%s_ms" % moment].items():
            assert delay is not None and delay <= GRANT_AFTER_RECOVERY_MS, \
                "%s: first call %s ms after the %s ended (bound %d ms)" % (tenant, delay, moment,
                                                                          GRANT_AFTER_RECOVERY_MS)
    # (d) the empty restart costs a bounded number of 429s.
    for tenant, count in count_429_across_restart.items():
        assert count <= MAX_429_PER_TENANT_ACROSS_RESTART, \
            "%s: %d 429s across the empty restart (bound %d)" % (tenant, count, MAX_429_PER_TENANT_ACROSS_RESTART)
