#!/usr/bin/env python3
"""Pacing efficiency against the local Xero-like server (tests/server/xero_like_server.py), time-scaled.

    bench/.venv/bin/python bench/efficiency.py            # full run (~2.5 min): bench/results/efficiency.json,
                                                          # benchmarks-efficiency.png
    bench/.venv/bin/python bench/efficiency.py --quick    # smoke run (<30 s) into target/bench-smoke/
    --out DIR puts efficiency.json into DIR (scripts/bench.sh passes it); --chart PATH moves the chart.

What runs. Several tenants, each with more work than the limits allow, are driven for --minutes scaled minutes by
a few worker threads per tenant (more threads than the server's per-tenant concurrency limit) through each client:

  xeroguard     a xeroguard Limiter with the scaled windows: acquire_wait before each call, observe(classify(..))
                after it, release; a 429 that still arrives is retried after Retry-After like the others.
  naive         sends as fast as the threads go; on a 429 sleeps Retry-After and retries.
  token bucket  a local bucket per tenant, capacity = the minute limit, refilled at limit per scaled minute;
                on a 429 it too sleeps Retry-After and retries.

Then two OS processes share the same tenants, each with its own xeroguard Limiter: once feeding every response to
observe() (the X-*-Remaining headers tell each limiter about the other's calls) and once without. No header tells
a process about the other's calls in flight, so the processes split each tenant's concurrency statically (2 + 2 of
5) and only minute 429s are left to compare. Feedback cannot bring those to zero: (1) the headers arrive after the
fact, so both processes can spend the last slots of a server window at the same moment; (2) the server's windows
are fixed: "remaining 0" says the window is full, not when it resets, and a limiter's rolling view frees a slot as
soon as its own calls from before that window age out, which can be before the server's window turns.

Then two and four processes share one limiter through one Redis (a redis-server this run starts, one key prefix per
run): Limiter(limits, redis_url=..., key_prefix=...) in each, with observe. Windows, the tenant's 5 in flight and
blocks are decided once for all of them on Redis's clock, so nothing is split and no feedback is needed to stay
under the limits.

All clients use http.client with one keep-alive connection per worker thread (opened before the run).

Every client run gets a fresh server process, so runs are independent; all use one seed, so every run sees the
same per-tenant window phases relative to the server's start.

The time scale, and why.
  * A scaled minute is --minute-ms (1000) real ms; every window, margin and default wait is scaled by
    minute_ms / 60,000. The limiter's minute margin (it counts send time, the server counts arrival time) goes
    from xeroguard's default 500 ms of 60 s to 8 ms of 1 s. That is enough here only because every worker opens
    its connection before the run: a first request that also connects (and makes the server start a handler
    thread) arrived 12-19 ms late on a loaded 2-core machine, so the second burst, one window later, reached the
    server compressed (up to 65 calls of a tenant in one rolling minute). With warm connections the measured
    send-to-arrival skew spread is p99 ~3 ms, max ~5 ms. --margin-ms overrides.
  * The day is scaled too (1440 scaled minutes = 24 real minutes at 1000 ms) with Xero's 5000 a day. It stays
    out of play: a run is 20 scaled minutes and a tenant can make at most 60 x 21 = 1,260 calls in it, so the
    day limit would bind only after ~83 saturated scaled minutes. Scaling it (rather than leaving a real day)
    keeps the configuration self-consistent.
  * Retry-After is NOT scaled by the server: it says ceil(ms until the window resets / 1000) real seconds, at
    least 1, and it sends no finer header. At 1000 ms a minute that is always "1": one whole scaled minute, where
    real Xero would say the seconds until the reset (on average half a minute). The clients sleep what the header
    says, as real clients would; this overstates the wait after a minute 429 by about half a scaled minute and so
    understates naive / token-bucket throughput a little (it does not hide their 429s: a shorter sleep would only
    bring them back sooner). A 429 without Retry-After (the concurrency limit) is retried after the scaled
    equivalent of the 1 s xeroguard's table recommends for it (minute_ms / 60 ms).

The theoretical maximum. The server counts fixed windows of one scaled minute with a random phase per tenant, so
a run of R whole scaled minutes overlaps R + 1 of a tenant's windows (the first and last partly): no client can
complete more than limit x (R + 1) calls per tenant, and no more than the app limit x (R + 1) for all tenants
together (the day and the concurrency x latency throughput bound are far away and are reported too). A client
that never exceeds the limit in ANY rolling minute, which is what xeroguard promises because Xero's own documents
disagree on fixed vs rolling windows, can complete at most limit x R per tenant: the "rolling ceiling",
R / (R + 1) of the fixed maximum.

Added latency is the time from "the worker wants to make this call" to "the request that succeeded was sent":
pacing waits, 429 sleeps and the round trips of rejected attempts. Workers are closed-loop (each wants its next
call as soon as the previous one finished), so under a saturating workload this is mostly queueing for the limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER_PY = ROOT / "tests" / "server" / "xero_like_server.py"
API_PATH = "/api.xro/2.0/Invoices"

# The real values the scaled ones derive from (Xero's limits; xeroguard's xg_limits_default margins).
REAL_MINUTE_MS = 60_000
REAL_DAY_MS = 86_400_000
REAL_MINUTE_MARGIN_MS = 500
REAL_DAY_MARGIN_MS = 60_000
REAL_PERMIT_TIMEOUT_MS = 120_000
REAL_CONCURRENT_WAIT_MS = 1_000  # xero-reference §6: a concurrent 429 (no Retry-After) waits 1 s


class BenchError(Exception):
    """A failure worth a clear message and a non-zero exit."""


@dataclasses.dataclass
class Config:
    minute_ms: int = 1000
    minutes: int = 20
    tenants: int = 4
    workers: int = 6
    minute_limit: int = 60
    day_limit: int = 5000
    concurrency: int = 5
    app_minute_limit: int = 10_000
    latency_ms: float = 5.0
    margin_ms: int = -1  # -1: the library's default margin, scaled
    seed: int = 1234
    proc_workers: int = 3  # per tenant per process in the multi-process runs
    workload_factor: int = 3  # each tenant's queue holds this many times what the limits allow in the run

    def __post_init__(self) -> None:
        if self.margin_ms < 0:
            self.margin_ms = self.scaled(REAL_MINUTE_MARGIN_MS)

    @property
    def scale(self) -> float:
        return self.minute_ms / REAL_MINUTE_MS

    def scaled(self, real_ms: float) -> int:
        return max(1, int(round(real_ms * self.scale)))

    @property
    def day_ms(self) -> int:
        return REAL_DAY_MS * self.minute_ms // REAL_MINUTE_MS

    @property
    def run_ms(self) -> int:
        return self.minutes * self.minute_ms

    @property
    def tenant_ids(self) -> List[str]:
        return ["tenant-%d" % i for i in range(self.tenants)]

    @property
    def workload_per_tenant(self) -> int:
        return self.workload_factor * self.minute_limit * (self.minutes + 1)

    @property
    def concurrent_wait_s(self) -> float:
        return REAL_CONCURRENT_WAIT_MS * self.scale / 1000.0

    def to_scaled_s(self, real_ms: float) -> float:
        """Real milliseconds as seconds of the scaled world (1 scaled minute = minute_ms real ms)."""
        return real_ms / self.scale / 1000.0


# --------------------------------------------------------------------------------------------------------------
# The server


def readline_within(stream: Any, timeout_s: float) -> Any:
    """A line from a child's pipe, or an empty one when none came within the timeout (a hung child)."""
    line: List[Any] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return line[0] if line else stream.read(0)


