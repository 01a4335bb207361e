"""classify / classify_raw / backoff / resend / body_bytes_to_classify: thin translations of xg_classify,
xg_classify_raw, xg_backoff, xg_resend and xg_body_bytes_to_classify.

A classification is built from the scalar struct the library fills. Its text fields (messages, lists,
OAuth and problem fields, ids) come from the library's JSON form, fetched on their first read: most callers
only look at category, action and the wait, and the JSON round trip used to be most of the cost.
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime as _dt
import functools
import itertools
import json
import math
import numbers
import operator
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _args
from . import _native as n
from ._args import Seconds
from ._vocabulary import (
    ACTION,
    AUTH_PROBLEM,
    CATEGORY,
    GIVE_UP,
    RATE_LIMIT_PROBLEM,
    TRANSPORT_FAILURE_CODE,
    Action,
    AuthProblem,
    Category,
    GiveUp,
    RateLimitProblem,
    TransportFailure,
    Word,
)

# The fields that live only in the JSON form (strings and lists); the struct carries the rest.
TEXT_FIELDS = (
    "error_type", "message", "validation_messages", "warnings", "failed_elements", "oauth_problem",
    "oauth_problem_advice", "problem_title", "problem_detail", "correlation_id",
)
_LIST_FIELDS = ("validation_messages", "warnings", "failed_elements")
_TEXT_SOURCE = "_text_source"  # instance key: a zero-argument callable giving the JSON form
_C_FORM = "_c_form"  # instance key: the struct the library filled, reused by backoff and observe

# Inputs up to this size are kept to classify again when the text fields are first read; the JSON form of a
# larger one is taken at once instead, so a kept classification never pins a large body.
_KEEP_INPUT_BYTES = 16 * 1024


@dataclasses.dataclass(frozen=True)
class Classification:
    """The classification of one response: exactly the keys of xero-reference §5 (`to_dict`), with the waits
    also in seconds (`retry_after`, `recommended_wait`)."""

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

    @property
    def retry_after(self) -> Optional[float]:
        """`retry_after_ms` in seconds."""
        return _args.optional_ms_to_seconds(self.retry_after_ms)

    @property
    def recommended_wait(self) -> Optional[float]:
        """`recommended_wait_ms` in seconds."""
        return _args.optional_ms_to_seconds(self.recommended_wait_ms)

    @property
    def may_have_been_processed(self) -> bool:
        """Whether the server may have carried the request out (xero-reference §8: False for a 429 or an offline
        organisation, True for a 500 or a timeout), which `resend` reads for writes without an Idempotency-Key.
        The library's answer; a classification made in Python (`from_dict`, `dataclasses.replace`) cannot know it
        and says True, the cautious answer."""
        filled: Optional[n.XgClassification] = self.__dict__.get(_C_FORM)
        return True if filled is None else bool(filled.may_have_been_processed)

    if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt attribute stays an error for them

        def __getattr__(self, name: str) -> Any:
            # Reached only for attributes the instance lacks: the text fields before their first read.
            state = self.__dict__
            source = state.get(_TEXT_SOURCE)
            if source is not None and name in TEXT_FIELDS:
                state.update(_text_fields(source()))
                state.pop(_TEXT_SOURCE, None)
            if name in state:  # also when another thread filled them meanwhile
                return state[name]
            raise AttributeError("%r object has no attribute %r" % (type(self).__name__, name))

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
        v["rate_limit_problem"] = None if v["rate_limit_problem"] is None else RateLimitProblem(v["rate_limit_problem"])
        v["auth_problem"] = None if v["auth_problem"] is None else AuthProblem(v["auth_problem"])
        for k in _LIST_FIELDS:
            v[k] = tuple(v[k])
        return cls(**v)

    def to_dict(self) -> Dict[str, Any]:
        """The §5 JSON object: enum members become their words, tuples become lists."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Word):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def _to_c(self) -> n.XgClassification:
        """The scalar C form, for xg_backoff / xg_limiter_observe: the struct the library filled, or a
        field-by-field translation for a classification made in Python (from_dict, dataclasses.replace)."""
        filled: Optional[n.XgClassification] = self.__dict__.get(_C_FORM)
        if filled is not None:
            return filled

        def num(x: Optional[int], name: str) -> int:
            return n.XG_UNKNOWN if x is None else _args.uint(x, name, _args.I64_MAX)

        c = n.XgClassification()
        c.status = _args.uint(self.status, "status", _args.U16_MAX)
        c.category = CATEGORY.code(Category(self.category))
        c.action = ACTION.code(Action(self.action))
        c.retryable = 1 if self.retryable else 0
        c.rate_limit_problem = (
            n.XG_NONE if self.rate_limit_problem is None
            else RATE_LIMIT_PROBLEM.code(RateLimitProblem(self.rate_limit_problem))
        )
        c.auth_problem = n.XG_NONE if self.auth_problem is None else AUTH_PROBLEM.code(AuthProblem(self.auth_problem))
        c.retry_after_ms = num(self.retry_after_ms, "retry_after_ms")
        c.recommended_wait_ms = num(self.recommended_wait_ms, "recommended_wait_ms")
        c.minute_remaining = num(self.minute_remaining, "minute_remaining")
        c.day_remaining = num(self.day_remaining, "day_remaining")
        c.app_minute_remaining = num(self.app_minute_remaining, "app_minute_remaining")
        c.has_error_number = 0 if self.error_number is None else 1
        c.error_number = 0 if self.error_number is None else _args.i64(self.error_number, "error_number")
        c.validation_message_count = len(self.validation_messages)
        c.warning_count = len(self.warnings)
        c.failed_element_count = len(self.failed_elements)
        c.may_have_been_processed = 1  # unknown here: the cautious answer (see may_have_been_processed)
        return c


