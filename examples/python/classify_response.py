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

# Enum members print as their words: "rate_limited", not "Category.RATE_LIMITED".
print(f"category: {c.category}")
print(f"action: {c.action}")
print(f"rate limit problem: {c.rate_limit_problem}")
print(f"recommended wait: {c.recommended_wait} s")
if c.retryable:
    d = xeroguard.backoff(c, attempt=1)
    print("first retry:", f"after {d.wait:.3f} s" if d.retry else f"give up ({d.give_up})")
