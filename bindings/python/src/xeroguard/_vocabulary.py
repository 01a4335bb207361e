"""The vocabulary (xero-reference §4) as enums whose values are the library's words.

The words are written out here so type checkers and editors know the members; the C codes are never written
out: they are read from the loaded library's `xg_*_name` functions, and tests/test_native.py ties the words of
each enum to the library's.
"""

from __future__ import annotations

import enum
from typing import Callable, Dict, Generic, Optional, Type, TypeVar

from . import _native as n
from .errors import XeroGuardError


class Word(str, enum.Enum):
    """A vocabulary word: `str()` and f-strings give the word itself (`rate_limited`) on every Python, where a
    plain `(str, Enum)` gives `Category.RATE_LIMITED` in some contexts and versions. `==` compares with the word."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(str.__str__(self), format_spec)


class Category(Word):
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


class Action(Word):
    """What the caller should do next."""

    NONE = "none"
    RETRY = "retry"
    REFRESH_TOKEN = "refresh_token"
    REAUTHORIZE = "reauthorize"
    FIX_REQUEST = "fix_request"


class RateLimitProblem(Word):
    """Which rate limit a 429 reports."""

    MINUTE = "minute"
    DAY = "day"
    APP_MINUTE = "app_minute"
    CONCURRENT = "concurrent"
    UNKNOWN = "unknown"


class AuthProblem(Word):
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


class Reason(Word):
    """Why the limiter refused (or would refuse) a call."""

    MINUTE = "minute"
    DAY = "day"
    APP_MINUTE = "app_minute"
    CONCURRENCY = "concurrency"
    RETRY_AFTER = "retry_after"
    ORGANISATION_OFFLINE = "organisation_offline"
    OUTAGE = "outage"
    STORE_UNAVAILABLE = "store_unavailable"


class GiveUp(Word):
    """Why `backoff` or `resend` gave up."""

    NOT_RETRYABLE = "not_retryable"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    WAIT_TOO_LONG = "wait_too_long"
    UNSAFE_TO_RESEND = "unsafe_to_resend"


class FailurePolicy(Word):
    """What a limiter sharing its state through Redis does while the store cannot be reached, and (as
    `Decision.fallback`) which of it decided a call."""

    CLOSED = "closed"  # refuse (reason store_unavailable): never more calls than allowed; the default
    OPEN = "open"  # grant, flagged: the app keeps running and risks a 429
    LOCAL = "local"  # decide in this process with its share of every limit (limit / workers)


class StoreFailureKind(Word):
    """Why an operation on the shared store failed (`Stats.store_failures`)."""

    TIMEOUT = "timeout"  # no answer within the deadline
    CONNECTION = "connection"  # not reachable, or the connection broke (refused, reset, DNS, TLS)
    REFUSED = "refused"  # an error reply waiting will not fix (ACL, another clock on the prefix, a script error)
    PROTOCOL = "protocol"  # a reply the protocol does not expect


class TransportFailure(Word):
    """What became of an attempt that got no HTTP response, for `resend`."""

    NOT_SENT = "not_sent"  # nothing reached the server: connection refused, DNS, TLS handshake, connect timeout
    NO_RESPONSE = "no_response"  # sent, and no answer came: a read timeout, a connection reset after sending


# The ABI has no name function for xg_transport_failure: its codes are the header's (tied by tests/test_native.py).
TRANSPORT_FAILURE_CODE: Dict[TransportFailure, int] = {
    TransportFailure.NOT_SENT: n.XG_TRANSPORT_FAILURE_NOT_SENT,
    TransportFailure.NO_RESPONSE: n.XG_TRANSPORT_FAILURE_NO_RESPONSE,
}

# The name functions answer NULL past the last code; the highest code today is 16.
_CODE_SCAN = 256


def library_codes(name_fn: Callable[[int], Optional[str]]) -> Dict[str, int]:
    """word -> code, as the loaded library names them."""
    out: Dict[str, int] = {}
    for code in range(_CODE_SCAN):
        word = name_fn(code)
        if word is not None:
            out[word] = code
    return out


E = TypeVar("E", bound=Word)


class Codes(Generic[E]):
    """One enum's C codes, read from the library: `code_of` (member -> code) for calls into C, `by_code`
    (code -> member) for results. A library word this package does not know is left out, so meeting its code
    in a result is a KeyError that the caller turns into `unknown(code)`."""

    def __init__(self, enum_cls: Type[E], name_fn: Callable[[int], Optional[str]]) -> None:
        self.enum_name = enum_cls.__name__
        words: Dict[str, E] = {member.value: member for member in enum_cls}
        self.code_of: Dict[E, int] = {}
        # XG_NONE (0) is "none" for the optional enums, whose name functions do not name it; category and
        # action name their code 0, which replaces this entry.
        self.by_code: Dict[int, Optional[E]] = {n.XG_NONE: None}
        for word, code in library_codes(name_fn).items():
            member = words.get(word)
            if member is not None:
                self.code_of[member] = code
                self.by_code[code] = member

    def code(self, member: E) -> int:
        try:
            return self.code_of[member]
        except KeyError:
            raise ValueError("the loaded library (%s) has no code for %s.%s" % (n.version, self.enum_name,
                                                                               member.name)) from None

    def unknown(self, code: int) -> XeroGuardError:
        return XeroGuardError("the library answered %s code %d, which this xeroguard package does not know; install "
                          "a matching package" % (self.enum_name, code))


CATEGORY = Codes(Category, n.lib.xg_category_name)
ACTION = Codes(Action, n.lib.xg_action_name)
RATE_LIMIT_PROBLEM = Codes(RateLimitProblem, n.lib.xg_rate_limit_problem_name)
AUTH_PROBLEM = Codes(AuthProblem, n.lib.xg_auth_problem_name)
REASON = Codes(Reason, n.lib.xg_reason_name)
GIVE_UP = Codes(GiveUp, n.lib.xg_give_up_name)
FAILURE_POLICY = Codes(FailurePolicy, n.lib.xg_failure_policy_name)
STORE_FAILURE_KIND = Codes(StoreFailureKind, n.lib.xg_store_failure_kind_name)
