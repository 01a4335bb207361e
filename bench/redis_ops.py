#!/usr/bin/env python3
"""Shared limiters on one loopback Redis: what a decision costs, and what a tenant's full day costs in memory.

Contenders, all on the same redis-server (TCP 127.0.0.1, started here) in the same run:
  xeroguard (C)       bench/redis_acquire.c: xg_limiter_new_redis, acquire + release (no binding in the way)
  xeroguard (Python)  Limiter(limits, redis_url=..., key_prefix=...): acquire + release through the ctypes binding
  limits              RedisStorage + MovingWindowRateLimiter: hit(minute) + hit(day), each limit in turn
  PyrateLimiter       Limiter(RedisBucket.init([minute, day])): try_acquire(blocking=False), both rates in one script

Latency: one tenant, limits far above the calls made (every decision is granted), one thread; each decision timed
alone (perf_counter_ns; C: CLOCK_MONOTONIC) after an untimed warm-up, p50 / p99, and ops/s = decisions / total.
Redis CPU: CONFIG RESETSTAT before each contender's timed pass, then INFO commandstats: usec_per_call of the scripts
it ran (EVALSHA / EVAL) and script microseconds per decision. Memory: one tenant's keys after a full day window of
5000 calls (Xero's limits: 60 a minute, so each limiter's minute window holds its last calls too), MEMORY USAGE
... SAMPLES 0 summed over the tenant's keys; xeroguard's app-wide keys (limits, app-minute log) are listed apart.

Run:  bench/.venv/bin/python bench/redis_ops.py [--quick] [--out DIR]   (scripts/bench.sh runs it)
Writes redis-ops.json (bench/results/, or target/bench-smoke/ with --quick). --contenders picks some (debugging
only: the benchmark runs all four).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

from benchlib import HERE, die, dist_version, output_path

ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "bindings" / "python" / "tests"))

BIG_LIMIT = 1_000_000
DAY_CALLS = 5000
TENANT = "bench-tenant"
CONTENDERS = ("xeroguard-c", "xeroguard-python", "limits", "pyrate")


def _die(msg: str, code: int = 2) -> NoReturn:
    die("redis_ops.py", msg, code)


try:
    import redis as redis_py
    from redis_server import RedisServer
except Exception as exc:
    _die("cannot import redis / the test suite's redis_server helper (%s); run `bash bench/setup-venv.sh`" % exc)


# ---------------------------------------------------------------------------------------------------------------
# Redis bookkeeping


# The commands a client sends (the ones a script or function calls are counted inside these, and listed apart by
# INFO commandstats too, so only these are summed): scripts, functions and their loading, and xeroguard's release.
TOP_LEVEL = ("evalsha", "eval", "fcall", "fcall_ro", "function|load", "zrem")


def reset_stats(admin: Any) -> float:
    """Resets INFO commandstats; returns Redis's CPU seconds so far (INFO cpu is not reset)."""
    admin.config_resetstat()
    return process_cpu(admin)


def process_cpu(admin: Any) -> float:
    cpu = admin.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def command_stats(admin: Any, decisions: int, cpu_before: float) -> Dict[str, Any]:
    """Redis CPU since the reset: what INFO commandstats counts for the commands the client sent, per decision, and
    the whole server process's CPU (INFO cpu: with reading requests and writing replies, which commandstats leaves
    out), per decision."""
    cpu = process_cpu(admin)
    stats = admin.info("commandstats")
    sent = {name[len("cmdstat_"):]: s for name, s in stats.items() if name[len("cmdstat_"):] in TOP_LEVEL}
    calls = sum(int(s["calls"]) for s in sent.values())
    usec = sum(int(s["usec"]) for s in sent.values())
    return {
        "commands_per_decision": round(calls / decisions, 2),
        "usec_per_command": {name: float(s["usec_per_call"]) for name, s in sent.items()},
        "redis_usec_per_decision": round(usec / decisions, 2),
        "failed_calls": sum(int(s.get("failed_calls", 0)) for s in sent.values()),
        "process_cpu_usec_per_decision": round((cpu - cpu_before) * 1e6 / decisions, 2),
    }


