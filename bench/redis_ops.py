#!/usr/bin/env python3
"""Shared limiters on one loopback Redis: what a decision costs, and what a tenant's full day costs in memory.

Contenders, all on the same redis-server (TCP 127.0.0.1, started here) in the same run:
  xeroguard (C)       bench/redis_acquire.c: xg_limiter_new_redis, acquire + release (no binding in the way)
  xeroguard (Python)  Limiter(limits, redis_url=..., key_prefix=...): acquire + release through the ctypes binding
  limits              RedisStorage + MovingWindowRateLimiter: hit(minute) + hit(day), each limit in turn
  PyrateLimiter       Limiter(RedisBucket.init([minute, day])): try_acquire(blocking=False), both rates in one script

Latency: one tenant, limits far above the calls made (every decision is granted), one thread; each decision timed
alone (perf_counter_ns; C: CLOCK_MONOTONIC) after an untimed warm-up, p50 / p99, and ops/s = decisions / total.
Redis CPU: CONFIG RESETSTAT before each contender's timed pass, then INFO commandstats: the microseconds of every
command the client sent (FCALL / EVALSHA / EVAL, FUNCTION LOAD, xeroguard's release HDEL) per decision; and the
server process's CPU (INFO cpu) per decision, which also counts reading requests and writing replies. xeroguard
runs as a Functions library (Redis 7) and, in a row of its own, as scripts (an ACL user without function|load, as on
Redis 6). Memory: one tenant's state after a full day window of 5000 calls (Xero's limits: 60 a minute, so each
limiter's minute window holds its last calls too), MEMORY USAGE ... SAMPLES 0 summed over the tenant's keys;
xeroguard's tenant header, permits and results are fields of a state hash shared with the app: their share is what
the hash loses without them; its app-wide state is listed apart.
Also xeroguard alone: reserve latency with 0 to 2,000 calls already booked (Redis, server time from SLOWLOG, and the
in-process backend), the Redis commands per second while 100 threads in 4 processes wait for 5 slots (the library's
waits, and waiters that each ask every 25 ms, the policy before), and an alternative engine form measured: the
decision in the client over the state read as blobs and written back by a compare-and-set script (the store's part).

Run:  bench/.venv/bin/python bench/redis_ops.py [--quick] [--out DIR]   (scripts/bench.sh runs it)
Writes redis-ops.json (bench/results/, or target/bench-smoke/ with --quick). --contenders picks some (debugging
only: the benchmark runs all four).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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
RESERVE_BOOKINGS = (0, 500, 1000, 1500, 1999)  # 1,999 booked: the last reserve the cap (2,000) allows


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
# INFO commandstats too, so only these are summed): scripts, functions and their loading, and xeroguard's release
# (an HDEL; the rare HDEL of expired fields inside its scripts is then counted twice, against xeroguard).
TOP_LEVEL = ("evalsha", "eval", "fcall", "fcall_ro", "function|load", "hdel")


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


def median_row(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One contender's rounds as one row: each number the median over the rounds (a dict of numbers, key by key);
    ops summed."""
    out: Dict[str, Any] = {}
    for k, v in rows[0].items():
        if k == "ops":
            out[k] = sum(r[k] for r in rows)
        elif isinstance(v, bool) or not isinstance(v, (int, float, dict)):
            out[k] = v
        elif isinstance(v, dict):
            out[k] = {sub: statistics.median(r[k].get(sub, 0) for r in rows) for sub in v}
        else:
            out[k] = statistics.median(r[k] for r in rows)
    out["redis_usec_per_decision_by_round"] = [r["redis_usec_per_decision"] for r in rows]
    return out


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
                           "-lxeroguard", "-lpthread", "-Wl,-rpath," + str(lib_dir), "-o", str(exe)],
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


def scripts_user_url(admin: Any, port: int) -> str:
    """A user that may run everything but FUNCTION LOAD: xeroguard then sends its engine as scripts (Redis 6's form)."""
    admin.execute_command("ACL", "SETUSER", "scripts", "on", ">bench", "~*", "+@all", "-function")
    return "redis://scripts:bench@127.0.0.1:%d" % port


def bench_xeroguard_c(exe: Path, url: str, admin: Any, ops: int, prefix: str = "lat-c") -> Dict[str, Any]:
    before = reset_stats(admin)
    row = run_c(exe, "latency", url, prefix, str(ops))
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


