"""xeroguard: classify Xero API responses and pace calls within Xero's rate limits.

A ctypes binding of the native libxeroguard; every decision is made by the library.
"""

from __future__ import annotations

from . import _native
from ._args import TENANTLESS
from ._classify import (
    IDEMPOTENCY_KEY_HEADER,
    BackoffDecision,
    Classification,
    RetryPolicy,
    backoff,
    body_bytes_to_classify,
    classify,
    classify_raw,
    needs_idempotency_key,
    resend,
)
from ._limiter import Decision, Limiter, Limits, Permit, Reservation, TenantLimits, WindowLimit
from ._stats import Stats
from ._vocabulary import (
    Action,
    AuthProblem,
    Category,
    FailurePolicy,
    GiveUp,
    RateLimitProblem,
    Reason,
    StoreFailureKind,
    TransportFailure,
)
from .errors import (
    BookingTooFarError,
    BufferTooSmallError,
    InvalidArgumentError,
    InvalidUtf8Error,
    LimiterInterrupted,
    LimitsDifferError,
    MalformedResponseError,
    NoStoredLimitsError,
    NullPointerError,
    PanicError,
    PermitTimeout,
    StoreAuthError,
    StoreError,
    StoreForbiddenError,
    StoreUnavailableError,
    TooLargeError,
    TooManyTenantsError,
    UnknownFieldsError,
    UnknownPermitError,
    UnknownReservationError,
    WrongClockError,
    XeroGuardError,
)

__version__: str = _native.PACKAGE_VERSION
#: The version of the loaded native library, and where it was loaded from.
library_version: str = _native.version
library_path: str = _native.library_path
ABI_VERSION: int = _native.EXPECTED_ABI_VERSION

__all__ = [
    "Action",
    "AuthProblem",
    "BackoffDecision",
    "BookingTooFarError",
    "BufferTooSmallError",
    "Category",
    "Classification",
    "Decision",
    "FailurePolicy",
    "GiveUp",
    "IDEMPOTENCY_KEY_HEADER",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "Limiter",
    "LimiterInterrupted",
    "Limits",
    "LimitsDifferError",
    "MalformedResponseError",
    "NoStoredLimitsError",
    "NullPointerError",
    "PanicError",
    "Permit",
    "PermitTimeout",
    "RateLimitProblem",
    "Reason",
    "Reservation",
    "RetryPolicy",
    "Stats",
    "StoreAuthError",
    "StoreFailureKind",
    "StoreError",
    "StoreForbiddenError",
    "StoreUnavailableError",
    "TENANTLESS",
    "TenantLimits",
    "TooLargeError",
    "TooManyTenantsError",
    "TransportFailure",
    "UnknownFieldsError",
    "UnknownPermitError",
    "UnknownReservationError",
    "WindowLimit",
    "WrongClockError",
    "XeroGuardError",
    "backoff",
    "body_bytes_to_classify",
    "classify",
    "classify_raw",
    "library_path",
    "library_version",
    "needs_idempotency_key",
    "resend",
]
