#!/usr/bin/env python3
"""A local Xero-like HTTP server for end-to-end tests of xeroguard bindings (stdlib only).

It enforces Xero's rate limits the way Xero's current documentation describes them: FIXED windows whose
phase differs per tenant (minute and day), a per-tenant limit on calls in flight, and an app-wide fixed
minute window. Every limit and the length of a "minute" and a "day" are configurable so tests can run a
minute in about a second.

CLI:
    python3 tests/server/xero_like_server.py [--port 0] [--minute-ms 1000] [--minute-limit 60]
        [--day-ms 86400000] [--day-limit 5000] [--concurrency 5] [--app-minute-limit 10000]
        [--latency-ms 5] [--seed N] [--host 127.0.0.1] [--ignore-stdin]
  prints `READY <port>` as its first stdout line, then serves until killed or until stdin reaches EOF
  (stdin is watched only when it is a pipe, socket or terminal, and not with --ignore-stdin).

Module:
    with XeroLikeServer(minute_ms=1000, minute_limit=60) as server:
        server.base_url   # http://127.0.0.1:<port>
        server.stats()

Routes:
    ANY  /api.xro/2.0/...      tenant calls (header Xero-Tenant-Id required)
    ANY  /connections          tenantless call (app window only), answers a JSON list (paths match in any case)
    POST /__control/offline?tenant=T&ms=N   tenant T answers 503 "The Organisation is offline" for N ms
    POST /__control/maintenance?ms=N        everyone answers 503 maintenance for N ms
    POST /__control/reset                   forget all counts, blocks and stats
    GET  /__stats                           counters (see Server.stats)
    GET  /__log                             every API request seen (capped), oldest first
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import stat
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

API_PREFIX = "/api.xro/2.0/"
LOG_CAP = 100_000
OFFLINE_BODY = b"The Organisation is offline"
MAINTENANCE_BODY = b"The Xero API is currently offline for maintenance"
NOT_FOUND_BODY = b"The resource you're looking for cannot be found"


class _FixedWindow:
    """A fixed window of `length_ms` starting at `phase_ms` (+ k * length_ms) on the server clock."""

    def __init__(self, length_ms: int, limit: int, phase_ms: float) -> None:
        self.length_ms = length_ms
        self.limit = limit
        self.phase_ms = phase_ms
        self.index: Optional[int] = None
        self.count = 0

    def _roll(self, now_ms: float) -> None:
        index = math.floor((now_ms - self.phase_ms) / self.length_ms)
        if index != self.index:
            self.index = index
            self.count = 0

    def full(self, now_ms: float) -> bool:
        self._roll(now_ms)
        return self.count >= self.limit

    def add(self, now_ms: float) -> None:
        self._roll(now_ms)
        self.count += 1

    def remaining(self, now_ms: float) -> int:
        self._roll(now_ms)
        return max(0, self.limit - self.count)

    def ms_until_reset(self, now_ms: float) -> float:
        self._roll(now_ms)
        assert self.index is not None
        return self.phase_ms + (self.index + 1) * self.length_ms - now_ms


class _Rolling:
    """Tracks the most admitted calls seen in any rolling window of `length_ms` (for the stats)."""

    def __init__(self, length_ms: int) -> None:
        self.length_ms = length_ms
        self.times: Deque[float] = collections.deque()
        self.max = 0

    def add(self, now_ms: float) -> None:
        while self.times and self.times[0] <= now_ms - self.length_ms:
            self.times.popleft()
        self.times.append(now_ms)
        self.max = max(self.max, len(self.times))


class _Tenant:
    def __init__(self, config: "Config", tenant_id: str) -> None:
        # Phases derive from (seed, tenant) so a run is reproducible whatever order tenants appear in.
        rng = random.Random("%s:%s" % (config.seed, tenant_id))
        self.minute = _FixedWindow(config.minute_ms, config.minute_limit, rng.uniform(0, config.minute_ms))
        self.day = _FixedWindow(config.day_ms, config.day_limit, rng.uniform(0, config.day_ms))
        self.in_flight = 0
        self.max_in_flight = 0
        self.admitted = 0
        self.rolling = _Rolling(config.minute_ms)
        self.offline_until_ms = -1.0


class Config:
    def __init__(
        self,
        minute_ms: int = 60_000,
        minute_limit: int = 60,
        day_ms: int = 86_400_000,
        day_limit: int = 5000,
        concurrency: int = 5,
        app_minute_limit: int = 10_000,
        latency_ms: float = 5,
        seed: Optional[int] = None,
    ) -> None:
        if min(minute_ms, day_ms) <= 0:
            raise ValueError("window lengths must be positive")
        self.minute_ms = minute_ms
        self.minute_limit = minute_limit
        self.day_ms = day_ms
        self.day_limit = day_limit
        self.concurrency = concurrency
        self.app_minute_limit = app_minute_limit
        self.latency_ms = latency_ms
        self.seed = seed if seed is not None else random.randrange(1 << 31)

    def as_dict(self) -> Dict[str, Any]:
        return dict(vars(self))


class _State:
    """Everything the server knows; guarded by one lock (calls are few, simplicity wins)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self._clear()

    def _clear(self) -> None:
        cfg = self.config
        rng = random.Random("%s:app" % cfg.seed)
        self.app = _FixedWindow(cfg.minute_ms, cfg.app_minute_limit, rng.uniform(0, cfg.minute_ms))
        self.app_rolling = _Rolling(cfg.minute_ms)
        self.tenants: Dict[str, _Tenant] = {}
        self.maintenance_until_ms = -1.0
        self.total = 0
        self.by_status: "collections.Counter[str]" = collections.Counter()
        self.by_problem: "collections.Counter[str]" = collections.Counter()
        self.tenantless_admitted = 0
        self.log: List[Dict[str, Any]] = []

    def reset(self) -> None:
        with self.lock:
            self._clear()

    def now_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def tenant(self, tenant_id: str) -> _Tenant:
        t = self.tenants.get(tenant_id)
        if t is None:
            t = self.tenants[tenant_id] = _Tenant(self.config, tenant_id)
        return t

    def stats(self) -> Dict[str, Any]:
        with self.lock:
            return {
                "total_requests": self.total,
                "by_status": dict(self.by_status),
                "count_429": self.by_status.get("429", 0),
                "by_problem": dict(self.by_problem),
                "admitted": {k: t.admitted for k, t in self.tenants.items()},
                "max_admitted_in_rolling_minute": {k: t.rolling.max for k, t in self.tenants.items()},
                "max_in_flight": {k: t.max_in_flight for k, t in self.tenants.items()},
                "tenantless_admitted": self.tenantless_admitted,
                "app_admitted": sum(t.admitted for t in self.tenants.values()) + self.tenantless_admitted,
                "app_max_admitted_in_rolling_minute": self.app_rolling.max,
                "config": self.config.as_dict(),
            }


