"""Many httpx calls for several tenants, paced by xeroguard so the server never answers 429.

    python3 examples/python/paced_httpx_client.py BASE_URL [--calls 20] [--tenants a,b]
        [--minute-ms 60000] [--minute-limit 60] [--redis URL --prefix PREFIX]

BASE_URL is a Xero-like server, e.g. the local test server (tests/server/xero_like_server.py); the
--minute-* options tell the limiter how that server counts a minute. With --redis the limits are shared, through
that Redis, by every process run with the same --prefix.
"""

import argparse
import collections
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

import xeroguard
from xeroguard.integrations import WaitEvent
from xeroguard.integrations.httpx import XeroGuardTransport

p = argparse.ArgumentParser()
p.add_argument("base_url")
p.add_argument("--calls", type=int, default=20, help="calls per tenant")
p.add_argument("--tenants", default="tenant-1,tenant-2")
p.add_argument("--minute-ms", type=int, default=60_000)
p.add_argument("--minute-limit", type=int, default=60)
p.add_argument("--redis", help="share the limits through this Redis (redis://host:port, redis+unix:///path)")
p.add_argument("--prefix", default="paced-example", help="the key prefix every sharing process uses")
args = p.parse_args()

# Xero's limits, with a minute as long as the server's. The margin covers the time between sending a call
# and the server counting it; a time-scaled server still needs ~100 ms of it.
defaults = xeroguard.Limits()
margin_ms = max(100, defaults.tenant_minute.margin_ms * args.minute_ms // 60_000)
limits = xeroguard.Limits(
    tenant_minute=xeroguard.WindowLimit(args.minute_limit, window_ms=args.minute_ms, margin_ms=margin_ms),
    app_minute=xeroguard.WindowLimit(defaults.app_minute.limit, window_ms=args.minute_ms, margin_ms=margin_ms),
)
tenants = args.tenants.split(",")
shared = dict(redis_url=args.redis, key_prefix=args.prefix) if args.redis else {}
held_back = collections.Counter()
counting = threading.Lock()


def on_wait(event: WaitEvent) -> None:
    # Called when the limiter holds a call back (once per call): count why.
    with counting:
        held_back[str(event.reason)] += 1


with xeroguard.Limiter(limits, **shared) as limiter, httpx.Client(
    base_url=args.base_url, transport=XeroGuardTransport(limiter, on_wait=on_wait)
) as client:

    def get_invoices(tenant):
        r = client.get("/api.xro/2.0/Invoices", headers={"Xero-Tenant-Id": tenant})
        return r.status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(get_invoices, [t for _ in range(args.calls) for t in tenants]))

print("calls:", len(statuses))
print("statuses:", dict(sorted(collections.Counter(statuses).items())))
print("held back:", dict(sorted(held_back.items())))