def hash_share(admin: Any, key: str, fields: Sequence[bytes]) -> int:
    """What `fields` of hash `key` cost: its MEMORY USAGE less that of a copy without them."""
    rest = {f: v for f, v in admin.hgetall(key).items() if f not in set(fields)}
    admin.delete("bench-copy")
    if rest:
        admin.hset("bench-copy", mapping=rest)
    without = admin.memory_usage("bench-copy", samples=0) or 0
    admin.delete("bench-copy")
    return int(admin.memory_usage(key, samples=0)) - int(without)


def memory_xeroguard(exe: Path, url: str, admin: Any) -> Dict[str, Any]:
    filled = run_c(exe, "fill", url, "mem-xg", TENANT, str(DAY_CALLS))
    keys = memory_of(admin, "xg:{mem-xg}:*")
    rings = {k: v for k, v in keys.items() if ":t:" in k}
    state = "xg:{mem-xg}:2:s"
    fields = admin.hkeys(state)
    mine = [f for f in fields if f not in (b"a", b"c", b"e")]
    bookkeeping = [f.decode() for f in mine if f[:2] in (b"p:", b"r:")]
    share = hash_share(admin, state, mine)
    app = {k: v for k, v in keys.items() if k not in rings and k != state}
    app["%s (fields a, c, e: the app's)" % state] = int(keys.get(state, 0)) - share
    return {"version": filled["version"], "tenant_bytes": sum(rings.values()) + share,
            "tenant_keys": dict(rings, **{"%s: h:, c:, e:, p:, r: fields" % state: share}),
            "bookkeeping_fields": len(bookkeeping),
            "app_keys": app,
            "format": "4-byte instants in a ring per window (day, minute), hot, cold and envelope fields; 5 permits "
                      "held and a result kept (bookkeeping) included"}


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
# xeroguard alone: reserve latency, waits, an alternative engine form


def reserve_latency(exe: Path, url: str, admin: Any, step_ms: int = 0) -> Dict[str, Any]:
    """Booking ahead, one reserve after another for one tenant (Xero's limits: 60 a minute, so the 2,000th booking
    is over half an hour ahead): the latency of the reserve that finds 0, 500, ... calls already booked, from the
    client (Redis and in-process) and on the server (SLOWLOG at 0 µs records every command's time). With the clock
    still (`step_ms` 0) the bookings come in bursts of 60 at one instant; with it moving a millisecond after each
    reserve, one after another, each booked a window after the one 60 before it: a chain the search passes one call
    at a time (the costlier case)."""
    refusals = 10
    n = RESERVE_BOOKINGS[-1] + 1 + 60 + refusals  # the first 60 are booked for now, not ahead; the last 10 refused
    admin.config_set("slowlog-max-len", 100000)
    admin.config_set("slowlog-log-slower-than", 0)
    admin.slowlog_reset()
    prefix = "res%d" % step_ms
    redis_run = run_c(exe, "reserve", url, prefix, str(n), str(step_ms))
    logged = admin.slowlog_get(200000)
    admin.config_set("slowlog-log-slower-than", 10000)
    server = [e["duration"] for e in reversed(logged)
              if (e["command"][:5] in (b"FCALL", b"fcall")) and b"_reserve" in e["command"].split(b" ")[1]]
    memory_run = run_c(exe, "reserve", "-", prefix, str(n), str(step_ms))
    assert redis_run["refused"] == memory_run["refused"] == refusals, (redis_run["refused"], memory_run["refused"])
    rows = []
    for booked in RESERVE_BOOKINGS:
        i = 60 + booked  # the reserve that finds `booked` calls booked ahead
        around = slice(max(i - 9, 0), i + 1)  # it and the 9 before it
        rows.append({"booked_ahead": booked,
                     "redis_server_us": statistics.median(server[around]) if len(server) > i else None,
                     "redis_client_us": statistics.median(redis_run["latency_us"][around]),
                     "in_process_us": statistics.median(memory_run["latency_us"][around])})
    refused = slice(n - refusals, n)
    rows.append({"booked_ahead": "{:,}, refused".format(RESERVE_BOOKINGS[-1] + 1),
                 "redis_server_us": statistics.median(server[refused]) if len(server) >= n else None,
                 "redis_client_us": statistics.median(redis_run["latency_us"][refused]),
                 "in_process_us": statistics.median(memory_run["latency_us"][refused])})
    ranked = sorted(server)
    return {"reserves": n, "step_ms": step_ms, "rows": rows, "redis_server_max_us": max(server) if server else None,
            "redis_server_p99_us": ranked[int(len(ranked) * 0.99)] if server else None,
            "last_booking_ahead_min": round((redis_run["last_at_ms"] - step_ms * (n - refusals - 1)) / 60000, 1)}