def _retry_after_seconds(ms: float) -> str:
    return str(max(1, math.ceil(ms / 1000.0)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect
    # Headers and body go out in two writes; without TCP_NODELAY the body waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "xero-like/1"
    state: "_State"  # set on a per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass

    # Any method goes through one dispatcher.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: List[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes = b"", headers: Optional[List[Tuple[str, str]]] = None,
              content_type: Optional[str] = None) -> None:
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        if content_type and body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: Optional[List[Tuple[str, str]]] = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers, "application/json; charset=utf-8")

    def _dispatch(self) -> None:
        self.body = self._read_body()
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/__control/") or url.path in ("/__stats", "/__log"):
            self._control(url.path, query)
        elif _is_api(url.path) or _is_connections(url.path):
            self._api(url.path)
        else:
            self._send(404, NOT_FOUND_BODY, content_type="text/html")

    def _control(self, path: str, query: Dict[str, str]) -> None:
        st = self.state
        try:
            if path == "/__stats":
                return self._send_json(200, st.stats())
            if path == "/__log":
                with st.lock:
                    log = list(st.log)
                return self._send_json(200, log)
            if self.command != "POST":
                return self._send(405)
            if path == "/__control/reset":
                st.reset()
            elif path == "/__control/offline":
                ms = float(query["ms"])
                with st.lock:
                    st.tenant(query["tenant"]).offline_until_ms = st.now_ms() + ms
            elif path == "/__control/maintenance":
                ms = float(query["ms"])
                with st.lock:
                    st.maintenance_until_ms = st.now_ms() + ms
            else:
                return self._send(404)
        except (KeyError, ValueError) as exc:
            return self._send(400, ("bad control request: %r" % (exc,)).encode(), content_type="text/plain")
        self._send_json(200, {"ok": True})

    def _api(self, path: str) -> None:
        st = self.state
        cfg = st.config
        tenant_id = (self.headers.get("Xero-Tenant-Id") or "").strip()
        tenantless = _is_connections(path)
        problem: Optional[str] = None
        headers: List[Tuple[str, str]] = []
        with st.lock:
            now = st.now_ms()
            st.total += 1
            tenant = None if tenantless or not tenant_id else st.tenant(tenant_id)
            if not tenantless and tenant is None:
                status, body = 400, b'{"Title":"Bad Request","Status":400,"Detail":"Xero-Tenant-Id is required"}'
            elif now < st.maintenance_until_ms:
                status, body = 503, MAINTENANCE_BODY
            elif tenant is not None and now < tenant.offline_until_ms:
                status, body = 503, OFFLINE_BODY
            else:
                status, body = 200, b""
                if tenant is not None and tenant.day.full(now):
                    problem, reset = "day", tenant.day.ms_until_reset(now)
                elif tenant is not None and tenant.minute.full(now):
                    problem, reset = "minute", tenant.minute.ms_until_reset(now)
                elif st.app.full(now):
                    problem, reset = "appminute", st.app.ms_until_reset(now)
                elif tenant is not None and tenant.in_flight >= cfg.concurrency:
                    problem, reset = "concurrent", 0.0
                if problem is not None:
                    status = 429
                    st.by_problem[problem] += 1
                    headers.append(("X-Rate-Limit-Problem", problem))
                    if problem != "concurrent":
                        headers.append(("Retry-After", _retry_after_seconds(reset)))
                else:
                    # Admitted: only these calls count against the windows.
                    st.app.add(now)
                    st.app_rolling.add(now)
                    if tenant is None:
                        st.tenantless_admitted += 1
                    else:
                        tenant.minute.add(now)
                        tenant.day.add(now)
                        tenant.rolling.add(now)
                        tenant.admitted += 1
                        tenant.in_flight += 1
                        tenant.max_in_flight = max(tenant.max_in_flight, tenant.in_flight)
            if tenant is not None:
                headers.append(("X-MinLimit-Remaining", str(tenant.minute.remaining(now))))
                headers.append(("X-DayLimit-Remaining", str(tenant.day.remaining(now))))
            headers.append(("X-AppMinLimit-Remaining", str(st.app.remaining(now))))
            st.by_status[str(status)] += 1
            if len(st.log) < LOG_CAP:
                st.log.append({"t_ms": round(now, 3), "method": self.command, "path": path,
                               "tenant": tenant_id or None, "status": status, "problem": problem,
                               "body_bytes": len(self.body)})
        if status == 200:
            try:
                time.sleep(cfg.latency_ms / 1000.0)
            finally:
                if tenant is not None:
                    # Freed before the response is written, so a client's next call never sees it in flight.
                    with st.lock:
                        tenant.in_flight -= 1
            return self._send_json(200, _ok_body(path, tenantless), headers)
        if status == 429:
            return self._send(429, b"", headers)
        self._send(status, body, headers, "text/html" if status == 503 else "application/json")