class Server:
    """The Xero-like server as a subprocess; it exits when its stdin (our pipe) closes, or is killed."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self._stderr = tempfile.TemporaryFile()

    def __enter__(self) -> "Server":
        cfg = self.cfg
        if not SERVER_PY.is_file():
            raise BenchError("server not found: %s" % SERVER_PY)
        argv = [sys.executable, str(SERVER_PY), "--port", "0", "--minute-ms", str(cfg.minute_ms),
                "--minute-limit", str(cfg.minute_limit), "--day-ms", str(cfg.day_ms),
                "--day-limit", str(cfg.day_limit), "--concurrency", str(cfg.concurrency),
                "--app-minute-limit", str(cfg.app_minute_limit), "--latency-ms", str(cfg.latency_ms),
                "--seed", str(cfg.seed)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        text = readline_within(self.proc.stdout, 15).decode("utf-8", "replace").strip()
        if not text.startswith("READY "):
            self._stop()
            self._stderr.seek(0)
            err = self._stderr.read().decode("utf-8", "replace").strip()
            self._stderr.close()
            raise BenchError("the Xero-like server did not start (first line %r)%s"
                             % (text, ("; stderr:\n" + err) if err else ""))
        self.port = int(text.split()[1])
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop()
        self._stderr.close()

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()  # the server's lifeline: EOF stops it
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        finally:
            if proc.stdout:
                proc.stdout.close()

    def stats(self) -> Dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/__stats")
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise BenchError("/__stats answered %d" % r.status)
            stats: Dict[str, Any] = json.loads(body)
            return stats
        finally:
            conn.close()


def start_redis() -> Any:
    """A redis-server of this run's own (unix socket, no persistence), from the test suite's helper; stop() kills it
    by pid."""
    sys.path.insert(0, str(ROOT / "bindings" / "python" / "tests"))
    try:
        from redis_server import RedisServer
    except ImportError as exc:
        raise BenchError("cannot import the test suite's redis_server helper (%s); run bash bench/setup-venv.sh" % exc)
    server = RedisServer()
    try:
        return server.start()
    except RuntimeError as exc:
        raise BenchError(str(exc))


# --------------------------------------------------------------------------------------------------------------
# HTTP (http.client: one keep-alive connection per worker thread; every client uses the same code)


class Http:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: Optional[http.client.HTTPConnection] = None

    def get(self, tenant: str) -> Tuple[int, List[Tuple[str, str]], bytes]:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request("GET", API_PATH, headers={"Xero-Tenant-Id": tenant, "Accept": "application/json",
                                                            "Authorization": "Bearer bench"})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, r.getheaders(), body
            except (http.client.HTTPException, OSError):
                # A dropped keep-alive connection: reconnect once, then give up loudly.
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def connect(self) -> None:
        """Opens the connection ahead of the run: a first request that also connects (and makes the server start a
        handler thread) arrives late by several ms, which would skew the send-to-arrival timing of the first burst."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.conn.connect()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def header(headers: Sequence[Tuple[str, str]], name: str) -> Optional[str]:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def retry_wait_s(cfg: Config, headers: Sequence[Tuple[str, str]]) -> float:
    """What a 429 asks us to wait: Retry-After taken literally (whole real seconds from this server; see the
    module doc), else the scaled concurrency wait."""
    value = header(headers, "Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    return cfg.concurrent_wait_s


# --------------------------------------------------------------------------------------------------------------
# Driving a client


@dataclasses.dataclass
class Trace:
    """What a run did; times are ms after the run's start (t0), on the client's clock."""

    tenants: int
    sends: List[Tuple[int, float, int, str]] = dataclasses.field(default_factory=list)  # (tenant, sent, status, problem)
    latencies_ms: List[float] = dataclasses.field(default_factory=list)  # completed calls only
    errors: List[str] = dataclasses.field(default_factory=list)
    workload_exhausted: bool = False

    # list.append is atomic under the GIL, so worker threads append without a lock.
    def sent(self, tenant: int, t_ms: float, status: int, headers: Sequence[Tuple[str, str]]) -> None:
        problem = (header(headers, "X-Rate-Limit-Problem") or "unknown") if status == 429 else ""
        self.sends.append((tenant, t_ms, status, problem))

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Trace":
        t = cls(d["tenants"], [tuple(s) for s in d["sends"]], d["latencies_ms"], d["errors"],  # type: ignore
                d["workload_exhausted"])
        return t

    def merge(self, other: "Trace") -> None:
        self.sends += other.sends
        self.latencies_ms += other.latencies_ms
        self.errors += other.errors
        self.workload_exhausted |= other.workload_exhausted


# call(http, tenant index, t0, deadline, trace): makes ONE logical call (retrying 429s); answers False when the
# deadline stopped it (the worker is done: looping on would only burn work items on instant refusals).
CallFn = Callable[[Http, int, float, float, Trace], bool]


def drive(cfg: Config, port: int, workers: int, call: CallFn, t0: Optional[float] = None) -> Trace:
    """Runs `workers` threads per tenant from t0 (monotonic s; default: shortly after now) for cfg.run_ms."""
    trace = Trace(cfg.tenants)
    left = [cfg.workload_per_tenant] * cfg.tenants
    lock = threading.Lock()
    if t0 is None:
        t0 = time.monotonic() + 0.3  # every thread is started and connected (and waiting) before the clock starts
    deadline = t0 + cfg.run_ms / 1000.0

    def worker(ti: int) -> None:
        http_ = Http(port)
        try:
            http_.connect()
            time.sleep(max(0.0, t0 - time.monotonic()))
            while time.monotonic() < deadline:
                with lock:
                    if left[ti] == 0:
                        trace.workload_exhausted = True
                        return
                    left[ti] -= 1
                if not call(http_, ti, t0, deadline, trace):
                    return
        except Exception as exc:  # reported, and fails the run: a benchmark with a dead worker means nothing
            trace.errors.append("%s: %r" % (threading.current_thread().name, exc))
        finally:
            http_.close()

    threads = [threading.Thread(target=worker, args=(ti,), name="t%d-w%d" % (ti, w), daemon=True)
               for ti in range(cfg.tenants) for w in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(max(1.0, deadline - time.monotonic() + 60))
        if th.is_alive():
            trace.errors.append("%s did not finish" % th.name)
    return trace


def sleep_for_retry(wait_s: float, deadline: float) -> bool:
    """Sleeps a 429's wait unless it ends past the deadline (then the call cannot complete within the run)."""
    if time.monotonic() + wait_s >= deadline:
        return False
    time.sleep(wait_s)
    return True


def after_response(cfg: Config, trace: Trace, ti: int, t0: float, want: float, sent: float, status: int,
                   headers: List[Tuple[str, str]], deadline: float) -> Optional[bool]:
    """Records a sent request (the same for every client). True: the call is done; False: its retry cannot
    complete within the run; None: it was a 429 and its wait has been slept, so send it again."""
    trace.sent(ti, (sent - t0) * 1000.0, status, headers)
    if status != 429:
        if 200 <= status < 300:
            trace.latencies_ms.append((sent - want) * 1000.0)
        return True
    return None if sleep_for_retry(retry_wait_s(cfg, headers), deadline) else False


def scaled_limits(cfg: Config, concurrency: int) -> Any:
    import xeroguard

    return xeroguard.Limits(
        tenant_minute=xeroguard.WindowLimit(cfg.minute_limit, window_ms=cfg.minute_ms, margin_ms=cfg.margin_ms),
        tenant_day=xeroguard.WindowLimit(cfg.day_limit, window_ms=cfg.day_ms,
                                         margin_ms=cfg.scaled(REAL_DAY_MARGIN_MS)),
        tenant_concurrency=concurrency,
        app_minute=xeroguard.WindowLimit(cfg.app_minute_limit, window_ms=cfg.minute_ms, margin_ms=cfg.margin_ms),
        permit_timeout_ms=cfg.scaled(REAL_PERMIT_TIMEOUT_MS),
        max_tenants=0,
    )


def make_limiter(cfg: Config, concurrency: int, redis: Optional[Tuple[str, str]]) -> Any:
    """An in-process limiter, or with `redis` = (url, key prefix) one whose windows, permits and blocks every
    process using that prefix shares."""
    import xeroguard

    limits = scaled_limits(cfg, concurrency)
    if redis is None:
        return xeroguard.Limiter(limits)
    url, prefix = redis
    try:
        return xeroguard.Limiter(limits, redis_url=url, key_prefix=prefix)
    except TypeError as exc:
        raise BenchError("the Python binding has no shared (Redis) limiter (%s): Limiter(limits, redis_url=..., "
                         "key_prefix=...) is needed for the shared-Redis rows" % exc)


def run_guarded(cfg: Config, port: int, feedback: bool = True, concurrency: Optional[int] = None,
                workers: Optional[int] = None, t0: Optional[float] = None,
                redis: Optional[Tuple[str, str]] = None) -> Trace:
    """(a) xeroguard: a permit before each call, observe after it (unless feedback is off), release."""
    import xeroguard

    tenants = cfg.tenant_ids
    with make_limiter(cfg, concurrency or cfg.concurrency, redis) as limiter:
        def call(http_: Http, ti: int, t0_: float, deadline: float, trace: Trace) -> bool:
            tenant = tenants[ti]
            want = time.monotonic()
            while True:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    return False
                d = limiter.acquire_wait(tenant, timeout_ms=left_ms)  # the GIL is released while it waits
                if not d.granted:
                    return False  # the next slot is past the deadline
                try:
                    sent = time.monotonic()
                    if sent >= deadline:
                        return False
                    status, headers, body = http_.get(tenant)
                    if feedback:
                        # Before the permit goes back, so the next waiter already sees the server's view.
                        limiter.observe(tenant, xeroguard.classify(status, headers, body))
                finally:
                    limiter.release(d.permit)
                # With feedback the limiter is blocked for the same Retry-After, so a 429's sleep adds no wait.
                done = after_response(cfg, trace, ti, t0_, want, sent, status, headers, deadline)
                if done is not None:
                    return done

        return drive(cfg, port, workers or cfg.workers, call, t0)


def run_naive(cfg: Config, port: int) -> Trace:
    """(b) naive: as fast as the threads go; a 429 sleeps Retry-After, then the call is sent again."""
    tenants = cfg.tenant_ids

    def call(http_: Http, ti: int, t0: float, deadline: float, trace: Trace) -> bool:
        want = time.monotonic()
        while True:
            sent = time.monotonic()
            if sent >= deadline:
                return False
            status, headers, _ = http_.get(tenants[ti])
            done = after_response(cfg, trace, ti, t0, want, sent, status, headers, deadline)
            if done is not None:
                return done

    return drive(cfg, port, cfg.workers, call)


class TokenBucket:
    """Capacity `capacity`, refilled continuously at `capacity` per `period_ms`; starts full.

    take() books a token and answers how long to sleep until it exists (the bucket may go negative: waiters are
    served in order of arrival without spinning)."""

    def __init__(self, capacity: int, period_ms: int) -> None:
        self.capacity = float(capacity)
        self.rate_per_s = capacity * 1000.0 / period_ms
        self.tokens = float(capacity)
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate_per_s)
            self.last = now
            self.tokens -= 1.0
            return max(0.0, -self.tokens / self.rate_per_s)


def run_token_bucket(cfg: Config, port: int) -> Trace:
    """(c) a token bucket per tenant (burst = the minute limit); a 429 sleeps Retry-After, then takes a token."""
    tenants = cfg.tenant_ids
    buckets: List[TokenBucket] = []

    def call(http_: Http, ti: int, t0: float, deadline: float, trace: Trace) -> bool:
        want = time.monotonic()
        while True:
            wait = buckets[ti].take()
            if time.monotonic() + wait >= deadline:
                return False
            time.sleep(wait)
            sent = time.monotonic()
            status, headers, _ = http_.get(tenants[ti])
            done = after_response(cfg, trace, ti, t0, want, sent, status, headers, deadline)
            if done is not None:
                return done

    # Created just before the run starts: full (capacity = limit) at t0, since a bucket cannot hold more than full.
    buckets.extend(TokenBucket(cfg.minute_limit, cfg.minute_ms) for _ in tenants)
    return drive(cfg, port, cfg.workers, call)


# --------------------------------------------------------------------------------------------------------------
# Two processes sharing tenants


def proc_main(argv: List[str]) -> int:
    """The hidden sub-command: one process of the multi-process runs. Prints READY, reads the shared start time
    (Unix seconds) from stdin, runs a guarded client, prints its Trace as JSON."""
    p = argparse.ArgumentParser(prog="efficiency.py _proc")
    p.add_argument("--config", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--feedback", type=int, choices=(0, 1), required=True)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--redis-url", help="share the limits through this Redis (with --key-prefix)")
    p.add_argument("--key-prefix", default="efficiency")
    a = p.parse_args(argv)
    cfg = Config(**json.loads(a.config))
    import xeroguard  # noqa: F401  (loaded before READY so the start is not delayed by the library load)

    print("READY", flush=True)
    start_unix = float(sys.stdin.readline())
    t0 = time.monotonic() + (start_unix - time.time())  # both processes read the same system clock
    if t0 < time.monotonic():
        print(json.dumps({"error": "the shared start time had passed when it arrived"}), flush=True)
        return 1
    if a.redis_url:
        # One limiter for all: windows, permits (the tenant's 5 in flight) and blocks live in Redis.
        trace = run_guarded(cfg, a.port, feedback=bool(a.feedback), workers=cfg.proc_workers, t0=t0,
                            redis=(a.redis_url, a.key_prefix))
    else:
        # Concurrency cannot be learned from any header, so the processes split the tenant's 5 statically.
        trace = run_guarded(cfg, a.port, feedback=bool(a.feedback),
                            concurrency=max(1, cfg.concurrency // a.nproc), workers=cfg.proc_workers, t0=t0)
    print(json.dumps(trace.to_json()), flush=True)
    return 0


def run_processes(cfg: Config, port: int, feedback: bool, nproc: int = 2,
                  redis: Optional[Tuple[str, str]] = None) -> Trace:
    """`nproc` OS processes on the same tenants, each with its own limiter; with `redis` = (url, key prefix) they
    share one through Redis."""
    argv = [sys.executable, str(Path(__file__).resolve()), "_proc", "--config", json.dumps(dataclasses.asdict(cfg)),
            "--port", str(port), "--feedback", str(int(feedback)), "--nproc", str(nproc)]
    if redis is not None:
        argv += ["--redis-url", redis[0], "--key-prefix", redis[1]]
    procs = [subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(nproc)]
    try:
        for proc in procs:
            line = readline_within(proc.stdout, 30).strip()
            if line != "READY":
                proc.kill()
                raise BenchError("a child process did not start (first line %r): %s"
                                 % (line, proc.stderr.read().strip()))  # type: ignore[union-attr]
        start = "%.6f\n" % (time.time() + 0.3)
        for proc in procs:
            proc.stdin.write(start)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        trace = Trace(cfg.tenants)
        for proc in procs:
            out, err = proc.communicate(timeout=cfg.run_ms / 1000.0 + 60)
            lines = out.strip().splitlines()
            data = json.loads(lines[-1]) if lines else {}
            if proc.returncode != 0 or "error" in data:
                raise BenchError("a child process failed (exit %s): %s %s"
                                 % (proc.returncode, data.get("error", ""), err.strip()))
            trace.merge(Trace.from_json(data))
        return trace
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------------------------------------------
# Figures


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(math.ceil(q / 100.0 * len(s))) - 1))]


