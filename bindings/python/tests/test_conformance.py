"""The conformance cases, run through `classify`: the shared file (shared/conformance/classify-cases.json) and the
project's own (tests/conformance/classify-cases.json, bodies under tests/)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import xeroguard
from conftest import REPO, SHARED

PROJECT_TESTS = REPO / "tests"

SECTION5_KEYS = [
    "status", "category", "action", "retryable", "rate_limit_problem", "retry_after_ms", "recommended_wait_ms",
    "minute_remaining", "day_remaining", "app_minute_remaining", "error_number", "error_type", "message",
    "validation_messages", "warnings", "failed_elements", "oauth_problem", "oauth_problem_advice", "auth_problem",
    "problem_title", "problem_detail", "correlation_id",
]


def _cases(base: Path) -> List[Dict[str, Any]]:
    """The cases of base/conformance/classify-cases.json, each with the directory its body_file is relative to."""
    path = base / "conformance" / "classify-cases.json"
    if not path.is_file():
        return []  # test_cases_found / test_project_cases_found report it
    return [dict(case, _base=base) for case in json.loads(path.read_text(encoding="utf-8"))["cases"]]


CASES = _cases(SHARED)
PROJECT_CASES = _cases(PROJECT_TESTS)


def _body(case: Dict[str, Any]) -> bytes:
    if "body_file" in case:
        base: Path = case["_base"]
        name: str = case["body_file"]
        return (base / name).read_bytes()
    if "body_base64" in case:
        return base64.b64decode(case["body_base64"])
    body: str = case.get("body", "")
    return body.encode("utf-8")


def test_cases_found(shared_dir: Path) -> None:
    assert len(CASES) == 70


def test_project_cases_found() -> None:
    assert PROJECT_CASES, "tests/conformance/classify-cases.json holds no cases"
    assert len({c["name"] for c in PROJECT_CASES}) == len(PROJECT_CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: Dict[str, Any]) -> None:
    _check(case)


@pytest.mark.parametrize("case", PROJECT_CASES, ids=[c["name"] for c in PROJECT_CASES])
def test_project_case(case: Dict[str, Any]) -> None:
    _check(case)


def _check(case: Dict[str, Any]) -> None:
    c = xeroguard.classify(case["status"], [tuple(h) for h in case["headers"]], _body(case))
    got = c.to_dict()
    assert list(got) == SECTION5_KEYS
    assert got["status"] == case["status"]
    for key, expected in case["expect"].items():
        assert got[key] == expected, "%s: %s is %r, expected %r" % (case["name"], key, got[key], expected)
    assert c.retryable == (c.action is xeroguard.Action.RETRY)


def test_classification_is_typed_and_round_trips() -> None:
    c = xeroguard.classify(429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "12"}, "")
    assert c.category is xeroguard.Category.RATE_LIMITED
    assert c.action is xeroguard.Action.RETRY
    assert c.rate_limit_problem is xeroguard.RateLimitProblem.MINUTE
    assert c.auth_problem is None
    assert c.retry_after_ms == 12000
    d = c.to_dict()
    assert d["category"] == "rate_limited" and isinstance(d["category"], str)
    assert json.loads(c.to_json()) == d
    assert xeroguard.Classification.from_dict(d) == c
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.status = 200  # type: ignore[misc]


def test_headers_accept_mappings_pairs_and_bytes() -> None:
    as_pairs = xeroguard.classify(429, [(b"X-Rate-Limit-Problem", b"day"), ("Retry-After", "5")])
    as_map = xeroguard.classify(429, {"x-rate-limit-problem": "day", "retry-after": "5"})
    assert as_pairs == as_map
    assert as_map.rate_limit_problem is xeroguard.RateLimitProblem.DAY


def test_now_measures_retry_after_http_dates() -> None:
    headers = [("Retry-After", "Wed, 21 Oct 2026 07:28:30 GMT"), ("X-Rate-Limit-Problem", "minute")]
    at = dt.datetime(2026, 10, 21, 7, 28, 0, tzinfo=dt.timezone.utc)
    assert xeroguard.classify(429, headers, b"", now=at).retry_after_ms == 30000
    assert xeroguard.classify(429, headers, b"", now_ms=int(at.timestamp() * 1000) + 10_000).retry_after_ms == 20000
    # A naive datetime is taken as UTC, as HTTP dates are.
    assert xeroguard.classify(429, headers, b"", now=at.replace(tzinfo=None)).retry_after_ms == 30000
    with pytest.raises(ValueError):
        xeroguard.classify(429, headers, b"", now=0)


def test_classify_raw_matches_classify() -> None:
    body = (SHARED / "fixtures/xero/400_validation_minimal_docs.json").read_bytes()
    raw = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nX-MinLimit-Remaining: 7\r\n\r\n" + body
    assert xeroguard.classify_raw(raw) == xeroguard.classify(
        400, {"Content-Type": "application/json", "X-MinLimit-Remaining": "7"}, body)


def test_errors_carry_the_library_message() -> None:
    with pytest.raises(xeroguard.MalformedResponseError) as e:
        xeroguard.classify_raw(b"not http at all")
    assert e.value.status == 4 and e.value.status_name == "malformed_response"
    assert "xg_classify_raw" in str(e.value)
    with pytest.raises(xeroguard.InvalidUtf8Error):
        xeroguard.classify(200, [(b"X-Bad", b"\xff\xfe")], b"")
    with pytest.raises(xeroguard.TooLargeError):
        xeroguard.classify(200, [("X-H", "v")] * 1025, b"")
    with pytest.raises(ValueError):
        xeroguard.classify(70000, {}, b"")


def test_backoff_follows_the_policy() -> None:
    minute = xeroguard.classify(429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "3"})
    first = xeroguard.backoff(minute, 1)
    assert first.retry and first.give_up is None and first.wait_ms >= 3000
    policy = xeroguard.RetryPolicy(max_retries=2, jitter_ms=0)
    assert xeroguard.backoff(minute, 3, policy).give_up is xeroguard.GiveUp.ATTEMPTS_EXHAUSTED
    day = xeroguard.classify(429, {"X-Rate-Limit-Problem": "day", "Retry-After": "66975"})
    too_long = xeroguard.backoff(day, 1, xeroguard.RetryPolicy(max_wait_ms=60_000))
    assert not too_long.retry and too_long.give_up is xeroguard.GiveUp.WAIT_TOO_LONG
    assert too_long.wait_ms >= 66_975_000
    not_found = xeroguard.classify(404, {}, b"")
    assert xeroguard.backoff(not_found, 1).give_up is xeroguard.GiveUp.NOT_RETRYABLE
    # Exponential growth without jitter, capped.
    s500 = xeroguard.classify(500, {}, b"")
    flat = xeroguard.RetryPolicy(max_retries=10, base_ms=100, max_backoff_ms=400, jitter_ms=0)
    waits = [xeroguard.backoff(s500, a, flat).wait_ms for a in (1, 2, 3, 4)]
    assert s500.recommended_wait_ms is not None
    assert waits == sorted(waits) and all(w >= s500.recommended_wait_ms for w in waits)


def test_default_retry_policy_comes_from_the_library() -> None:
    p = xeroguard.RetryPolicy()
    assert (p.max_retries, p.base_ms, p.max_backoff_ms, p.jitter_ms, p.max_wait_ms) == (5, 500, 30_000, 250, 300_000)
