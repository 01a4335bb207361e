"""classify / classify_raw / backoff: thin translations of xg_classify, xg_classify_raw and xg_backoff."""

from __future__ import annotations

import ctypes
import dataclasses
import datetime as _dt
import enum
import json
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _native as n
from .errors import XeroGuardError


class Category(str, enum.Enum):
    """What kind of response this is (xero-reference §4)."""

    SUCCESS = "success"
    PARTIAL_SUCCESS = "partial_success"
    VALIDATION_ERROR = "validation_error"
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PRECONDITION_FAILED = "precondition_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    NOT_IMPLEMENTED = "not_implemented"
    SERVICE_UNAVAILABLE = "service_unavailable"
    ORGANISATION_OFFLINE = "organisation_offline"
    UNKNOWN = "unknown"


class Action(str, enum.Enum):
    """What the caller should do next."""

    NONE = "none"
    RETRY = "retry"
    REFRESH_TOKEN = "refresh_token"
    REAUTHORIZE = "reauthorize"
    FIX_REQUEST = "fix_request"


class RateLimitProblem(str, enum.Enum):
    """Which rate limit a 429 reports."""

    MINUTE = "minute"
    DAY = "day"
    APP_MINUTE = "app_minute"
    CONCURRENT = "concurrent"
    UNKNOWN = "unknown"


class AuthProblem(str, enum.Enum):
    """Why authentication or authorisation failed."""

    TOKEN_EXPIRED = "token_expired"
    INVALID_TOKEN = "invalid_token"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    TENANT_NOT_AUTHORIZED = "tenant_not_authorized"
    INVALID_GRANT = "invalid_grant"
    INVALID_CLIENT = "invalid_client"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    NONCE_USED = "nonce_used"
    SIGNATURE_INVALID = "signature_invalid"
    SIGNATURE_METHOD_REJECTED = "signature_method_rejected"
    TOKEN_REJECTED = "token_rejected"
    OTHER = "other"


class Reason(str, enum.Enum):
    """Why the limiter refused (or would refuse) a call."""

    MINUTE = "minute"
    DAY = "day"
    APP_MINUTE = "app_minute"
    CONCURRENCY = "concurrency"
    RETRY_AFTER = "retry_after"
    ORGANISATION_OFFLINE = "organisation_offline"
    OUTAGE = "outage"


class GiveUp(str, enum.Enum):
    """Why `backoff` gave up (the header's XG_GIVE_UP_* codes; the ABI has no name function for them)."""

    NOT_RETRYABLE = "not_retryable"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    WAIT_TOO_LONG = "wait_too_long"


_GIVE_UP_CODES = {1: GiveUp.NOT_RETRYABLE, 2: GiveUp.ATTEMPTS_EXHAUSTED, 3: GiveUp.WAIT_TOO_LONG}


def _codes(name_fn: Callable[[int], Optional[str]]) -> Dict[str, int]:
    """word -> code, as the loaded library names them (so Python never hard-codes the numbering)."""
    out = {}
    for code in range(256):
        word = name_fn(code)
        if word is not None:
            out[word] = code
    return out


CATEGORY_CODES = _codes(n.lib.xg_category_name)
ACTION_CODES = _codes(n.lib.xg_action_name)
RATE_LIMIT_PROBLEM_CODES = _codes(n.lib.xg_rate_limit_problem_name)
AUTH_PROBLEM_CODES = _codes(n.lib.xg_auth_problem_name)
REASON_NAMES = {code: word for word, code in _codes(n.lib.xg_reason_name).items()}


def _opt_enum(cls: Any, value: Optional[str]) -> Any:
    return None if value is None else cls(value)


