"""xeroguard: classify Xero API responses and pace calls within Xero's rate limits.

A ctypes binding of the native libxeroguard; every decision is made by the library.
"""

from __future__ import annotations

from . import _native
from ._args import TENANTLESS
from ._classify import BackoffDecision, Classification, RetryPolicy, backoff, classify, classify_raw
from ._limiter import Decision, Limiter, Limits, Permit, Reservation, TenantLimits, WindowLimit
from ._vocabulary import Action, AuthProblem, Category, GiveUp, RateLimitProblem, Reason
from .errors import (
    BufferTooSmallError,
    InvalidArgumentError,
    InvalidUtf8Error,
    MalformedResponseError,
    NullPointerError,
    PanicError,
    PermitTimeout,
    TooLargeError,
    TooManyTenantsError,
    UnknownPermitError,
    UnknownReservationError,
    WrongClockError,
    XeroGuardError,
)

__version__ = "0.1.0"
#: The version of the loaded native library, and where it was loaded from.
library_version: str = _native.version
library_path: str = _native.library_path
ABI_VERSION: int = _native.EXPECTED_ABI_VERSION

__all__ = [
    "Action",
    "AuthProblem",
    "BackoffDecision",
    "BufferTooSmallError",
    "Category",
    "Classification",
    "Decision",
    "GiveUp",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "Limiter",
    "Limits",
    "MalformedResponseError",
    "NullPointerError",
    "PanicError",
    "Permit",
    "PermitTimeout",
    "RateLimitProblem",
    "Reason",
    "Reservation",
    "RetryPolicy",
    "TENANTLESS",
    "TenantLimits",
    "TooLargeError",
    "TooManyTenantsError",
    "UnknownPermitError",
    "UnknownReservationError",
    "WindowLimit",
    "WrongClockError",
    "XeroGuardError",
    "backoff",
    "classify",
    "classify_raw",
    "library_path",
    "library_version",
]