def _text_fields(json_form: bytes) -> Dict[str, Any]:
    d = json.loads(json_form)
    fields = {k: d[k] for k in TEXT_FIELDS}
    for k in _LIST_FIELDS:
        fields[k] = tuple(fields[k])
    return fields


_read_classification = n.field_reader(n.XgClassification)
_BLANK_CLASSIFICATION = bytes(n.XgClassification())  # struct_size set: copied, it skips a Python __init__
_new_classification = n.XgClassification.from_buffer_copy
_new_object = object.__new__
_classify_flat = n.lib.xg_classify_flat
_byref = ctypes.byref
_set_attribute = object.__setattr__


_CATEGORY_BY_CODE = CATEGORY.by_code
_ACTION_BY_CODE = ACTION.by_code
_RATE_LIMIT_PROBLEM_BY_CODE = RATE_LIMIT_PROBLEM.by_code
_AUTH_PROBLEM_BY_CODE = AUTH_PROBLEM.by_code


def _from_struct(c: n.XgClassification, text_source: Callable[[], bytes]) -> Classification:
    (_, status, category, action, retryable, rate_limit_problem, auth_problem, retry_after_ms, recommended_wait_ms,
     minute_remaining, day_remaining, app_minute_remaining, has_error_number, error_number, _, _, _, _,
     ) = _read_classification(c)
    obj = _new_object(Classification)
    try:
        # The frozen dataclass refuses attribute assignment; the state is set whole, as unpickling does.
        _set_attribute(obj, "__dict__", {
            "status": status,
            "category": _CATEGORY_BY_CODE[category],
            "action": _ACTION_BY_CODE[action],
            "retryable": retryable == 1,
            "rate_limit_problem": _RATE_LIMIT_PROBLEM_BY_CODE[rate_limit_problem],
            "retry_after_ms": None if retry_after_ms < 0 else retry_after_ms,
            "recommended_wait_ms": None if recommended_wait_ms < 0 else recommended_wait_ms,
            "minute_remaining": None if minute_remaining < 0 else minute_remaining,
            "day_remaining": None if day_remaining < 0 else day_remaining,
            "app_minute_remaining": None if app_minute_remaining < 0 else app_minute_remaining,
            "error_number": error_number if has_error_number else None,
            "auth_problem": _AUTH_PROBLEM_BY_CODE[auth_problem],
            _TEXT_SOURCE: text_source,
            _C_FORM: c,
        })
    except KeyError:
        for codes, code in ((CATEGORY, category), (ACTION, action), (RATE_LIMIT_PROBLEM, rate_limit_problem),
                            (AUTH_PROBLEM, auth_problem)):
            if code not in codes.by_code:
                raise codes.unknown(code) from None
        raise
    return obj


HeaderInput = Union[Mapping[Any, Any], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]], None]
BodyInput = Union[bytes, bytearray, memoryview, str, None]
NowInput = Union[_dt.datetime, int, float, None]

_UNIX_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_ONE_MS = _dt.timedelta(milliseconds=1)
# Unix seconds beyond the year 9999: what a millisecond timestamp passed as `now` looks like.
_LAST_UNIX_SECOND = 253_402_300_799