@dataclasses.dataclass(frozen=True)
class Classification:
    """The classification of one response: exactly the keys of xero-reference §5."""

    status: int
    category: Category
    action: Action
    retryable: bool
    rate_limit_problem: Optional[RateLimitProblem]
    retry_after_ms: Optional[int]
    recommended_wait_ms: Optional[int]
    minute_remaining: Optional[int]
    day_remaining: Optional[int]
    app_minute_remaining: Optional[int]
    error_number: Optional[int]
    error_type: Optional[str]
    message: Optional[str]
    validation_messages: Tuple[str, ...]
    warnings: Tuple[str, ...]
    failed_elements: Tuple[int, ...]
    oauth_problem: Optional[str]
    oauth_problem_advice: Optional[str]
    auth_problem: Optional[AuthProblem]
    problem_title: Optional[str]
    problem_detail: Optional[str]
    correlation_id: Optional[str]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Classification":
        """From the §5 JSON object (as the library produces it, or as `to_dict` gave it)."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in names if k not in d]
        if missing:
            raise ValueError("classification object lacks keys: %s" % ", ".join(missing))
        v = {k: d[k] for k in names}
        v["category"] = Category(v["category"])
        v["action"] = Action(v["action"])
        v["rate_limit_problem"] = _opt_enum(RateLimitProblem, v["rate_limit_problem"])
        v["auth_problem"] = _opt_enum(AuthProblem, v["auth_problem"])
        for k in ("validation_messages", "warnings", "failed_elements"):
            v[k] = tuple(v[k])
        return cls(**v)

    def to_dict(self) -> Dict[str, Any]:
        """The §5 JSON object: enum members become their words, tuples become lists."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def _to_c(self) -> n.XgClassification:
        """The scalar C form, for xg_backoff / xg_limiter_observe (a field-by-field translation)."""

        def num(x: Optional[int]) -> int:
            return n.XG_UNKNOWN if x is None else x

        c = n.XgClassification()
        c.status = self.status
        c.category = CATEGORY_CODES[Category(self.category).value]
        c.action = ACTION_CODES[Action(self.action).value]
        c.retryable = self.retryable
        c.rate_limit_problem = (
            n.XG_NONE if self.rate_limit_problem is None
            else RATE_LIMIT_PROBLEM_CODES[RateLimitProblem(self.rate_limit_problem).value]
        )
        c.auth_problem = (
            n.XG_NONE if self.auth_problem is None else AUTH_PROBLEM_CODES[AuthProblem(self.auth_problem).value]
        )
        c.retry_after_ms = num(self.retry_after_ms)
        c.recommended_wait_ms = num(self.recommended_wait_ms)
        c.minute_remaining = num(self.minute_remaining)
        c.day_remaining = num(self.day_remaining)
        c.app_minute_remaining = num(self.app_minute_remaining)
        c.has_error_number = self.error_number is not None
        c.error_number = self.error_number or 0
        c.validation_message_count = len(self.validation_messages)
        c.warning_count = len(self.warnings)
        c.failed_element_count = len(self.failed_elements)
        return c


HeaderInput = Union[Mapping[str, str], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]], Any]
BodyInput = Union[bytes, bytearray, memoryview, str, None]
NowInput = Union[_dt.datetime, int, float, None]


def _header_pairs(headers: HeaderInput) -> List[Tuple[Any, Any]]:
    if headers is None:
        return []
    if hasattr(headers, "multi_items"):  # httpx.Headers: keep repeated headers apart
        return list(headers.multi_items())
    if hasattr(headers, "items"):
        return list(headers.items())
    return [tuple(pair) for pair in headers]


def _body_bytes(body: BodyInput) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def now_unix_ms(now: NowInput) -> int:
    """`now` as Unix ms for the library; 0 asks the library to read the system clock."""
    if now is None:
        return 0
    if isinstance(now, _dt.datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=_dt.timezone.utc)  # HTTP dates are UTC; a naive time is taken as UTC
        ms = int(now.timestamp() * 1000)
    elif isinstance(now, (int, float)) and not isinstance(now, bool):
        ms = int(now)
    else:
        raise TypeError("now must be a datetime or Unix milliseconds, not %s" % type(now).__name__)
    if ms <= 0:
        raise ValueError("now must be after the Unix epoch (0 would mean 'read the system clock')")
    return ms


