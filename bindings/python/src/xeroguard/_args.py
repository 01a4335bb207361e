"""Checks and conversions of public arguments, done before anything crosses into C.

ctypes converts a Python int to a C integer by wrapping it silently (-1 becomes 4294967295), so every number is
range-checked here against its C type. Durations are seconds (int, float or `datetime.timedelta`), as
`time.sleep` and `asyncio.wait_for` take them; the `*_ms` keyword forms take whole milliseconds.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import operator
from typing import Optional, Union

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

#: The tenant of a tenantless call (e.g. `/connections`), which counts only against the app window.
TENANTLESS = ""

Seconds = Union[int, float, _dt.timedelta]
Tenant = Union[str, bytes, bytearray, memoryview]

_ONE_MICROSECOND = _dt.timedelta(microseconds=1)


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _seconds_text(value: object) -> str:
    return repr(value) if isinstance(value, _dt.timedelta) else "%r s" % (value,)


def _integer(value: object, name: str) -> int:
    if type(value) is int:  # the common case, without the ABC check (this is on every limiter call)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # bool is no count
        raise TypeError("%s must be an int, not %s" % (name, _kind(value)))
    return operator.index(value)


def uint(value: object, name: str, maximum: int) -> int:
    """`value` as an int in 0..maximum (the C type's range)."""
    number = _integer(value, name)
    if not 0 <= number <= maximum:
        raise ValueError("%s must be in 0..%d, got %d" % (name, maximum, number))
    return number


def i64(value: object, name: str) -> int:
    """`value` as an int in the int64_t range."""
    number = _integer(value, name)
    if not I64_MIN <= number <= I64_MAX:
        raise ValueError("%s must be in %d..%d, got %d" % (name, I64_MIN, I64_MAX, number))
    return number


def u32(value: object, name: str) -> int:
    return uint(value, name, U32_MAX)


def u64(value: object, name: str) -> int:
    return uint(value, name, U64_MAX)


def seconds_to_ms(value: object, name: str, maximum: int = U64_MAX) -> int:
    """A duration in seconds (int, float or timedelta) as whole milliseconds, rounded up at microsecond
    resolution (so a wait or a window is never shorter than asked, and 0.1 s is exactly 100 ms)."""
    if isinstance(value, _dt.timedelta):
        micros = value // _ONE_MICROSECOND
    elif isinstance(value, float):
        if math.isnan(value):
            raise ValueError("%s must be a number of seconds, not NaN" % name)
        if value < 0:
            raise ValueError("%s must not be negative, got %r s" % (name, value))
        if value > maximum:  # certainly too long (inf too); also keeps value * 1e6 finite
            raise ValueError("%s must be at most %d ms (%s s), got %r s" % (name, maximum, maximum / 1000, value))
        micros = round(value * 1_000_000)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        micros = operator.index(value) * 1_000_000
    else:
        raise TypeError("%s must be seconds (int, float or datetime.timedelta), not %s" % (name, _kind(value)))
    if micros < 0:
        raise ValueError("%s must not be negative, got %s" % (name, _seconds_text(value)))
    ms = -(-micros // 1000)
    if ms > maximum:
        raise ValueError("%s must be at most %d ms (%s s), got %s" % (name, maximum, maximum / 1000,
                                                                       _seconds_text(value)))
    return ms


def duration_ms(seconds: object, ms: object, name: str, default: Optional[int] = None,
                maximum: int = U64_MAX) -> int:
    """One duration given as `name` (seconds) or `name_ms` (milliseconds), at most one of them. Neither gives
    `default`, or a TypeError naming both forms when there is none."""
    if seconds is not None and ms is not None:
        raise TypeError("give %s (seconds) or %s_ms (milliseconds), not both" % (name, name))
    if seconds is not None:
        return seconds_to_ms(seconds, name, maximum)
    if ms is not None:
        return uint(ms, name + "_ms", maximum)
    if default is None:
        raise TypeError("%s (seconds) or %s_ms (milliseconds) is required" % (name, name))
    return default


def ms_to_seconds(ms: int) -> float:
    return ms / 1000


def optional_ms_to_seconds(ms: Optional[int]) -> Optional[float]:
    return None if ms is None else ms / 1000


def tenant_bytes(tenant: object) -> bytes:
    """A tenant id as the UTF-8 bytes the library takes. A tenantless call must say so with TENANTLESS (''):
    None is refused, since it is far more often a missing tenant than a meant one."""
    if isinstance(tenant, str):
        try:
            return tenant.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("tenant %r cannot be encoded as UTF-8: %s" % (tenant, exc.reason)) from None
    if isinstance(tenant, bytes):
        return tenant
    if isinstance(tenant, (bytearray, memoryview)):
        return bytes(tenant)
    if tenant is None:
        raise TypeError(
            "tenant must be a str or bytes, not None; for a tenantless call (e.g. /connections) pass "
            "xeroguard.TENANTLESS ('')"
        )
    raise TypeError("tenant must be a str or bytes, not %s" % _kind(tenant))


def tenant_text(tenant: Tenant) -> str:
    """A tenant as text for messages."""
    if isinstance(tenant, str):
        return tenant
    return bytes(tenant).decode("utf-8", "replace")