def theoretical(cfg: Config) -> Dict[str, Any]:
    windows = math.ceil(cfg.run_ms / cfg.minute_ms) + 1  # fixed windows a run of random phase overlaps
    day_windows = math.ceil(cfg.run_ms / cfg.day_ms) + 1
    per_tenant = min(cfg.minute_limit * windows, cfg.day_limit * day_windows)
    throughput = int(cfg.concurrency * cfg.run_ms / cfg.latency_ms)  # calls in flight x round trips, per tenant
    fixed = min(cfg.tenants * min(per_tenant, throughput), cfg.app_minute_limit * windows)
    rolling_minutes = math.ceil(cfg.run_ms / cfg.minute_ms)
    rolling = min(cfg.tenants * min(cfg.minute_limit * rolling_minutes, per_tenant, throughput),
                  cfg.app_minute_limit * rolling_minutes)
    return {"fixed_window_max": fixed, "per_tenant_fixed_window_max": per_tenant,
            "rolling_ceiling": rolling, "concurrency_throughput_bound_per_tenant": throughput,
            "fixed_windows_overlapped": windows}


def rolling_counts(times_ms: Sequence[float], window_ms: float, at: Any) -> Any:
    """How many of the (sorted) times fall in (t - window, t] for each t in `at` (numpy)."""
    import numpy as np

    s = np.asarray(times_ms, dtype=float)
    return np.searchsorted(s, at, "right") - np.searchsorted(s, np.asarray(at) - window_ms, "right")