# Xero matches paths case-insensitively (xero-python asks for /Connections).
def _is_api(path: str) -> bool:
    return path.lower().startswith(API_PREFIX)


def _is_connections(path: str) -> bool:
    return path.lower().rstrip("/") == "/connections"


def _ok_body(path: str, tenantless: bool) -> Any:
    now = int(time.time() * 1000)
    if tenantless:
        return []  # /connections: tenants are not modelled; an empty list is valid
    segments = [s for s in path[len(API_PREFIX):].split("/") if s]
    body: Dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "xeroguard-test",
                            "DateTimeUTC": "/Date(%d)/" % now}
    for seg in dict.fromkeys([segments[0], segments[-1]] if segments else []):
        if seg.lower() == "organisation":
            body["Organisations"] = [{
                "OrganisationID": str(uuid.uuid4()), "Name": "xeroguard test org",
                "LegalName": "xeroguard test org", "ShortCode": "!test", "IsDemoCompany": False,
            }]
        else:
            body[seg] = []
    return body


class _HTTPServer(ThreadingHTTPServer):
    # A burst of clients must not overflow the default listen backlog of 5 (they would stall for a second).
    request_queue_size = 128


class XeroLikeServer:
    """The server in a background thread: `start()`/`stop()` or use it as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.config = Config(**config)
        self.state = _State(self.config)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = _HTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self._thread: Optional[threading.Thread] = None

    @property
    def base_url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    @property
    def api_url(self) -> str:
        return self.base_url + "/api.xro/2.0"

    def start(self) -> "XeroLikeServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="xero-like-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> "XeroLikeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # Direct access to the controls (same effect as the HTTP endpoints).
    def stats(self) -> Dict[str, Any]:
        return self.state.stats()

    def log(self) -> List[Dict[str, Any]]:
        with self.state.lock:
            return list(self.state.log)

    def reset(self) -> None:
        self.state.reset()

    def set_offline(self, tenant: str, ms: float) -> None:
        with self.state.lock:
            self.state.tenant(tenant).offline_until_ms = self.state.now_ms() + ms

    def set_maintenance(self, ms: float) -> None:
        with self.state.lock:
            self.state.maintenance_until_ms = self.state.now_ms() + ms


def _stdin_can_end() -> bool:
    """Only a pipe, socket or terminal on stdin is a parent's lifeline. /dev/null or no stdin at all (as under
    CI) would read EOF at once and stop the server before any test ran."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--minute-ms", type=int, default=60_000)
    p.add_argument("--minute-limit", type=int, default=60)
    p.add_argument("--day-ms", type=int, default=86_400_000)
    p.add_argument("--day-limit", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=5)
    p.add_argument("--app-minute-limit", type=int, default=10_000)
    p.add_argument("--latency-ms", type=float, default=5)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--ignore-stdin", action="store_true", help="do not stop when stdin reaches EOF")
    a = p.parse_args(argv)
    server = XeroLikeServer(a.host, a.port, minute_ms=a.minute_ms, minute_limit=a.minute_limit,
                            day_ms=a.day_ms, day_limit=a.day_limit, concurrency=a.concurrency,
                            app_minute_limit=a.app_minute_limit, latency_ms=a.latency_ms, seed=a.seed)
    server.start()
    sys.stdout.write("READY %d\n" % server.port)
    sys.stdout.flush()
    done = threading.Event()
    if not a.ignore_stdin and _stdin_can_end():
        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                done.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
