"""A fleet worker in Python (tests/fleet/test_fleet.py runs several, beside C and C# ones): threads per tenant call
the Xero-like server through httpx clients whose XeroGuardTransport paces every call through one shared (Redis)
xeroguard.Limiter.

Protocol (as tests/fleet/worker.c): after setup it prints "READY <unix time, s> <time.monotonic(), ms>", waits for
"GO <run ms>" on stdin, calls until run ms have passed, then prints one JSON line
    {"id", "language", "calls": [[seq, sent_ms, status], ...], "errors": [...]}
where sent_ms is time.monotonic() (CLOCK_MONOTONIC) when the request left the guard (permit granted) to be sent.

Usage: python worker.py --id ID --redis URL --prefix P --port PORT --tenants a,b --threads-per-tenant K
       --minute L/W/M --day L/W/M --concurrency N --app L/W/M --permit-timeout-ms MS [--breaker-cooldown-ms MS]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from typing import Any, Dict, List

import httpx

import xeroguard
from xeroguard.integrations.httpx import XeroGuardTransport

SENT_MS = "fleet.sent_ms"


class StampingTransport(httpx.BaseTransport):
    """Between the guard and the sender: stamps the moment a paced request is handed on to be sent."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions[SENT_MS] = time.monotonic() * 1000.0
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def window(text: str) -> xeroguard.WindowLimit:
    limit, window_ms, margin_ms = (int(part) for part in text.split("/"))
    return xeroguard.WindowLimit(limit, window_ms=window_ms, margin_ms=margin_ms)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--id", "--redis", "--prefix", "--tenants", "--minute", "--day", "--app"):
        p.add_argument(name, required=True)
    for name in ("--port", "--concurrency", "--permit-timeout-ms"):
        p.add_argument(name, type=int, required=True)
    p.add_argument("--threads-per-tenant", type=int, default=1)
    p.add_argument("--breaker-cooldown-ms", type=int, default=None)  # None: the library's default
    a = p.parse_args(argv)
    limits = xeroguard.Limits(tenant_minute=window(a.minute), tenant_day=window(a.day),
                              tenant_concurrency=a.concurrency, app_minute=window(a.app),
                              permit_timeout_ms=a.permit_timeout_ms, max_tenants=0)
    limiter = xeroguard.Limiter(limits, redis_url=a.redis, key_prefix=a.prefix,
                                breaker_cooldown_ms=a.breaker_cooldown_ms)
    base = "http://127.0.0.1:%d" % a.port
    tenants = a.tenants.split(",") * a.threads_per_tenant
    senders = [httpx.HTTPTransport() for _ in tenants]
    clients = [httpx.Client(transport=XeroGuardTransport(limiter, transport=StampingTransport(sender)))
               for sender in senders]
    # Opens each thread's connection (and starts the server's handler thread) outside the limits: /__stats is not
    # an API call. Through the sender itself, so the run reuses the connection.
    for sender in senders:
        sender.handle_request(httpx.Request("GET", base + "/__stats")).read()
    # One call through the whole guarded path with a limiter of its own, so the run's first calls do not pay for
    # first-time work; the harness clears the server's counts before the run.
    with xeroguard.Limiter(limits) as local:
        warm = httpx.Client(transport=XeroGuardTransport(local, transport=StampingTransport(senders[0])))
        warm.get(base + "/api.xro/2.0/Invoices/warm-up-" + a.id, headers={"Xero-Tenant-Id": "warm-up-" + a.id})

    print("READY %.3f %.3f" % (time.time(), time.monotonic() * 1000.0), flush=True)
    go = sys.stdin.readline().split()
    if len(go) != 2 or go[0] != "GO":
        print("worker.py: expected 'GO <run ms>' on stdin, got %r" % go, file=sys.stderr)
        return 2
    until = time.monotonic() + int(go[1]) / 1000.0
    seq = itertools.count()  # next() on it is atomic under the GIL
    calls: List[List[Any]] = []
    errors: List[str] = []

    def run(client: httpx.Client, tenant: str) -> None:
        try:
            while time.monotonic() < until:
                n = next(seq)
                response = client.get("%s/api.xro/2.0/Invoices/%s-%d" % (base, a.id, n),
                                      headers={"Xero-Tenant-Id": tenant, "Authorization": "Bearer fleet"})
                calls.append([n, response.request.extensions[SENT_MS], response.status_code])
        except Exception as exc:  # reported in the output; the harness fails on any
            errors.append("%s: %r" % (tenant, exc))

    threads = [threading.Thread(target=run, args=(client, tenant)) for client, tenant in zip(clients, tenants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in clients:
        client.close()
    limiter.close()
    out: Dict[str, Any] = {"id": a.id, "language": "python", "calls": calls, "errors": errors}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
