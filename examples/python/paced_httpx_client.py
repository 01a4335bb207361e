"""Many httpx calls for several tenants, paced by xeroguard so the server never answers 429.

    python3 examples/python/paced_httpx_client.py BASE_URL [--calls 20] [--tenants a,b]
        [--minute-ms 60000] [--minute-limit 60]

BASE_URL is a Xero-like server, e.g. the local test server (tests/server/xero_like_server.py); the
--minute-* options tell the limiter how that server counts a minute.
"""

import argparse
import collections
from concurrent.futures import ThreadPoolExecutor

import httpx

import xeroguard
from xeroguard.integrations.httpx import XeroGuardTransport

p = argparse.ArgumentParser()
p.add_argument("base_url")
p.add_argument("--calls", type=int, default=20, help="calls per tenant")
p.add_argument("--tenants", default="tenant-1,tenant-2")
p.add_argument("--minute-ms", type=int, default=60_000)
p.add_argument("--minute-limit", type=int, default=60)
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

with xeroguard.Limiter(limits) as limiter, httpx.Client(
    base_url=args.base_url, transport=XeroGuardTransport(limiter)
) as client:

    def get_invoices(tenant):
        r = client.get("/api.xro/2.0/Invoices", headers={"Xero-Tenant-Id": tenant})
        return r.status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(get_invoices, [t for _ in range(args.calls) for t in tenants]))

print("calls:", len(statuses))
print("statuses:", dict(sorted(collections.Counter(statuses).items())))