def _header_text(value: object, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be str or bytes, not %s" % (what, "None" if value is None else type(value).__name__))


def _header_block(headers: HeaderInput) -> bytes:
    """xg_classify_flat's headers: every name and value in order (repeated headers kept apart), UTF-8,
    separated by NUL bytes."""
    if headers is None:
        return b""
    if isinstance(headers, (str, bytes, bytearray, memoryview)):
        raise TypeError("headers must be a mapping or (name, value) pairs, not %s" % type(headers).__name__)
    items: Any
    if isinstance(headers, (list, tuple)):
        items = headers
    elif hasattr(headers, "multi_items"):  # httpx.Headers: keep repeated headers apart
        items = headers.multi_items()
    elif hasattr(headers, "items"):
        items = headers.items()
    else:
        items = headers
    if not hasattr(items, "__len__"):  # a generator: read once, here
        items = list(items)
    if not items:
        return b""
    # The common case, (str, str) pairs, in one join and one encode: this runs for every classified response.
    text: Optional[str] = None
    try:
        if set(map(len, items)) == _PAIR:
            text = "\0".join(_flatten(items))
    except TypeError:  # bytes among them, or something that is not text: the checks below say which
        pass
    # A NUL inside a name or value shows as one separator more.
    if text is not None and text.count("\0") == 2 * len(items) - 1:
        return text.encode("utf-8")
    texts: List[bytes] = []
    for name, value in items:
        texts.append(_header_text(name, "header name"))
        texts.append(_header_text(value, "header value"))
    block = b"\0".join(texts)
    if block.count(b"\0") != len(texts) - 1:
        raise ValueError("header names and values cannot contain NUL (RFC 9110 section 5.5)")
    return block


_flatten = itertools.chain.from_iterable
_PAIR = {2}


def _body_bytes(body: object, what: str = "body", none_is_empty: bool = True) -> bytes:
    if isinstance(body, bytes):
        return body
    if body is None and none_is_empty:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)  # a copy: the caller may change it, and it may be classified again later
    raise TypeError("%s must be bytes or str, not %s" % (what, type(body).__name__))


def now_unix_ms(now: NowInput, now_ms: Optional[int] = None) -> int:
    """The time a Retry-After HTTP-date is measured against, as Unix ms for the library: `now` is a datetime
    or Unix seconds (as `time.time()` gives), `now_ms` Unix milliseconds; neither gives 0, which asks the
    library to read the system clock."""
    if now is not None and now_ms is not None:
        raise TypeError("give now (a datetime or Unix seconds) or now_ms (Unix milliseconds), not both")
    if now is None and now_ms is None:
        return 0
    if now_ms is not None:
        ms = _args.uint(now_ms, "now_ms", _args.I64_MAX)
    elif isinstance(now, _dt.datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=_dt.timezone.utc)  # HTTP dates are UTC; a naive time is taken as UTC
        ms = (now - _UNIX_EPOCH) // _ONE_MS
    elif isinstance(now, float) or (isinstance(now, numbers.Integral) and not isinstance(now, bool)):
        seconds = float(now) if isinstance(now, float) else operator.index(now)
        if math.isnan(seconds) or not 0 < seconds <= _LAST_UNIX_SECOND:
            raise ValueError("now must be Unix seconds after the epoch and before the year 10000, got %r (Unix "
                             "milliseconds go in now_ms=)" % (now,))
        ms = round(seconds * 1000)
    else:
        raise TypeError("now must be a datetime or Unix seconds, not %s"
                        % ("None" if now is None else type(now).__name__))
    if ms <= 0:
        raise ValueError("now must be after the Unix epoch (0 would mean 'read the system clock')")
    return ms


def _response_json(status: int, header_block: bytes, body: bytes, now_ms: int) -> bytes:
    out = ctypes.c_void_p()
    _classify_flat(status, header_block, len(header_block), body, len(body), now_ms, None, _byref(out))
    return n.take_bytes(out)


def _raw_json(raw: bytes, now_ms: int) -> bytes:
    out = ctypes.c_void_p()
    n.lib.xg_classify_raw(raw, len(raw), now_ms, None, _byref(out))
    return n.take_bytes(out)


def _given(json_form: bytes) -> bytes:
    return json_form


