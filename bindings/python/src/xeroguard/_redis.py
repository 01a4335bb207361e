"""The options of a limiter that shares its state through Redis (xg_redis_options), checked before anything crosses.

The defaults are the library's (xg_redis_options_default); durations are seconds, or milliseconds with `*_ms`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional, Union

from . import _args
from . import _native as n
from ._args import Seconds
from ._vocabulary import FAILURE_POLICY, FailurePolicy

_DEFAULT = n.lib.xg_redis_options_default()

PathText = Union[str, "os.PathLike[str]"]
PolicyInput = Union[FailurePolicy, str]


@dataclasses.dataclass(frozen=True)
class RedisSettings:
    """Where a shared limiter keeps its state and what it does without it, as checked."""

    url: str
    key_prefix: str
    deadline_ms: int
    breaker_cooldown_ms: int
    on_store_error: FailurePolicy
    workers: int
    replace_limits: bool
    tls_ca_file: Optional[str]
    adopt_stored_limits: bool = False

    def to_c(self) -> n.XgRedisOptions:
        """The C struct; it holds the encoded strings for as long as it lives (the library copies them)."""
        c: n.XgRedisOptions = n.lib.xg_redis_options_default()
        url, prefix = self.url.encode("utf-8"), self.key_prefix.encode("utf-8")
        c.url, c.url_len = url, len(url)
        c.key_prefix, c.key_prefix_len = prefix, len(prefix)
        c.deadline_ms = self.deadline_ms
        c.breaker_cooldown_ms = self.breaker_cooldown_ms
        c.on_store_error = FAILURE_POLICY.code(self.on_store_error)
        c.workers = self.workers
        c.replace_limits = (n.XG_STORED_LIMITS_REPLACE if self.replace_limits else
                            n.XG_STORED_LIMITS_ADOPT if self.adopt_stored_limits else n.XG_STORED_LIMITS_MUST_MATCH)
        if self.tls_ca_file is not None:
            ca = self.tls_ca_file.encode("utf-8")
            c.tls_ca_file, c.tls_ca_file_len = ca, len(ca)
        return c

    def describe(self) -> str:
        """The URL without its password, and the prefix: for reprs and logs."""
        return "%s prefix %r" % (re.sub(r"://[^/@]*@", "://***@", self.url), self.key_prefix)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (name, "None" if value is None else type(value).__name__))
    if not value:
        raise ValueError("%s must not be empty" % name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("%s cannot be encoded as UTF-8: %s" % (name, exc.reason)) from None
    return value


def _policy(value: object) -> FailurePolicy:
    if isinstance(value, FailurePolicy):
        return value
    if not isinstance(value, str):
        raise TypeError("on_store_error must be 'closed', 'open', 'local' or a FailurePolicy, not %s"
                        % type(value).__name__)
    try:
        return FailurePolicy(value)
    except ValueError:
        raise ValueError("on_store_error must be 'closed', 'open' or 'local', not %r" % (value,)) from None


def redis_settings(url: object, key_prefix: object, deadline: Optional[Seconds], deadline_ms: Optional[int],
                   breaker_cooldown: Optional[Seconds], breaker_cooldown_ms: Optional[int],
                   on_store_error: Optional[PolicyInput], workers: Optional[int], replace_limits: object,
                   tls_ca_file: Optional[PathText], adopt_stored_limits: object = False) -> RedisSettings:
    """Every option checked against what the library accepts; the URL's form is the library's to judge."""
    url_text = _text(url, "redis_url")
    if key_prefix is None:
        raise TypeError("key_prefix is required with redis_url: every process sharing one prefix (one per Xero app) "
                        "shares its limits")
    prefix = _text(key_prefix, "key_prefix")
    if len(prefix.encode("utf-8")) > n.XG_MAX_KEY_PREFIX_BYTES:
        raise ValueError("key_prefix must be at most %d bytes of UTF-8, got %d"
                         % (n.XG_MAX_KEY_PREFIX_BYTES, len(prefix.encode("utf-8"))))
    deadline_value = _args.duration_ms(deadline, deadline_ms, "deadline", _DEFAULT.deadline_ms,
                                       maximum=n.XG_MAX_STORE_DEADLINE_MS)
    if deadline_value == 0:
        raise ValueError("deadline must be at least 1 ms: every store operation needs some time")
    if not isinstance(replace_limits, bool):
        raise TypeError("replace_limits must be a bool, not %s" % type(replace_limits).__name__)
    if not isinstance(adopt_stored_limits, bool):
        raise TypeError("adopt_stored_limits must be a bool, not %s" % type(adopt_stored_limits).__name__)
    if replace_limits and adopt_stored_limits:
        raise ValueError("replace_limits and adopt_stored_limits exclude each other: set one (whose limits win) "
                         "or neither")
    workers_value = _DEFAULT.workers if workers is None else _args.u32(workers, "workers")
    if workers_value == 0:
        raise ValueError("workers must be at least 1")
    ca: Optional[str] = None
    if tls_ca_file is not None:
        if not isinstance(tls_ca_file, (str, os.PathLike)):
            raise TypeError("tls_ca_file must be a path (str or os.PathLike), not %s" % type(tls_ca_file).__name__)
        path = os.fspath(tls_ca_file)
        if not isinstance(path, str):
            raise TypeError("tls_ca_file must be a str path, not bytes")
        ca = _text(path, "tls_ca_file")
    return RedisSettings(
        url=url_text,
        key_prefix=prefix,
        deadline_ms=deadline_value,
        breaker_cooldown_ms=_args.duration_ms(breaker_cooldown, breaker_cooldown_ms, "breaker_cooldown",
                                              _DEFAULT.breaker_cooldown_ms),
        on_store_error=(FAILURE_POLICY.by_code[_DEFAULT.on_store_error] or FailurePolicy.CLOSED)
        if on_store_error is None else _policy(on_store_error),
        workers=workers_value,
        replace_limits=replace_limits,
        tls_ca_file=ca,
        adopt_stored_limits=adopt_stored_limits,
    )