def per_tenant_ok_times(trace: Trace) -> List[List[float]]:
    out: List[List[float]] = [[] for _ in range(trace.tenants)]
    for ti, t, status, _ in trace.sends:
        if 200 <= status < 300:
            out[ti].append(t)
    for times in out:
        times.sort()
    return out


def summarize(cfg: Config, name: str, trace: Trace, stats: Dict[str, Any], wall_s: float) -> Dict[str, Any]:
    th = theoretical(cfg)
    # Completed: 2xx calls sent within the run (workers send nothing after the deadline).
    completed = len(trace.latencies_ms)
    problems: Dict[str, int] = {}
    for _, _, status, problem in trace.sends:
        if status == 429:
            problems[problem] = problems.get(problem, 0) + 1
    other = sorted({s for _, _, s, _ in trace.sends if s != 429 and not 200 <= s < 300})
    ok_times = per_tenant_ok_times(trace)
    # The most 2xx calls any tenant SENT within one rolling scaled minute (client clock), at each send instant.
    client_max = max((int(rolling_counts(t, cfg.minute_ms, t).max()) for t in ok_times if t), default=0)
    p50, p99 = percentile(trace.latencies_ms, 50), percentile(trace.latencies_ms, 99)

    def lat(v: Optional[float]) -> Optional[Dict[str, float]]:
        return None if v is None else {"ms": round(v, 2), "scaled_s": round(cfg.to_scaled_s(v), 3)}

    return {
        "client": name,
        "completed": completed,
        "completed_per_scaled_minute": round(completed / cfg.minutes, 2),
        "pct_of_fixed_window_max": round(100.0 * completed / th["fixed_window_max"], 2),
        "pct_of_rolling_ceiling": round(100.0 * completed / th["rolling_ceiling"], 2),
        "requests_sent": len(trace.sends),
        "count_429": sum(problems.values()),
        "count_429_by_problem": problems,
        "other_non_2xx_statuses": other,
        "latency_p50": lat(p50),
        "latency_p99": lat(p99),
        "max_2xx_sent_in_rolling_minute_any_tenant": client_max,
        "server": {
            "admitted": sum(stats.get("admitted", {}).values()),
            "count_429": stats.get("count_429"),
            "by_problem": stats.get("by_problem"),
            "max_admitted_in_rolling_minute_any_tenant": max(stats.get("max_admitted_in_rolling_minute", {0: 0}).values()),
            "max_in_flight_any_tenant": max(stats.get("max_in_flight", {0: 0}).values()),
            "app_max_admitted_in_rolling_minute": stats.get("app_max_admitted_in_rolling_minute"),
        },
        "workload_exhausted": trace.workload_exhausted,
        "wall_s": round(wall_s, 2),
    }