def classify(status: int, headers: HeaderInput = (), body: BodyInput = b"", now: NowInput = None, *,
             now_ms: Optional[int] = None) -> Classification:
    """Classifies one response. `headers`: a mapping or (name, value) pairs, str or bytes (a NUL inside a name or
    value is refused with ValueError: HTTP forbids it); `body`: bytes or str; `now` (a datetime or Unix seconds)
    or `now_ms` (Unix milliseconds): the time a Retry-After HTTP-date is measured against when there is no Date
    header (default: the system clock)."""
    if type(status) is not int or not 0 <= status <= _args.U16_MAX:
        status = _args.uint(status, "status", _args.U16_MAX)  # the checks with their messages; IntEnums pass
    header_block = _header_block(headers)
    data = body if type(body) is bytes else _body_bytes(body)
    unix_ms = 0 if now is None and now_ms is None else now_unix_ms(now, now_ms)
    c = _new_classification(_BLANK_CLASSIFICATION)
    if len(data) <= _KEEP_INPUT_BYTES:
        _classify_flat(status, header_block, len(header_block), data, len(data), unix_ms, _byref(c), None)
        return _from_struct(c, functools.partial(_response_json, status, header_block, data, unix_ms))
    out = ctypes.c_void_p()
    _classify_flat(status, header_block, len(header_block), data, len(data), unix_ms, _byref(c), _byref(out))
    return _from_struct(c, functools.partial(_given, n.take_bytes(out)))


def classify_raw(raw: Union[bytes, bytearray, memoryview, str], now: NowInput = None, *,
                 now_ms: Optional[int] = None) -> Classification:
    """Classifies a raw HTTP response (status line, headers, blank line, body), as `curl -i` saves it.
    `now` / `now_ms` as for `classify`."""
    data = _body_bytes(raw, "raw", none_is_empty=False)
    unix_ms = now_unix_ms(now, now_ms)
    c = _new_classification(_BLANK_CLASSIFICATION)
    if len(data) <= _KEEP_INPUT_BYTES:
        n.lib.xg_classify_raw(data, len(data), unix_ms, _byref(c), None)
        return _from_struct(c, functools.partial(_raw_json, data, unix_ms))
    out = ctypes.c_void_p()
    n.lib.xg_classify_raw(data, len(data), unix_ms, _byref(c), _byref(out))
    return _from_struct(c, functools.partial(_given, n.take_bytes(out)))


_DEFAULT_POLICY: n.XgRetryPolicy = n.lib.xg_retry_policy_default()


@dataclasses.dataclass(frozen=True, init=False)
class RetryPolicy:
    """Mirrors xg_retry_policy; the defaults are the library's (xg_retry_policy_default).

    Durations are keyword-only, in seconds (`base=0.5`, int, float or timedelta) or milliseconds
    (`base_ms=500`); the fields keep milliseconds and the properties give seconds. `dataclasses.replace` takes
    the `*_ms` names."""

    max_retries: int
    base_ms: int
    max_backoff_ms: int
    jitter_ms: int
    max_wait_ms: int

    def __init__(self, max_retries: int = _DEFAULT_POLICY.max_retries, *, base: Optional[Seconds] = None,
                 max_backoff: Optional[Seconds] = None, jitter: Optional[Seconds] = None,
                 max_wait: Optional[Seconds] = None, base_ms: Optional[int] = None,
                 max_backoff_ms: Optional[int] = None, jitter_ms: Optional[int] = None,
                 max_wait_ms: Optional[int] = None) -> None:
        set_field = functools.partial(_set_attribute, self)
        set_field("max_retries", _args.u32(max_retries, "max_retries"))
        set_field("base_ms", _args.duration_ms(base, base_ms, "base", _DEFAULT_POLICY.base_ms))
        set_field("max_backoff_ms", _args.duration_ms(max_backoff, max_backoff_ms, "max_backoff",
                                                      _DEFAULT_POLICY.max_backoff_ms))
        set_field("jitter_ms", _args.duration_ms(jitter, jitter_ms, "jitter", _DEFAULT_POLICY.jitter_ms))
        set_field("max_wait_ms", _args.duration_ms(max_wait, max_wait_ms, "max_wait", _DEFAULT_POLICY.max_wait_ms))

    @property
    def base(self) -> float:
        return _args.ms_to_seconds(self.base_ms)

    @property
    def max_backoff(self) -> float:
        return _args.ms_to_seconds(self.max_backoff_ms)

    @property
    def jitter(self) -> float:
        return _args.ms_to_seconds(self.jitter_ms)

    @property
    def max_wait(self) -> float:
        return _args.ms_to_seconds(self.max_wait_ms)

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
    """Retry after `wait_ms` (`wait` in seconds), or give up (`give_up` says why; the wait is then the one that
    was too long)."""

    retry: bool
    wait_ms: int
    give_up: Optional[GiveUp]

    @property
    def wait(self) -> float:
        return _args.ms_to_seconds(self.wait_ms)


def _policy_arg(policy: Optional[RetryPolicy]) -> Any:
    if policy is None:
        return None
    if not isinstance(policy, RetryPolicy):
        raise TypeError("policy must be a RetryPolicy or None, not %s" % type(policy).__name__)
    return ctypes.byref(policy._to_c())