def _from_json_out(ptr: ctypes.c_void_p) -> Classification:
    return Classification.from_dict(json.loads(n.take_string(ptr)))


def classify(status: int, headers: HeaderInput = (), body: BodyInput = b"", now: NowInput = None) -> Classification:
    """Classifies one response. `headers`: a mapping or (name, value) pairs; `body`: bytes or str;
    `now`: the time a Retry-After HTTP-date is measured against when there is no Date header."""
    if not isinstance(status, int) or not 0 <= status <= 0xFFFF:
        raise ValueError("status must be an int in 0..65535, got %r" % (status,))
    pairs = [(n.text_arg(k, "header name"), n.text_arg(v, "header value")) for k, v in _header_pairs(headers)]
    array = (n.XgHeader * max(1, len(pairs)))()
    for slot, (name, value) in zip(array, pairs):
        slot.name, slot.name_len, slot.value, slot.value_len = name, len(name), value, len(value)
    data = _body_bytes(body)
    response = n.XgResponse(
        status=status,
        headers=array,
        header_count=len(pairs),
        body=ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ctypes.c_uint8)),
        body_len=len(data),
        now_unix_ms=now_unix_ms(now),
    )
    out = ctypes.c_void_p()
    n.lib.xg_classify(ctypes.byref(response), None, ctypes.byref(out))
    return _from_json_out(out)


def classify_raw(raw: Union[bytes, bytearray, memoryview, str], now: NowInput = None) -> Classification:
    """Classifies a raw HTTP response (status line, headers, blank line, body), as `curl -i` saves it."""
    data = _body_bytes(raw)
    out = ctypes.c_void_p()
    n.lib.xg_classify_raw(data, len(data), now_unix_ms(now), None, ctypes.byref(out))
    return _from_json_out(out)


_DEFAULT_POLICY: n.XgRetryPolicy = n.lib.xg_retry_policy_default()


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Mirrors xg_retry_policy; the defaults are the library's (xg_retry_policy_default)."""

    max_retries: int = _DEFAULT_POLICY.max_retries
    base_ms: int = _DEFAULT_POLICY.base_ms
    max_backoff_ms: int = _DEFAULT_POLICY.max_backoff_ms
    jitter_ms: int = _DEFAULT_POLICY.jitter_ms
    max_wait_ms: int = _DEFAULT_POLICY.max_wait_ms

    def _to_c(self) -> n.XgRetryPolicy:
        return n.XgRetryPolicy(
            max_retries=self.max_retries,
            base_ms=self.base_ms,
            max_backoff_ms=self.max_backoff_ms,
            jitter_ms=self.jitter_ms,
            max_wait_ms=self.max_wait_ms,
        )


@dataclasses.dataclass(frozen=True)
class BackoffDecision:
    """Retry after `wait_ms`, or give up (`give_up` says why; `wait_ms` is then the wait that was too long)."""

    retry: bool
    wait_ms: int
    give_up: Optional[GiveUp]


def backoff(classification: Classification, attempt: int, policy: Optional[RetryPolicy] = None) -> BackoffDecision:
    """Whether retry number `attempt` (1 = the first retry) should happen, and after how long."""
    if not isinstance(attempt, int) or attempt < 0:
        raise ValueError("attempt must be a non-negative int")
    c = classification._to_c()
    p = policy._to_c() if policy is not None else None
    out = n.XgBackoffDecision()
    n.lib.xg_backoff(ctypes.byref(c), attempt, ctypes.byref(p) if p is not None else None, ctypes.byref(out))
    give_up = _GIVE_UP_CODES.get(out.give_up) if out.give_up else None
    if out.give_up and give_up is None:
        raise XeroGuardError("xg_backoff returned an unknown give_up code %d" % out.give_up)
    return BackoffDecision(retry=bool(out.retry), wait_ms=int(out.wait_ms), give_up=give_up)
