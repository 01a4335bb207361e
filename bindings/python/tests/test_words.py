"""Enum members print as their words: `str(c.category) == f"{c.category}" == "rate_limited"` on every Python
(a plain `(str, Enum)` prints `Category.RATE_LIMITED` in f-strings on 3.11, and in `str()` everywhere)."""

from __future__ import annotations

import json
import logging
from typing import List

import httpx
import pytest

import xeroguard
from xeroguard._vocabulary import Word

ENUMS = [xeroguard.Category, xeroguard.Action, xeroguard.RateLimitProblem, xeroguard.AuthProblem,
         xeroguard.Reason, xeroguard.GiveUp, xeroguard.FailurePolicy, xeroguard.TransportFailure]
MEMBERS: List[Word] = [m for cls in ENUMS for m in cls]


@pytest.mark.parametrize("member", MEMBERS, ids=[repr(m) for m in MEMBERS])
def test_a_member_formats_as_its_word(member: Word) -> None:
    word = member.value
    assert str(member) == f"{member}" == format(member) == "%s" % member == "{}".format(member) == word
    assert f"{member:>30}" == f"{word:>30}" and f"{member:.3}" == word[:3]
    assert member == word and word == member and hash(member) == hash(word)
    assert json.dumps({"k": member}) == json.dumps({"k": word})
    assert repr(member) == "<%s.%s: %r>" % (type(member).__name__, member.name, word)  # repr stays informative


def test_a_classification_prints_words() -> None:
    c = xeroguard.classify(429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "37"}, b"")
    assert str(c.category) == f"{c.category}" == "rate_limited"
    assert f"{c.action} after {c.recommended_wait} s ({c.rate_limit_problem})" == "retry after 37.0 s (minute)"


def test_the_guard_logs_words(caplog: pytest.LogCaptureFixture) -> None:
    from xeroguard.integrations.httpx import XeroGuardTransport

    def day_limit(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"X-Rate-Limit-Problem": "day", "Retry-After": "600"})

    transport = XeroGuardTransport(xeroguard.Limiter(clock="manual"), httpx.MockTransport(day_limit),
                                   retries=xeroguard.RetryPolicy(max_wait=1))
    with httpx.Client(transport=transport) as client, caplog.at_level(logging.INFO, logger="xeroguard"):
        assert client.get("https://api.xero.com/api.xro/2.0/Invoices").status_code == 429
    assert "not resending GET https://api.xero.com/api.xro/2.0/Invoices after 429 rate_limited: wait_too_long" in (
        caplog.text)


def test_payload_too_large_is_a_category() -> None:
    assert xeroguard.Category("payload_too_large") is xeroguard.Category.PAYLOAD_TOO_LARGE
    assert f"{xeroguard.Category.PAYLOAD_TOO_LARGE}" == "payload_too_large"
    c = xeroguard.classify(413, {}, b"")
    assert c.category is xeroguard.Category.PAYLOAD_TOO_LARGE and c.action is xeroguard.Action.FIX_REQUEST


def test_the_new_words_print_as_words() -> None:
    assert f"{xeroguard.Reason.STORE_UNAVAILABLE} {xeroguard.GiveUp.UNSAFE_TO_RESEND}" == (
        "store_unavailable unsafe_to_resend")
    assert [str(p) for p in xeroguard.FailurePolicy] == ["closed", "open", "local"]
    assert [f"{f}" for f in xeroguard.TransportFailure] == ["not_sent", "no_response"]