# --------------------------------------------------------------------------------------------------------------
# Chart


def chart(cfg: Config, runs: List[Tuple[str, Trace]], path: Path) -> None:
    """One panel per client: the busiest tenant's 2xx calls in the preceding scaled minute, the limit, the 429s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.transforms as mtransforms
    import numpy as np

    step_ms = max(1.0, cfg.minute_ms / 250.0)
    grid = np.arange(0.0, cfg.run_ms + step_ms, step_ms)
    x = grid / cfg.minute_ms  # scaled minutes
    curves = []
    for name, trace in runs:
        ok = per_tenant_ok_times(trace)
        # The busiest tenant at each instant: the per-tenant limit line is what every tenant must stay under.
        busiest = np.max(np.vstack([rolling_counts(t, cfg.minute_ms, grid) for t in ok]), axis=0)
        t429 = np.array([t for _, t, s, _ in trace.sends if s == 429]) / cfg.minute_ms
        peak = max((int(rolling_counts(t, cfg.minute_ms, t).max()) for t in ok if t), default=0)
        curves.append((name, busiest, t429, peak))
    top = max(2.0 * cfg.minute_limit, max(float(c[1].max()) for c in curves)) * 1.12

    fig, axes = plt.subplots(len(curves), 1, figsize=(9.5, 1.75 * len(curves) + 1.3), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, (name, busiest, t429, peak) in zip(axes, curves):
        ax.plot(x, busiest, lw=0.9, color="tab:blue", label="2xx calls sent in the preceding scaled minute")
        ax.fill_between(x, cfg.minute_limit, busiest, where=busiest > cfg.minute_limit, color="tab:orange",
                        alpha=0.55, lw=0, label="over the limit (a rolling-window server would answer 429)")
        ax.axhline(cfg.minute_limit, color="black", ls="--", lw=1, label="limit (%d a minute)" % cfg.minute_limit)
        if len(t429):
            rug = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
            ax.plot(t429, np.full(len(t429), 0.93), "|", color="red", ms=7, mew=0.6, transform=rug,
                    label="a 429 received (any tenant)")
        ax.set_ylim(0, top)
        ax.set_xlim(0, cfg.minutes)
        ax.set_title("%s  -  429s: %d, most in a rolling minute: %d" % (name, len(t429), peak), loc="left",
                     fontsize=9)
        ax.set_ylabel("calls in the\nlast minute", fontsize=8)
        ax.tick_params(labelsize=8)
    # One legend for all panels (the 429 marker taken from any panel that has one).
    handles: Dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles.keys()), loc="upper center", ncol=2, fontsize=8,
               bbox_to_anchor=(0.5, 1 - 0.47 / fig.get_figheight()), frameon=False)
    axes[-1].set_xlabel("time since start, in scaled minutes (1 scaled minute = %d ms real; the run took %d s)"
                        % (cfg.minute_ms, round(cfg.run_ms / 1000)), fontsize=9)
    fig.suptitle("Pacing against a Xero-like server (fixed windows, random phase per tenant): busiest of %d "
                 "tenant%s at each instant\n%d worker threads per tenant; server limits %d calls a minute and %d "
                 "in flight per tenant" % (cfg.tenants, "" if cfg.tenants == 1 else "s", cfg.workers, cfg.minute_limit, cfg.concurrency),
                 fontsize=10, y=0.995)
    # Fixed margins in inches (title, legend, axis label), so the layout holds for any number of panels.
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.085, right=0.98, top=1 - 1.22 / height, bottom=0.55 / height, hspace=0.42)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------------------
# Main


def fmt_lat(v: Optional[Dict[str, float]]) -> str:
    return "-" if v is None else "%.0f ms (%.1f s)" % (v["ms"], v["scaled_s"])


def table(cfg: Config, results: List[Dict[str, Any]], notes: bool = True) -> str:
    th = theoretical(cfg)
    w = max([len(r["client"]) for r in results] + [6])
    head = ("%-*s %9s %8s %7s %7s %6s %-26s %6s %6s %-16s %-16s"
            % (w, "client", "completed", "/sc.min", "%max", "%roll", "429s", "429 by problem", "roll.c", "roll.s",
               "latency p50", "latency p99"))
    lines = [head, "-" * len(head)]
    for r in results:
        by = ",".join("%s:%d" % kv for kv in sorted(r["count_429_by_problem"].items())) or "-"
        lines.append("%-*s %9d %8.1f %6.1f%% %6.1f%% %6d %-26s %6d %6d %-16s %-16s" % (
            w, r["client"], r["completed"], r["completed_per_scaled_minute"], r["pct_of_fixed_window_max"],
            r["pct_of_rolling_ceiling"], r["count_429"], by, r["max_2xx_sent_in_rolling_minute_any_tenant"],
            r["server"]["max_admitted_in_rolling_minute_any_tenant"], fmt_lat(r["latency_p50"]),
            fmt_lat(r["latency_p99"])))
    if not notes:
        return "\n".join(lines)
    lines.append("-" * len(head))
    lines.append("max (fixed windows) = %d calls = %d x %d/min x %d windows; rolling ceiling = %d (limit x %d min). "
                 "%%max/%%roll: completed as a share of each." % (
                     th["fixed_window_max"], cfg.tenants, cfg.minute_limit, th["fixed_windows_overlapped"],
                     th["rolling_ceiling"], cfg.minutes))
    lines.append("roll.c / roll.s: most 2xx calls of one tenant in any rolling scaled minute, by client send time / "
                 "by server arrival (limit %d). Latency: real ms (scaled seconds)." % cfg.minute_limit)
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_proc"]:
        return proc_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 3 scaled minutes, 2 tenants (<30 s)")
    p.add_argument("--minute-ms", type=int, default=1000, help="real ms per scaled minute (default 1000)")
    p.add_argument("--minutes", type=int, help="scaled minutes per client run (default 20; --quick 3)")
    p.add_argument("--tenants", type=int, help="tenants (default 4; --quick 2)")
    p.add_argument("--workers", type=int, default=6, help="worker threads per tenant (default 6)")
    p.add_argument("--proc-workers", type=int, default=3,
                   help="worker threads per tenant in each of the two processes (default 3)")
    p.add_argument("--latency-ms", type=float, default=5.0, help="server latency per admitted call (default 5)")
    p.add_argument("--margin-ms", type=int, default=-1,
                   help="xeroguard's minute-window margin (default: its 500 ms of 60 s, scaled)")
    p.add_argument("--seed", type=int, default=1234, help="server seed (window phases)")
    p.add_argument("--out", type=Path, help="results directory (default bench/results; --quick target/bench-smoke)")
    p.add_argument("--chart", type=Path, help="chart path (default benchmarks-efficiency.png beside BENCHMARKS.md; --quick <out>/efficiency.png)")
    a = p.parse_args(argv)

    cfg = Config(minute_ms=a.minute_ms, minutes=a.minutes or (3 if a.quick else 20),
                 tenants=a.tenants or (2 if a.quick else 4), workers=a.workers, latency_ms=a.latency_ms,
                 margin_ms=a.margin_ms, seed=a.seed, proc_workers=a.proc_workers)
    if min(cfg.minute_ms, cfg.minutes, cfg.tenants, cfg.workers, cfg.proc_workers) <= 0:
        p.error("--minute-ms, --minutes, --tenants, --workers and --proc-workers must be positive")
    out = a.out or (ROOT / "target" / "bench-smoke" if a.quick else HERE / "results")
    chart_path = a.chart or (out / "efficiency.png" if a.quick else ROOT / "benchmarks-efficiency.png")
    try:
        import xeroguard
    except ImportError as exc:
        raise BenchError("xeroguard is not importable (%s); run bash bench/setup-venv.sh and use "
                         "bench/.venv/bin/python" % exc)

    started = time.monotonic()
    print("pacing efficiency: %d tenants x %d workers, %d scaled minutes of %d ms per client, limit %d/min, "
          "%d in flight, margin %d ms, server latency %g ms" % (cfg.tenants, cfg.workers, cfg.minutes,
                                                               cfg.minute_ms, cfg.minute_limit, cfg.concurrency,
                                                               cfg.margin_ms, cfg.latency_ms), flush=True)
    clients: List[Tuple[str, Callable[[Config, int], Trace]]] = [
        ("xeroguard (acquire_wait + observe)", lambda c, port: run_guarded(c, port)),
        ("naive (retry after Retry-After)", run_naive),
        ("token bucket (burst = limit)", run_token_bucket),
    ]
    two = [("2 procs, xeroguard + observe", True), ("2 procs, xeroguard, no observe", False)]
    results: List[Dict[str, Any]] = []
    procs: List[Dict[str, Any]] = []
    shared: List[Dict[str, Any]] = []
    traces: List[Tuple[str, Trace]] = []
    runs: List[Tuple[str, List[Dict[str, Any]], Callable[[Config, int], Trace]]] = \
        [(n, results, f) for n, f in clients] + \
        [(n, procs, (lambda fb: lambda c, port: run_processes(c, port, fb))(fb)) for n, fb in two]
    redis_server = start_redis()
    try:
        url = redis_server.url
        # A key prefix per run: each starts with empty shared windows, as the in-process runs do.
        runs += [("%d procs, shared Redis + observe" % n, shared,
                  (lambda n: lambda c, port: run_processes(c, port, True, n, (url, "efficiency-%d" % n)))(n))
                 for n in (2, 4)]
        for label, rows, fn in runs:
            print("  running %-34s ... " % label, end="", flush=True)
            t = time.monotonic()
            with Server(cfg) as server:
                trace = fn(cfg, server.port)
                stats = server.stats()
            if trace.errors:
                raise BenchError("%s: %d worker error(s), first: %s" % (label, len(trace.errors), trace.errors[0]))
            r = summarize(cfg, label, trace, stats, time.monotonic() - t)
            rows.append(r)
            traces.append((label, trace))
            print("%d completed, %d x 429 (%.1f s)" % (r["completed"], r["count_429"], r["wall_s"]), flush=True)
            if trace.workload_exhausted:
                print("    warning: a tenant's workload ran out before the deadline; raise workload_factor",
                      flush=True)
    finally:
        redis_server.stop()

    chart(cfg, traces, chart_path)
    elapsed = time.monotonic() - started
    doc = {
        "benchmark": "pacing efficiency against tests/server/xero_like_server.py (time-scaled)",
        "quick": a.quick,
        "config": dict(dataclasses.asdict(cfg), day_ms=cfg.day_ms, run_ms=cfg.run_ms,
                       workload_per_tenant=cfg.workload_per_tenant, tenant_ids=cfg.tenant_ids,
                       limiter=dataclasses.asdict(scaled_limits(cfg, cfg.concurrency)),
                       two_process_limiter_concurrency=max(1, cfg.concurrency // 2),
                       concurrent_429_wait_ms=round(cfg.concurrent_wait_s * 1000, 2),
                       retry_after="taken literally: whole real seconds (>= 1) from the server, not scaled"),
        "theoretical": theoretical(cfg),
        "clients": results,
        "two_processes": procs,
        "shared_redis": shared,
        "shared_redis_setup": "%d workers per tenant in each process, one xeroguard Limiter per process, all on one "
                              "key prefix of one redis-server (unix socket): windows, the tenant's %d in flight and "
                              "blocks are shared, nothing is split" % (cfg.proc_workers, cfg.concurrency),
        "chart": os.path.relpath(chart_path, ROOT),
        "elapsed_s": round(elapsed, 1),
        "environment": {"python": platform.python_version(), "xeroguard": xeroguard.library_version,
                        "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "efficiency.json").write_text(json.dumps(doc, indent=1) + "\n")
    print()
    print(table(cfg, results))
    print()
    print("Two processes sharing the same %d tenants, each with its own Limiter (tenant concurrency %d each, "
          "%d workers/tenant each):" % (cfg.tenants, max(1, cfg.concurrency // 2), cfg.proc_workers))
    print(table(cfg, procs, notes=False))
    print()
    print("Two and four processes sharing one Limiter through one Redis (tenant concurrency %d shared, %d "
          "workers/tenant each):" % (cfg.concurrency, cfg.proc_workers))
    print(table(cfg, shared, notes=False))
    print()
    print("results: %s   chart: %s   elapsed: %.0f s" % (os.path.relpath(out / "efficiency.json", ROOT),
                                                       os.path.relpath(chart_path, ROOT), elapsed))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print("\nefficiency.py: %s" % exc, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
