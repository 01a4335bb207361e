"""The C ABI of libxeroguard (include/xeroguard.h): loading, struct mirrors, and one declaration table."""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import warnings
from ctypes import (
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from .errors import STATUS_ERRORS, XeroGuardError

# The ABI this package was written against (XG_ABI_VERSION in the header). A library serves it when
# xg_abi_oldest_version() <= it <= xg_abi_version(), and has every function this package declares when its version
# is at least the package's.
EXPECTED_ABI_VERSION = 3
# This package's version, the crate's (tests/packaging/test_versions.py ties them).
PACKAGE_VERSION = "0.1.0"

# Constants copied from the header; tests/test_native.py ties each to it.
XG_NONE = 0
XG_UNKNOWN = -1
XG_MAX_TENANT_ID_BYTES = 256
XG_CLOCK_MONOTONIC = 0
XG_CLOCK_MANUAL = 1
# xg_redis_options.replace_limits: which limits win when the prefix holds others.
XG_STORED_LIMITS_MUST_MATCH = 0
XG_STORED_LIMITS_REPLACE = 1
XG_STORED_LIMITS_ADOPT = 2
XG_NO_DEADLINE = 0xFFFF_FFFF_FFFF_FFFF
XG_MAX_STORE_DEADLINE_MS = 10_000
XG_MAX_KEY_PREFIX_BYTES = 128
XG_STATUS_OK = 0
XG_STATUS_BUFFER_TOO_SMALL = 5
# xg_wait_outcome and xg_transport_failure (no name functions: their codes are written here).
XG_WAIT_OUTCOME_GRANTED = 1
XG_WAIT_OUTCOME_ASK_AGAIN = 2
XG_WAIT_OUTCOME_GIVE_UP = 3
XG_TRANSPORT_FAILURE_NOT_SENT = 1
XG_TRANSPORT_FAILURE_NO_RESPONSE = 2
# The lengths of xg_stats' arrays (fixed forever: a later vocabulary code is counted in an appended field).
XG_STATS_REASONS = 9
XG_STATS_FAILURE_POLICIES = 4
XG_STATS_WAIT_BUCKETS = 7
XG_STATS_CATEGORIES = 17
XG_STATS_RATE_LIMIT_PROBLEMS = 6
XG_STATS_STORE_FAILURE_KINDS = 5


class XgHeader(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("name_len", c_size_t),
        ("value", c_char_p),
        ("value_len", c_size_t),
    ]


class XgResponse(Structure):
    """xg_response, for the declaration of xg_classify (the package classifies through xg_classify_flat)."""

    _fields_ = [
        ("status", c_uint16),
        ("headers", POINTER(XgHeader)),
        ("header_count", c_size_t),
        ("body", POINTER(c_uint8)),
        ("body_len", c_size_t),
        ("now_unix_ms", c_int64),
    ]


class _Sized(Structure):
    """A struct beginning with `struct_size`, which the library checks: set on construction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.struct_size = ctypes.sizeof(self)


class XgClassification(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("status", c_uint16),
        ("category", c_uint32),
        ("action", c_uint32),
        ("retryable", c_uint8),
        ("rate_limit_problem", c_uint32),
        ("auth_problem", c_uint32),
        ("retry_after_ms", c_int64),
        ("recommended_wait_ms", c_int64),
        ("minute_remaining", c_int64),
        ("day_remaining", c_int64),
        ("app_minute_remaining", c_int64),
        ("has_error_number", c_uint8),
        ("error_number", c_int64),
        ("validation_message_count", c_uint32),
        ("warning_count", c_uint32),
        ("failed_element_count", c_uint32),
        ("may_have_been_processed", c_uint8),
    ]


class XgRetryPolicy(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("max_retries", c_uint32),
        ("base_ms", c_uint64),
        ("max_backoff_ms", c_uint64),
        ("jitter_ms", c_uint64),
        ("max_wait_ms", c_uint64),
    ]


class XgBackoffDecision(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("retry", c_uint8),
        ("wait_ms", c_uint64),
        ("give_up", c_uint32),
    ]


class XgRequest(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("method", c_char_p),
        ("method_len", c_size_t),
        ("has_idempotency_key", c_uint8),
    ]


class XgWindowLimit(Structure):
    _fields_ = [
        ("limit", c_uint32),
        ("window_ms", c_uint64),
        ("margin_ms", c_uint64),
    ]


class XgLimits(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("tenant_minute", XgWindowLimit),
        ("tenant_day", XgWindowLimit),
        ("tenant_concurrency", c_uint32),
        ("app_minute", XgWindowLimit),
        ("permit_timeout_ms", c_uint64),
        ("max_tenants", c_uint32),
    ]


class XgRedisOptions(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("url", c_char_p),
        ("url_len", c_size_t),
        ("key_prefix", c_char_p),
        ("key_prefix_len", c_size_t),
        ("deadline_ms", c_uint64),
        ("breaker_cooldown_ms", c_uint64),
        ("on_store_error", c_uint32),
        ("workers", c_uint32),
        ("replace_limits", c_uint8),
        ("tls_ca_file", c_char_p),
        ("tls_ca_file_len", c_size_t),
    ]


class XgDecision(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("granted", c_uint8),
        ("permit", c_uint64),
        ("wait_ms", c_uint64),
        ("reason", c_uint32),
        ("fallback", c_uint32),
    ]


class XgWaitStep(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("outcome", c_uint32),
        ("permit", c_uint64),
        ("wait_ms", c_uint64),
        ("reason", c_uint32),
        ("sleep_ms", c_uint64),
        ("fallback", c_uint32),
        # In and out: the wait in progress, which the library keeps here from step to step (pass the same struct).
        ("waiting", c_uint8),
        ("wait_started_ms", c_uint64),
        ("waited_ms", c_uint64),
    ]


class XgStats(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("shared", c_uint8),
        ("breaker_open", c_uint8),
        ("granted", c_uint64),
        ("refused", c_uint64 * XG_STATS_REASONS),
        ("fallbacks", c_uint64 * XG_STATS_FAILURE_POLICIES),
        ("waits_started", c_uint64),
        ("waits_granted", c_uint64),
        ("waits_given_up", c_uint64),
        ("waits_interrupted", c_uint64),
        ("wait_ms_total", c_uint64),
        ("wait_bucket_le_ms", c_uint64 * XG_STATS_WAIT_BUCKETS),
        ("wait_buckets", c_uint64 * XG_STATS_WAIT_BUCKETS),
        ("responses", c_uint64 * XG_STATS_CATEGORIES),
        ("rate_limited", c_uint64 * XG_STATS_RATE_LIMIT_PROBLEMS),
        ("store_operations", c_uint64),
        ("store_failures", c_uint64 * XG_STATS_STORE_FAILURE_KINDS),
        ("breaker_openings", c_uint64),
        ("replays_pending", c_uint64),
    ]


class XgReservation(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("id", c_uint64),
        ("at_ms", c_uint64),
        ("wait_ms", c_uint64),
    ]


class XgTenantLimits(_Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("minute_limit", c_uint32),
        ("day_limit", c_uint32),
        ("concurrency", c_uint32),
    ]


class XgLimiter(Structure):
    """Opaque handle type."""


_LimiterP = POINTER(XgLimiter)
# char ** for library-owned strings: c_void_p keeps the address so it can be freed (c_char_p would copy it away).
_StrOut = POINTER(c_void_p)
_Bytes = c_char_p  # (pointer, length) text and byte inputs; bytes objects pass without copying


def _library_names() -> List[str]:
    if sys.platform == "win32":
        return ["xeroguard.dll"]
    if sys.platform == "darwin":
        return ["libxeroguard.dylib"]
    return ["libxeroguard.so"]


def _load() -> Tuple[ctypes.CDLL, str]:
    tried: List[str] = []
    override = os.environ.get("XEROGUARD_LIBRARY")
    candidates: List[Path] = []
    if override:
        candidates.append(Path(override))
    here = Path(__file__).resolve().parent
    candidates += [here / name for name in _library_names()]
    for i, path in enumerate(candidates):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            tried.append("%s (%s)" % (path, exc))
            continue
        if override and i > 0:
            # A broken override silently replaced by the bundled copy would hide the user's mistake.
            warnings.warn("XEROGUARD_LIBRARY=%s could not be loaded; using %s" % (override, path), RuntimeWarning)
        return lib, str(path)
    raise ImportError(
        "xeroguard: cannot load the native library libxeroguard. Tried (in order): "
        + "; ".join(tried)
        + ". Set XEROGUARD_LIBRARY to the library's path, or reinstall the package (pip install builds it)."
    )


lib, library_path = _load()


def last_error_message() -> str:
    """The calling thread's last error message from the library."""
    needed = c_size_t(0)
    buf = ctypes.create_string_buffer(512)
    status = lib.xg_last_error_message(buf, len(buf), ctypes.byref(needed))
    if status == XG_STATUS_BUFFER_TOO_SMALL:
        buf = ctypes.create_string_buffer(needed.value)
        lib.xg_last_error_message(buf, len(buf), ctypes.byref(needed))
    return buf.value.decode("utf-8", "replace")


def _buffered(fill: Callable[[Any, int, Any], int]) -> str:
    """Text a library function writes into a caller's buffer (as xg_last_error_message does)."""
    needed = c_size_t(0)
    buf = ctypes.create_string_buffer(128)
    status = fill(buf, len(buf), ctypes.byref(needed))
    if status == XG_STATUS_BUFFER_TOO_SMALL:
        buf = ctypes.create_string_buffer(needed.value)
        status = fill(buf, len(buf), ctypes.byref(needed))
    if status != XG_STATUS_OK:
        _check_status(status, fill, ())
    return buf.value.decode("utf-8", "replace")


def refusal_words(reason_code: int, wait_ms: int, in_flight: int = 0) -> str:
    """A refusal in the library's words: "day limit: next call in 11 h 59 min" (xg_refusal_words)."""
    return _buffered(lambda buf, size, needed: lib.xg_refusal_words(reason_code, wait_ms, in_flight, buf, size, needed))


def duration_words(ms: int) -> str:
    """A duration in the library's words: "1 min 30 s" (xg_duration_words)."""
    return _buffered(lambda buf, size, needed: lib.xg_duration_words(ms, buf, size, needed))


def status_name(status: int) -> str:
    name: bytes = lib.xg_status_name(status)
    return name.decode("ascii")


def _check_status(result: int, func: Any, args: Any) -> int:
    """errcheck for every xg_status function: runs on the calling thread right after the call, so the
    thread-local last error still belongs to it."""
    if result != XG_STATUS_OK:
        message = last_error_message() or func.__name__
        cls = STATUS_ERRORS.get(result, XeroGuardError)
        raise cls(message, status=result, status_name=status_name(result))
    return result


def _static_str(result: Optional[bytes], func: Any, args: Any) -> Optional[str]:
    return None if result is None else result.decode("utf-8")


_S = c_int32  # xg_status
_Decl = Tuple[str, Any, List[Any], Optional[Callable[..., Any]]]

# Every function of include/xeroguard.h: (name, restype, argtypes, errcheck).
DECLARATIONS: List[_Decl] = [
    ("xg_last_error_message", _S, [POINTER(c_char), c_size_t, POINTER(c_size_t)], None),
    ("xg_status_name", c_char_p, [_S], None),
    ("xg_string_free", None, [c_void_p], None),
    ("xg_version", c_char_p, [], _static_str),
    ("xg_abi_version", c_uint32, [], None),
    ("xg_abi_oldest_version", c_uint32, [], None),
    ("xg_classify", _S, [POINTER(XgResponse), POINTER(XgClassification), _StrOut], _check_status),
    # Headers as one NUL-separated buffer: bytes pass without copying, so nothing is built per header.
    ("xg_classify_flat", _S, [c_uint16, _Bytes, c_size_t, _Bytes, c_size_t, c_int64, POINTER(XgClassification),
                              _StrOut], _check_status),
    ("xg_body_bytes_to_classify", _S, [c_uint16, _Bytes, c_size_t, POINTER(c_uint64)], _check_status),
    ("xg_classify_raw", _S, [_Bytes, c_size_t, c_int64, POINTER(XgClassification), _StrOut], _check_status),
    ("xg_retry_policy_default", XgRetryPolicy, [], None),
    ("xg_backoff", _S, [POINTER(XgClassification), c_uint32, POINTER(XgRetryPolicy), POINTER(XgBackoffDecision)],
     _check_status),
    # The response may be None: a transport failure, given as the third argument.
    ("xg_resend", _S, [POINTER(XgRequest), POINTER(XgClassification), c_uint32, c_uint32, POINTER(XgRetryPolicy),
                       POINTER(XgBackoffDecision)], _check_status),
    ("xg_method_is_write", _S, [_Bytes, c_size_t, POINTER(c_uint8)], _check_status),
    ("xg_category_name", c_char_p, [c_uint32], _static_str),
    ("xg_action_name", c_char_p, [c_uint32], _static_str),
    ("xg_rate_limit_problem_name", c_char_p, [c_uint32], _static_str),
    ("xg_auth_problem_name", c_char_p, [c_uint32], _static_str),
    ("xg_give_up_name", c_char_p, [c_uint32], _static_str),
    ("xg_failure_policy_name", c_char_p, [c_uint32], _static_str),
    ("xg_reason_name", c_char_p, [c_uint32], _static_str),
    ("xg_store_failure_kind_name", c_char_p, [c_uint32], _static_str),
    # Written into a caller's buffer like the last error message (their status is read by words(), not errcheck).
    ("xg_refusal_words", _S, [c_uint32, c_uint64, c_uint32, POINTER(c_char), c_size_t, POINTER(c_size_t)], None),
    ("xg_duration_words", _S, [c_uint64, POINTER(c_char), c_size_t, POINTER(c_size_t)], None),
    ("xg_limits_default", XgLimits, [], None),
    ("xg_limits_exact", XgLimits, [], None),
    ("xg_limiter_new", _S, [POINTER(XgLimits), c_uint32, POINTER(_LimiterP)], _check_status),
    ("xg_redis_options_default", XgRedisOptions, [], None),
    ("xg_limiter_new_redis", _S, [POINTER(XgLimits), POINTER(XgRedisOptions), c_uint32, POINTER(_LimiterP)],
     _check_status),
    ("xg_limiter_inspect_redis", _S, [POINTER(XgRedisOptions), c_uint32, POINTER(_LimiterP)], _check_status),
    ("xg_limiter_free", None, [_LimiterP], None),
    ("xg_limiter_now_ms", _S, [_LimiterP, POINTER(c_uint64)], _check_status),
    ("xg_limiter_limits", _S, [_LimiterP, POINTER(XgLimits)], _check_status),
    ("xg_limiter_advance_ms", _S, [_LimiterP, c_uint64], _check_status),
    ("xg_limiter_set_now_ms", _S, [_LimiterP, c_uint64], _check_status),
    ("xg_limiter_acquire", _S, [_LimiterP, _Bytes, c_size_t, POINTER(XgDecision)], _check_status),
    ("xg_limiter_acquire_wait", _S, [_LimiterP, _Bytes, c_size_t, c_uint64, POINTER(XgDecision)], _check_status),
    ("xg_limiter_deadline_ms", _S, [_LimiterP, c_uint64, POINTER(c_uint64)], _check_status),
    ("xg_limiter_acquire_until", _S, [_LimiterP, _Bytes, c_size_t, c_uint64, c_uint64, POINTER(XgWaitStep)],
     _check_status),
    ("xg_limiter_interrupt", _S, [_LimiterP], _check_status),
    ("xg_limiter_peek", _S, [_LimiterP, _Bytes, c_size_t, POINTER(XgDecision)], _check_status),
    ("xg_limiter_record", _S, [_LimiterP, _Bytes, c_size_t], _check_status),
    ("xg_limiter_release", _S, [_LimiterP, c_uint64], _check_status),
    ("xg_limiter_reserve", _S, [_LimiterP, _Bytes, c_size_t, POINTER(XgReservation)], _check_status),
    ("xg_limiter_cancel", _S, [_LimiterP, c_uint64], _check_status),
    ("xg_limiter_observe", _S, [_LimiterP, _Bytes, c_size_t, POINTER(XgClassification)], _check_status),
    ("xg_limiter_observe_raw", _S, [_LimiterP, _Bytes, c_size_t, _Bytes, c_size_t], _check_status),
    ("xg_limiter_snapshot_json", _S, [_LimiterP, _Bytes, c_size_t, _StrOut], _check_status),
    ("xg_limiter_set_tenant_limits", _S, [_LimiterP, _Bytes, c_size_t, POINTER(XgTenantLimits)], _check_status),
    ("xg_limiter_stats", _S, [_LimiterP, POINTER(XgStats)], _check_status),
]


def _version_tuple(text: str) -> Tuple[int, ...]:
    """(major, minor, patch) of "1.2.3" (a pre-release suffix is ignored)."""
    return tuple(int(part) for part in text.split("-", 1)[0].split(".")[:3])


def refusal(path: str, found: str, abi: int, oldest: int) -> Optional[str]:
    """Why a library of version `found` serving ABIs `oldest` to `abi` cannot serve this package, or None when it can:
    its ABI range must hold EXPECTED_ABI_VERSION, and it must be at least as new as the package (an older one lacks
    what later versions added)."""
    fix = "install the library this package came with, or set XEROGUARD_LIBRARY to one of version %s or later" % (
        PACKAGE_VERSION)
    if not oldest <= EXPECTED_ABI_VERSION <= abi:
        served = str(abi) if oldest == abi else "%d to %d" % (oldest, abi)
        return "xeroguard: %s (version %s) serves ABI %s but this package needs ABI %d; %s" % (
            path, found, served, EXPECTED_ABI_VERSION, fix)
    if _version_tuple(found) < _version_tuple(PACKAGE_VERSION):
        return "xeroguard: %s is version %s, older than this package (%s); %s" % (path, found, PACKAGE_VERSION, fix)
    return None


def _check_library(path: str) -> str:
    """The library's version, once `refusal` finds nothing wrong with it."""
    lib.xg_version.restype = c_char_p
    lib.xg_abi_version.restype = c_uint32
    found: str = lib.xg_version().decode("utf-8", "replace")
    abi: int = lib.xg_abi_version()
    # A library older than ABI 3 lacks the function; it served only its own ABI.
    oldest: int = lib.xg_abi_oldest_version() if hasattr(lib, "xg_abi_oldest_version") else abi
    why = refusal(path, found, abi, oldest)
    if why:
        raise ImportError(why)
    return found


# Checked before any declaration below is looked up, so an old library is named as such, not as a missing symbol.
version: str = _check_library(library_path)

for _name, _restype, _argtypes, _errcheck in DECLARATIONS:
    try:
        _fn = getattr(lib, _name)
    except AttributeError:
        raise ImportError("xeroguard: %s lacks the function %s; it is not a matching build" % (library_path, _name))
    _fn.restype = _restype
    _fn.argtypes = _argtypes
    if _errcheck is not None:
        _fn.errcheck = _errcheck

abi_version: int = lib.xg_abi_version()


def take_bytes(ptr: c_void_p) -> bytes:
    """Copies a library-owned string and frees it."""
    if not ptr.value:
        raise XeroGuardError("the library returned no string")
    try:
        return ctypes.string_at(ptr.value)
    finally:
        lib.xg_string_free(ptr)


def take_string(ptr: c_void_p) -> str:
    """Copies a library-owned string, frees it, and decodes it (the library writes UTF-8)."""
    return take_bytes(ptr).decode("utf-8")


_STRUCT_CODES = {c_uint8: "B", c_uint16: "H", c_uint32: "I", c_int64: "q", c_uint64: "Q"}
_POINTER_CODE = {4: "I", 8: "Q"}[ctypes.sizeof(c_void_p)]


def _layout(struct_type: Any) -> str:
    """The `struct` module format of one `struct_type` (standard sizes, padding spelt out; pointers as
    unsigned integers)."""
    layout = ""
    end = 0
    for name, ctype in struct_type._fields_:
        offset = getattr(struct_type, name).offset
        if ctype in (c_char_p, c_void_p) or issubclass(ctype, ctypes._Pointer):
            code = _POINTER_CODE
        else:
            code = _STRUCT_CODES[ctype]
        if struct.calcsize("=" + code) != ctypes.sizeof(ctype):
            raise ImportError("xeroguard: %s has an unexpected size on this platform" % ctype.__name__)
        layout += "%dx%s" % (offset - end, code)
        end = offset + ctypes.sizeof(ctype)
    return layout + "%dx" % (ctypes.sizeof(struct_type) - end)


def field_reader(struct_type: Any) -> Callable[[Any], Tuple[Any, ...]]:
    """A function returning every field of a flat `struct_type` instance at once (struct.unpack_from over its
    buffer: one call where reading the fields one by one costs a ctypes descriptor call each)."""
    return struct.Struct("=" + _layout(struct_type)).unpack_from