def _backoff_decision(out: n.XgBackoffDecision) -> BackoffDecision:
    try:
        give_up = GIVE_UP.by_code[out.give_up]
    except KeyError:
        raise GIVE_UP.unknown(out.give_up) from None
    return BackoffDecision(retry=out.retry == 1, wait_ms=int(out.wait_ms), give_up=give_up)


def backoff(classification: Classification, attempt: int, policy: Optional[RetryPolicy] = None) -> BackoffDecision:
    """Whether retry number `attempt` (1 = the first retry) should happen, and after how long."""
    if not isinstance(classification, Classification):
        raise TypeError("backoff takes a Classification, not %s" % type(classification).__name__)
    attempt = _args.u32(attempt, "attempt")
    p = _policy_arg(policy)
    c = classification._to_c()
    out = n.XgBackoffDecision()
    n.lib.xg_backoff(ctypes.byref(c), attempt, p, ctypes.byref(out))
    return _backoff_decision(out)


#: The request header that makes a write safe to resend: Xero carries out one request per key (at most 128 chars).
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

Outcome = Union[Classification, TransportFailure]


def resend(method: str, outcome: Outcome, attempt: int, policy: Optional[RetryPolicy] = None, *,
           has_idempotency_key: bool) -> BackoffDecision:
    """Whether a request may be sent again after attempt number `attempt` (1 = the first send) ended with `outcome`
    (a Classification of its response, or a TransportFailure when no response came), and after how long
    (xg_resend, xero-reference §8). What the server did not act on is resent; what it may have carried out is resent
    for GET, HEAD, OPTIONS and DELETE, or a write carrying an Idempotency-Key (send the same key again), and never
    for a write without one (`give_up` is GiveUp.UNSAFE_TO_RESEND: hand the outcome to the caller). Then the backoff
    of `backoff` applies."""
    method_bytes = _method_bytes(method)
    if not isinstance(has_idempotency_key, bool):
        raise TypeError("has_idempotency_key must be a bool, not %s" % type(has_idempotency_key).__name__)
    attempt = _args.u32(attempt, "attempt")
    p = _policy_arg(policy)
    request = n.XgRequest(method=method_bytes, method_len=len(method_bytes), has_idempotency_key=int(has_idempotency_key))
    out = n.XgBackoffDecision()
    if isinstance(outcome, TransportFailure):
        n.lib.xg_resend(ctypes.byref(request), None, TRANSPORT_FAILURE_CODE[outcome], attempt, p, ctypes.byref(out))
    elif isinstance(outcome, Classification):
        c = outcome._to_c()
        n.lib.xg_resend(ctypes.byref(request), ctypes.byref(c), 0, attempt, p, ctypes.byref(out))
    else:
        raise TypeError("outcome must be a Classification or a TransportFailure, not %s" % type(outcome).__name__)
    return _backoff_decision(out)


def _method_bytes(method: str) -> bytes:
    if not isinstance(method, str):
        raise TypeError("method must be a str, not %s" % type(method).__name__)
    method_bytes = method.encode("utf-8", "surrogateescape")
    if not method_bytes:
        raise ValueError("method must not be empty")
    return method_bytes


def needs_idempotency_key(method: str) -> bool:
    """True for a method the library treats as a write (POST, PUT, PATCH, any method it does not know): one that
    `resend` would not send again after an ambiguous failure unless it carries an Idempotency-Key
    (xg_method_is_write, so the list of methods lives in one place)."""
    method_bytes = _method_bytes(method)
    write = ctypes.c_uint8()
    n.lib.xg_method_is_write(method_bytes, len(method_bytes), ctypes.byref(write))
    return write.value == 1


def body_bytes_to_classify(status: int, content_type: Union[str, bytes, None]) -> int:
    """How many body bytes to read to classify a response with this status and Content-Type
    (xg_body_bytes_to_classify): every error body; a JSON, XML or text 2xx up to 1 MiB (a longer one is
    classified from its first MiB and must still reach the caller whole); 0 for any other 2xx (a download: classify
    from status and headers, stream the body on)."""
    status = _args.uint(status, "status", _args.U16_MAX)
    if content_type is None:
        data = None
    elif isinstance(content_type, str):
        data = content_type.encode("utf-8", "surrogateescape")  # bytes as received; the library reads them leniently
    elif isinstance(content_type, bytes):
        data = content_type
    else:
        raise TypeError("content_type must be str, bytes or None, not %s" % type(content_type).__name__)
    out = ctypes.c_uint64()
    n.lib.xg_body_bytes_to_classify(status, data, 0 if data is None else len(data), ctypes.byref(out))
    return out.value