def memory_of(admin: Any, pattern: str) -> Dict[str, int]:
    """MEMORY USAGE ... SAMPLES 0 of every key matching `pattern` (SCAN)."""
    out: Dict[str, int] = {}
    for key in admin.scan_iter(match=pattern, count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        used = admin.memory_usage(name, samples=0)
        if used is not None:
            out[name] = int(used)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Timing


def time_decisions(decide: Callable[[], bool], ops: int) -> Dict[str, Any]:
    warm = ops // 10 + 1
    for _ in range(warm):
        if not decide():
            _die("a warm-up decision was refused: the limits should admit every call")
    took: List[int] = []
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(ops):
        t0 = clock()
        granted = decide()
        took.append(clock() - t0)
        if not granted:
            _die("a decision was refused: the limits should admit every call")
    total = clock() - start
    took.sort()
    return {"ops": ops, "p50_us": round(took[(ops - 1) // 2] / 1000, 2),
            "p99_us": round(took[(ops * 99 + 99) // 100 - 1] / 1000, 2),
            "ops_per_s": round(ops * 1e9 / total)}


# ---------------------------------------------------------------------------------------------------------------
# xeroguard through C (bench/redis_acquire.c)


def build_c_program(work: Path) -> Path:
    subprocess.run(["cargo", "build", "--release", "--lib", "--quiet"], cwd=ROOT, check=True)
    lib_dir = ROOT / "target" / "release"
    lib = lib_dir / "libxeroguard.so"
    soname = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
    for line in soname.splitlines():
        if "(SONAME)" in line:
            link = lib_dir / line.split("[", 1)[1].split("]", 1)[0]
            if not link.exists():
                link.symlink_to("libxeroguard.so")  # as `make` and the C test suite leave it
    exe = work / "redis_acquire"
    done = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                           "-I", str(ROOT / "include"), str(HERE / "redis_acquire.c"), "-L", str(lib_dir),
                           "-lxeroguard", "-Wl,-rpath," + str(lib_dir), "-o", str(exe)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        _die("compiling bench/redis_acquire.c failed:\n" + done.stderr)
    return exe


def run_c(exe: Path, *args: str) -> Dict[str, Any]:
    done = subprocess.run([str(exe)] + list(args), capture_output=True, text=True)
    if done.returncode != 0:
        _die("%s %s failed: %s" % (exe.name, " ".join(args), done.stderr.strip()))
    result: Dict[str, Any] = json.loads(done.stdout)
    return result


def bench_xeroguard_c(exe: Path, url: str, admin: Any, ops: int) -> Dict[str, Any]:
    before = reset_stats(admin)
    row = run_c(exe, "latency", url, "lat-c", str(ops))
    # The program's untimed warm-up (a tenth as many) ran after the reset too: the same steady-state decisions.
    return dict(row, **command_stats(admin, ops + ops // 10 + 1, before))


# ---------------------------------------------------------------------------------------------------------------
# The Python contenders


def bench_xeroguard_python(url: str, admin: Any, ops: int) -> Dict[str, Any]:
    import dataclasses

    import xeroguard

    d = xeroguard.Limits.default()
    limits = dataclasses.replace(d, tenant_minute=dataclasses.replace(d.tenant_minute, limit=BIG_LIMIT),
                                 tenant_day=dataclasses.replace(d.tenant_day, limit=BIG_LIMIT),
                                 app_minute=dataclasses.replace(d.app_minute, limit=BIG_LIMIT))
    try:
        limiter = xeroguard.Limiter(limits, redis_url=url, key_prefix="lat-py")
    except TypeError as exc:
        _die("the Python binding has no shared (Redis) limiter (%s): Limiter(limits, redis_url=..., key_prefix=...) "
             "is needed for this row" % exc)
    acquire, release = limiter.acquire, limiter.release

    def decide() -> bool:
        decision = acquire(TENANT)
        if decision.granted:
            release(decision.permit)
        return bool(decision.granted)

    for _ in range(ops // 10 + 1):
        decide()
    before = reset_stats(admin)
    row = time_decisions(decide, ops)
    limiter.close()
    return dict(row, **command_stats(admin, ops + ops // 10 + 1, before))


def bench_limits(url: str, admin: Any, ops: int) -> Dict[str, Any]:
    from limits import RateLimitItemPerDay, RateLimitItemPerMinute
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    limiter = MovingWindowRateLimiter(RedisStorage(url, key_prefix="lat-limits"))
    minute, day = RateLimitItemPerMinute(BIG_LIMIT), RateLimitItemPerDay(BIG_LIMIT)

    def decide() -> bool:
        return bool(limiter.hit(minute, TENANT) and limiter.hit(day, TENANT))  # each limit in turn, as Flask-Limiter

    for _ in range(ops // 10 + 1):
        decide()
    before = reset_stats(admin)
    row = time_decisions(decide, ops)
    return dict(row, **command_stats(admin, ops + ops // 10 + 1, before))


def pyrate_bucket(client: Any, key: str, minute_limit: int, day_limit: int) -> Any:
    from pyrate_limiter import Duration, Rate, RedisBucket

    return RedisBucket.init([Rate(minute_limit, Duration.MINUTE), Rate(day_limit, Duration.DAY)], client, key)


def bench_pyrate(port: int, admin: Any, ops: int) -> Dict[str, Any]:
    from pyrate_limiter import Limiter

    client = redis_py.Redis(host="127.0.0.1", port=port)
    # pyrate 4 needs strictly increasing limits across rates.
    limiter = Limiter(pyrate_bucket(client, "lat-pyrate:" + TENANT, BIG_LIMIT, BIG_LIMIT + 1))

    def decide() -> bool:
        return bool(limiter.try_acquire(TENANT, blocking=False))

    for _ in range(ops // 10 + 1):
        decide()
    before = reset_stats(admin)
    row = time_decisions(decide, ops)
    limiter.close()
    client.close()
    return dict(row, **command_stats(admin, ops + ops // 10 + 1, before))


# ---------------------------------------------------------------------------------------------------------------
# Memory at a full day window


def memory_xeroguard(exe: Path, url: str, admin: Any) -> Dict[str, Any]:
    filled = run_c(exe, "fill", url, "mem-xg", TENANT, str(DAY_CALLS))
    keys = {k: v for k, v in memory_of(admin, "xg:{mem-xg}:*").items() if ":op:" not in k}
    tenant = {k: v for k, v in keys.items() if ":t:" in k}
    return {"version": filled["version"], "tenant_bytes": sum(tenant.values()), "tenant_keys": tenant,
            "app_keys": {k: v for k, v in keys.items() if k not in tenant},
            "format": "packed 4-byte offsets in a string per window (day, minute)"}


def memory_limits(url: str, admin: Any) -> Dict[str, Any]:
    from limits import RateLimitItemPerDay, RateLimitItemPerMinute
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    limiter = MovingWindowRateLimiter(RedisStorage(url, key_prefix="mem-limits"))
    minute, day = RateLimitItemPerMinute(60), RateLimitItemPerDay(DAY_CALLS)
    # Its entries are timestamps of the calls; their spacing does not change their size. The day list gets all
    # 5000, the minute list the last 60 (what it holds after a day of calls at 60 a minute).
    for i in range(DAY_CALLS):
        if not limiter.hit(day, TENANT):
            _die("limits refused day call %d" % i)
    for _ in range(60):
        limiter.hit(minute, TENANT)
    keys = memory_of(admin, "mem-limits*")
    return {"tenant_bytes": sum(keys.values()), "tenant_keys": keys, "app_keys": {},
            "format": "a LIST of decimal timestamps per limit and key"}


def memory_pyrate(port: int, admin: Any) -> Dict[str, Any]:
    from pyrate_limiter import RateItem

    client = redis_py.Redis(host="127.0.0.1", port=port)
    bucket = pyrate_bucket(client, "mem-pyrate:" + TENANT, 60, DAY_CALLS)
    now = int(time.time() * 1000)
    # 5000 calls over the last ~1.5 h, 1.1 s apart so the minute rate admits each: the ZSET the day keeps.
    for i in range(DAY_CALLS):
        if not bucket.put(RateItem(TENANT, now - (DAY_CALLS - i) * 1100)):
            _die("PyrateLimiter refused call %d" % i)
    keys = memory_of(admin, "mem-pyrate:*")
    client.close()
    return {"tenant_bytes": sum(keys.values()), "tenant_keys": keys, "app_keys": {},
            "format": "a ZSET member (timestamp score + unique name) per call, all rates in one key"}


# ---------------------------------------------------------------------------------------------------------------
# Main


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: few decisions")
    p.add_argument("--ops", type=int, help="timed decisions per contender (default 20000; --quick 500)")
    p.add_argument("--out", type=Path, help="results directory (default bench/results; --quick target/bench-smoke)")
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help="comma-separated subset of %s (debugging only)" % ",".join(CONTENDERS))
    a = p.parse_args(argv)
    ops = a.ops or (500 if a.quick else 20_000)
    chosen = [c.strip() for c in a.contenders.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CONTENDERS))
    if unknown or not chosen:
        p.error("--contenders: unknown %s" % unknown)
    out = output_path(a.out, a.quick, "redis-ops.json")
    work = ROOT / "target" / "bench-redis"
    work.mkdir(parents=True, exist_ok=True)

    server = RedisServer(tcp=True)
    try:
        server.start()
    except RuntimeError as exc:
        _die(str(exc))
    try:
        assert server.port is not None
        url = "redis://127.0.0.1:%d" % server.port
        admin = redis_py.Redis(host="127.0.0.1", port=server.port)
        version = admin.info("server")["redis_version"]
        exe = build_c_program(work) if "xeroguard-c" in chosen else None
        latency: List[Dict[str, Any]] = []
        memory: List[Dict[str, Any]] = []
        print("Redis %s on 127.0.0.1:%d; %d timed decisions per contender" % (version, server.port, ops), flush=True)
        runs: List[Tuple[str, str, str, Callable[[], Dict[str, Any]]]] = []
        if exe is not None:
            runs.append(("xeroguard-c", "xeroguard (C)", "acquire + release (C ABI)",
                         lambda: bench_xeroguard_c(exe, url, admin, ops)))
        if "xeroguard-python" in chosen:
            runs.append(("xeroguard-python", "xeroguard %s (Python)" % dist_version("xeroguard"),
                         "Limiter.acquire + release (ctypes)", lambda: bench_xeroguard_python(url, admin, ops)))
        if "limits" in chosen:
            runs.append(("limits", "limits %s" % dist_version("limits"),
                         "MovingWindowRateLimiter.hit x2 (RedisStorage)", lambda: bench_limits(url, admin, ops)))
        if "pyrate" in chosen:
            runs.append(("pyrate", "pyrate-limiter %s" % dist_version("pyrate-limiter"),
                         "Limiter.try_acquire(blocking=False) (RedisBucket)",
                         lambda: bench_pyrate(server.port, admin, ops)))
        for key, name, api, fn in runs:
            print("  latency: %-28s ... " % name, end="", flush=True)
            row = dict(fn(), key=key, limiter=name, api=api)
            if key == "xeroguard-c":
                row["limiter"] = "xeroguard %s (C)" % row.pop("version")
            latency.append(row)
            print("p50 %.0f µs, p99 %.0f µs, %d ops/s, Redis %.1f µs per decision (commandstats), %.1f µs (process)"
                  % (row["p50_us"], row["p99_us"], row["ops_per_s"], row["redis_usec_per_decision"],
                     row["process_cpu_usec_per_decision"]), flush=True)
        admin.flushall()
        mem_runs: List[Tuple[str, Callable[[], Dict[str, Any]]]] = []
        if exe is not None:
            mem_runs.append(("xeroguard", lambda: memory_xeroguard(exe, url, admin)))
        if "limits" in chosen:
            mem_runs.append(("limits %s" % dist_version("limits"), lambda: memory_limits(url, admin)))
        if "pyrate" in chosen:
            mem_runs.append(("pyrate-limiter %s" % dist_version("pyrate-limiter"),
                             lambda: memory_pyrate(server.port, admin)))
        for name, fn in mem_runs:
            row = dict(fn(), limiter=name)
            if "version" in row:
                row["limiter"] = "%s %s" % (name, row.pop("version"))
            memory.append(row)
            print("  memory:  %-28s %8d bytes per tenant (%s)" % (name, row["tenant_bytes"], row["format"]),
                  flush=True)
        admin.close()
    finally:
        server.stop()

    doc = {
        "benchmark": "shared limiters on one loopback Redis (bench/redis_ops.py)",
        "quick": a.quick,
        "redis": version,
        "transport": "TCP 127.0.0.1",
        "ops": ops,
        "day_calls": DAY_CALLS,
        "latency": latency,
        "memory": memory,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "notes": [
            "Latency: one tenant, one thread, window limits of %d (every decision granted; the windows grow with "
            "the calls, up to the decisions made); each decision timed alone after an untimed warm-up of a tenth as "
            "many. A decision is xeroguard's acquire + release (two scripts: the permit is given back), limits' "
            "hit on the minute then the day item (two scripts), pyrate's try_acquire (one script)." % BIG_LIMIT,
            "Redis CPU: CONFIG RESETSTAT before each timed pass; EVALSHA/EVAL usec from INFO commandstats (they "
            "include the commands the scripts call), divided by the decisions made after the reset. EVAL is a "
            "script's first call on a server that has not cached it (it compiles the script); then EVALSHA.",
            "Memory: MEMORY USAGE key SAMPLES 0 after %d calls of one tenant within a day; xeroguard's counts the "
            "tenant's own keys (its app-wide limits and app-minute log are shared by every tenant and listed apart; "
            "the op-result keys for retried operations expire within seconds and are left out)." % DAY_CALLS,
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print("results: %s" % os.path.relpath(out, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
