"""What the fleet test computes from the server's arrival log: the fullest rolling window, the most calls an exact
rolling limiter could have made in a span (the ceiling), and percentiles. Pure functions, no I/O."""

from __future__ import annotations

import collections
import math
from typing import Deque, Dict, List, Optional, Sequence, Tuple

# (limit, window ms): at most `limit` calls in any half-open window [t, t + window).
Window = Tuple[int, int]


def worst_window(times_ms: Sequence[float], window_ms: float) -> int:
    """The most of the times in any half-open window [s, s + window_ms). The fullest window can always be taken
    to start at one of the times, so only those starts are tried."""
    times = sorted(times_ms)
    best = 0
    end = 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] < t + window_ms:
            end += 1
        best = max(best, end - start)
    return best


def window_bound(span_ms: int, windows: Sequence[Window]) -> int:
    """An upper bound for any span of span_ms: a half-open span holds ceil(span / window) windows end to end, each
    with at most `limit` calls; the tightest window decides."""
    return min(limit * math.ceil(span_ms / window) for limit, window in windows)


def greedy_ceiling(span_ms: int, tenants: int, tenant_windows: Sequence[Window],
                   app_windows: Sequence[Window]) -> int:
    """Calls an exact rolling limiter (no margins, calls taking no time) admits in [0, span_ms) when every tenant
    asks all the time: at each millisecond the tenants take turns, one call each, while anything is admitted.

    A call at t is admitted when, counting it, no window (t - window, t] holds more than its limit, which is
    "no half-open window holds more than the limit" (worst_window)."""
    tenant_logs: List[List[Deque[int]]] = [[collections.deque() for _ in tenant_windows] for _ in range(tenants)]
    app_logs: List[Deque[int]] = [collections.deque() for _ in app_windows]
    total = 0

    def room(logs: Sequence[Deque[int]], windows: Sequence[Window], now: int) -> bool:
        for log, (limit, window) in zip(logs, windows):
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) >= limit:
                return False
        return True

    for now in range(span_ms):
        admitted = True
        while admitted:
            admitted = False
            for logs in tenant_logs:
                if room(logs, tenant_windows, now) and room(app_logs, app_windows, now):
                    for log in logs + app_logs:
                        log.append(now)
                    total += 1
                    admitted = True
    return total


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(math.ceil(q / 100.0 * len(s))) - 1))]


def spread_summary(values: Sequence[float]) -> Dict[str, float]:
    """min / p50 / p99 / max, rounded to 0.1 ms (empty: {})."""
    if not values:
        return {}
    return {"min": round(min(values), 1), "p50": round(percentile(values, 50) or 0.0, 1),
            "p99": round(percentile(values, 99) or 0.0, 1), "max": round(max(values), 1)}
