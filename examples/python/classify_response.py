"""Classify a Xero response and ask how to retry it.

    python3 examples/python/classify_response.py            # a built-in 429
    python3 examples/python/classify_response.py FILE       # a raw response saved by `curl -i`
"""

import sys

import xeroguard

if len(sys.argv) > 1:
    with open(sys.argv[1], "rb") as f:
        c = xeroguard.classify_raw(f.read())
else:
    c = xeroguard.classify(
        429,
        {"X-Rate-Limit-Problem": "minute", "Retry-After": "37", "X-MinLimit-Remaining": "0"},
        b"",
    )

print("category:", c.category.value)
print("action:", c.action.value)
print("rate limit problem:", c.rate_limit_problem.value if c.rate_limit_problem else None)
print("recommended wait (ms):", c.recommended_wait_ms)
if c.retryable:
    d = xeroguard.backoff(c, attempt=1)
    print("first retry:", "after %d ms" % d.wait_ms if d.retry else "give up (%s)" % d.give_up.value)