def waits(exe: Path, url: str, admin: Any, seconds: int) -> List[Dict[str, Any]]:
    """100 threads in 4 processes wait for one tenant's 5 slots, each holding a slot 50 ms: the commands per second
    Redis runs, with the library's waits and with waiters that each ask every 25 ms on their own (the policy
    before)."""
    rows = []
    for mode, label in (("waiters", "acquire_wait (turns per process)"), ("pollers", "each waiter asks every 25 ms")):
        before = reset_stats(admin)
        procs = [subprocess.Popen([str(exe), mode, url, "wait-%s" % mode, "25", str(seconds), "50"],
                                  stdout=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [json.loads(p.communicate()[0]) for p in procs]
        stats = admin.info("commandstats")
        scripts = sum(int(v["calls"]) for k, v in stats.items() if k[len("cmdstat_"):] in ("fcall", "evalsha", "eval"))
        usec = sum(int(v["usec"]) for k, v in stats.items() if k[len("cmdstat_"):] in TOP_LEVEL)
        rows.append({"waiting": label, "processes": 4, "threads": 100, "seconds": seconds,
                     "scripts_per_s": round(scripts / seconds), "grants_per_s": round(sum(o["grants"] for o in outs) / seconds),
                     "redis_cpu_percent": round(usec / (seconds * 1e6) * 100, 1),
                     "process_cpu_percent": round((process_cpu(admin) - before) / seconds * 100, 1)})
    return rows


def blob_alternative(admin: Any, ops: int) -> Dict[str, Any]:
    """The other engine form: the client reads the tenant's and the app's state as blobs (xeroguard's sizes at
    Xero's limits: a full day window 20 KB, the app window 40 KB), decides, and writes them back with a
    compare-and-set script. Only the store's part is measured (the decision itself costs the client ~1 µs)."""
    cas = admin.script_load("""
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[2])
return 1""")
    tenant, app = b"t" * 20_480, b"a" * 40_000
    admin.mset({"blob:t": tenant, "blob:a": app, "blob:v": 0})
    took: List[int] = []
    before = reset_stats(admin)
    for i in range(ops):
        t0 = time.perf_counter_ns()
        pipe = admin.pipeline(transaction=False)
        pipe.get("blob:t")
        pipe.get("blob:a")
        pipe.get("blob:v")
        t, a, v = pipe.execute()
        ok = admin.evalsha(cas, 3, "blob:t", "blob:a", "blob:v", v, i + 1, t, a)
        took.append(time.perf_counter_ns() - t0)
        if ok != 1:
            _die("compare-and-set lost with one writer")
    cpu = (process_cpu(admin) - before) * 1e6 / ops
    stats = admin.info("commandstats")
    usec = sum(int(v["usec"]) for k, v in stats.items() if k[len("cmdstat_"):] in ("get", "evalsha"))
    took.sort()
    return {"ops": ops, "round_trips": 2, "bytes_moved": 2 * (len(tenant) + len(app)),
            "redis_usec_per_decision": round(usec / ops, 2), "process_cpu_usec_per_decision": round(cpu, 2),
            "p50_us": round(took[(ops - 1) // 2] / 1000, 2)}


# ---------------------------------------------------------------------------------------------------------------
# Main


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: few decisions")
    p.add_argument("--ops", type=int, help="timed decisions per contender (default 20000; --quick 500)")
    p.add_argument("--out", type=Path, help="results directory (default bench/results; --quick target/bench-smoke)")
    p.add_argument("--rounds", type=int, help="rounds of every contender, interleaved (default 5; --quick 1)")
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help="comma-separated subset of %s (debugging only)" % ",".join(CONTENDERS))
    a = p.parse_args(argv)
    ops = a.ops or (500 if a.quick else 20_000)
    a.rounds = a.rounds or (1 if a.quick else 5)
    ops = max(ops // a.rounds, 1)  # per contender and round
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
        print("Redis %s on 127.0.0.1:%d; %d timed decisions per contender, in %d rounds"
              % (version, server.port, ops * a.rounds, a.rounds), flush=True)
        runs: List[Tuple[str, str, str, Callable[[], Dict[str, Any]]]] = []
        if exe is not None:
            runs.append(("xeroguard-c", "xeroguard (C)", "acquire + release (C ABI)",
                         lambda: bench_xeroguard_c(exe, url, admin, ops)))
            scripts_url = scripts_user_url(admin, server.port)
            runs.append(("xeroguard-c-scripts", "xeroguard (C, scripts)", "acquire + release, EVALSHA (Redis 6's form)",
                         lambda: bench_xeroguard_c(exe, scripts_url, admin, ops, "lat-c-scripts")))
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
        # Rounds, each contender once per round in a rotating order: the medians over rounds, so that a change in
        # the machine's load during the run weighs on every contender alike.
        rounds: Dict[str, List[Dict[str, Any]]] = {key: [] for key, _, _, _ in runs}
        for i in range(a.rounds):
            print("  round %d of %d" % (i + 1, a.rounds), flush=True)
            for key, _, _, fn in runs[i % len(runs):] + runs[:i % len(runs)]:
                rounds[key].append(fn())
        for key, name, api, _ in runs:
            print("  latency: %-28s ... " % name, end="", flush=True)
            row = dict(median_row(rounds[key]), key=key, limiter=name, api=api, rounds=a.rounds)
            if key.startswith("xeroguard-c"):
                row["limiter"] = name.replace("xeroguard", "xeroguard %s" % row.pop("version"))
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
        reserve = reserve_moving = waits_rows = alternative = None
        if exe is not None:
            admin.flushall()
            print("  reserve latency with calls booked ahead ...", flush=True)
            reserve = reserve_latency(exe, url, admin)
            reserve_moving = reserve_latency(exe, url, admin, 1)
            for label, res in (("clock still", reserve), ("clock moving 1 ms per reserve", reserve_moving)):
                print("    %s:" % label, flush=True)
                for r in res["rows"]:
                    print("    %12s booked: Redis %s µs on the server, %.0f µs at the client; in process %.1f µs"
                          % (r["booked_ahead"], r["redis_server_us"], r["redis_client_us"], r["in_process_us"]),
                          flush=True)
            print("  100 waiters in 4 processes ...", flush=True)
            waits_rows = waits(exe, url, admin, 3 if a.quick else 10)
            for w in waits_rows:
                print("    %-36s %5d scripts/s, %4d grants/s" % (w["waiting"], w["scripts_per_s"], w["grants_per_s"]),
                      flush=True)
            alternative = blob_alternative(admin, min(ops, 2000))
            print("  alternative: blobs + compare-and-set: %.1f µs Redis CPU, p50 %.0f µs"
                  % (alternative["redis_usec_per_decision"], alternative["p50_us"]), flush=True)
        admin.close()
    finally:
        server.stop()

    doc = {
        "benchmark": "shared limiters on one loopback Redis (bench/redis_ops.py)",
        "quick": a.quick,
        "redis": version,
        "transport": "TCP 127.0.0.1",
        "ops": ops * a.rounds,
        "rounds": a.rounds,
        "day_calls": DAY_CALLS,
        "latency": latency,
        "memory": memory,
        "reserve": reserve,
        "reserve_moving": reserve_moving,
        "waits": waits_rows,
        "blob_alternative": alternative,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "notes": [
            "Latency: one tenant, one thread, window limits of %d (every decision granted; the windows grow with "
            "the calls, up to the decisions made); each decision timed alone after an untimed warm-up of a tenth as "
            "many. A decision is xeroguard's acquire + release (a function, then an HDEL that gives the permit "
            "back), limits' hit on the minute then the day item (two scripts), pyrate's try_acquire (one script)."
            % BIG_LIMIT,
            "Redis CPU: CONFIG RESETSTAT before each timed pass; from INFO commandstats the usec of every command "
            "the client sent (FCALL, EVALSHA, EVAL, FUNCTION LOAD, HDEL: they include the commands a script or "
            "function calls), divided by the decisions made after the reset; the process figure is INFO cpu's "
            "user + sys over the same pass. EVAL is a script's first call on a server that has not cached it; "
            "FUNCTION LOAD is xeroguard's library loaded at connect (once per server).",
            "Memory: MEMORY USAGE key SAMPLES 0 after %d calls of one tenant within a day; xeroguard's counts the "
            "tenant's rings and its share of the state hash (its header, 5 permits held, one result kept for "
            "retries: what the hash loses without them); its app-wide state (limits, app header, app-minute ring) "
            "is shared by every tenant and listed apart." % DAY_CALLS,
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print("results: %s" % os.path.relpath(out, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
