"""Exceptions raised by xeroguard: one class per C status code, plus the waits that ran out."""

from __future__ import annotations

from typing import Dict, Optional, Type


class XeroGuardError(Exception):
    """A call into the native library failed; `status` is the xg_status code, `message` its explanation."""

    status: int = -1

    def __init__(self, message: str, status: Optional[int] = None, status_name: str = "") -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.status_name = status_name


class NullPointerError(XeroGuardError):
    status = 1


class InvalidUtf8Error(XeroGuardError, ValueError):
    status = 2


class InvalidArgumentError(XeroGuardError, ValueError):
    status = 3


class MalformedResponseError(XeroGuardError, ValueError):
    status = 4


class BufferTooSmallError(XeroGuardError):
    status = 5


class TooLargeError(XeroGuardError, ValueError):
    status = 6


class UnknownPermitError(XeroGuardError):
    status = 7


class UnknownReservationError(XeroGuardError):
    status = 8


class TooManyTenantsError(XeroGuardError):
    status = 9


class WrongClockError(XeroGuardError):
    status = 10


class LimiterInterrupted(XeroGuardError):
    """The wait was ended by `Limiter.interrupt()`: the limiter is shutting down. Nothing was acquired."""

    status = 11


class BookingTooFarError(XeroGuardError):
    """`reserve` would book a slot beyond the library's booking horizon (about 24.8 days ahead)."""

    status = 12


class StoreError(XeroGuardError):
    """The shared store (Redis) refused (an ACL, a key prefix that runs on another clock); the message says how."""

    status = 14


class StoreUnavailableError(StoreError, ConnectionError):
    """The shared store could not be reached within the deadline, and no failure policy decided instead (creating
    a limiter always connects once)."""

    status = 13


class StoreAuthError(StoreError):
    """The shared store did not accept the credentials (WRONGPASS, NOAUTH): fix the user and password in the store
    URL (redis://user:password@host:port)."""

    status = 16


class StoreForbiddenError(StoreError):
    """The shared store's ACL does not allow a command the limiter needs (NOPERM, an unknown or renamed command):
    give the URL's user the commands the README's Redis section lists."""

    status = 17


class UnknownFieldsError(XeroGuardError, ValueError):
    """A struct set a field the loaded library does not know (the package is newer than its library)."""

    status = 15


class LimitsDifferError(XeroGuardError, ValueError):
    """The limits given differ from those stored for the key prefix (the message names both). Pass
    `replace_limits=True` to store the given ones for every process, or `adopt_stored_limits=True` to pace by the
    stored ones."""

    status = 18


class NoStoredLimitsError(XeroGuardError, LookupError):
    """A read-only look at a key prefix that holds no limits."""

    status = 19


class PanicError(XeroGuardError):
    status = 99


STATUS_ERRORS: Dict[int, Type[XeroGuardError]] = {
    cls.status: cls
    for cls in (
        NullPointerError,
        InvalidUtf8Error,
        InvalidArgumentError,
        MalformedResponseError,
        BufferTooSmallError,
        TooLargeError,
        UnknownPermitError,
        UnknownReservationError,
        TooManyTenantsError,
        WrongClockError,
        LimiterInterrupted,
        BookingTooFarError,
        StoreUnavailableError,
        StoreError,
        StoreAuthError,
        StoreForbiddenError,
        UnknownFieldsError,
        LimitsDifferError,
        NoStoredLimitsError,
        PanicError,
    )
}


class PermitTimeout(XeroGuardError, TimeoutError):
    """No permit within the timeout. `wait_ms` and `reason` are the limiter's last refusal; `timeout` and
    `wait` give the times in seconds. The message says it in the library's words: "no permit for tenant 't' within
    30 s: day limit: next call in 11 h 59 min"."""

    def __init__(self, tenant: str, timeout_ms: int, wait_ms: int, reason: Optional[str], *, timeout_words: str = "",
                 refusal_words: str = "") -> None:
        super().__init__(
            "no permit for tenant %r within %s: %s"
            % (tenant, timeout_words or "%d ms" % timeout_ms,
               refusal_words or "the limiter asks to wait %d ms more (reason: %s)" % (wait_ms, reason))
        )
        self.tenant = tenant
        self.timeout_ms = timeout_ms
        self.wait_ms = wait_ms
        self.reason = reason

    @property
    def timeout(self) -> float:
        return self.timeout_ms / 1000

    @property
    def wait(self) -> float:
        return self.wait_ms / 1000


__all__ = [name for name in dir() if name.endswith(("Error", "Timeout", "Interrupted"))] + ["STATUS_ERRORS"]
