"""A Classification is read from the struct the library fills; its text fields (strings and lists) come from the
library's JSON form on their first read. It still behaves as the frozen dataclass it is."""

from __future__ import annotations

import copy
import ctypes
import dataclasses
import json
import pickle
import threading
from typing import Any, Iterator, List

import pytest

import xeroguard
from conftest import SHARED
from xeroguard import _classify, _native

FIXTURE = SHARED / "fixtures" / "xero" / "400_validation_contact_duplicate_name.json"
JSON = ("Content-Type", "application/json; charset=utf-8")
CORRELATION = ("Xero-Correlation-Id", "6b5b4a4e-0000-4000-8000-00000000c0de")


@pytest.fixture
def json_fetches(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[str]]:
    """Records every time a classification asks the library for its JSON form."""
    calls: List[str] = []
    for name in ("_response_json", "_raw_json"):
        original = getattr(_classify, name)

        def counting(*args: Any, _original: Any = original, _name: str = name) -> bytes:
            calls.append(_name)
            result: bytes = _original(*args)
            return result

        monkeypatch.setattr(_classify, name, counting)
    yield calls


def validation_400() -> xeroguard.Classification:
    return xeroguard.classify(400, [JSON, CORRELATION], FIXTURE.read_bytes())


def test_scalars_come_from_the_struct_and_text_on_first_read(json_fetches: List[str]) -> None:
    c = validation_400()
    assert (c.status, c.category, c.action, c.retryable, c.error_number) == (
        400, xeroguard.Category.VALIDATION_ERROR, xeroguard.Action.FIX_REQUEST, False, 10)
    assert c.recommended_wait_ms is None and c.rate_limit_problem is None and c.auth_problem is None
    xeroguard.backoff(c, 1)  # the C form is the struct the library filled
    assert json_fetches == []
    assert c.validation_messages == ("The contact name Buzz Lightyear is already assigned to another contact. "
                                     "The contact name must be unique across all active contacts.",)
    assert json_fetches == ["_response_json"]
    assert (c.message, c.error_type, c.correlation_id) == (
        "A validation exception occurred", "ValidationException", CORRELATION[1])
    assert c.warnings == () and c.failed_elements == (0,) and c.oauth_problem is None
    assert json_fetches == ["_response_json"]  # one fetch fills every text field


def test_classify_raw_is_lazy_too(json_fetches: List[str]) -> None:
    raw = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n\r\n"
    c = xeroguard.classify_raw(raw)
    assert c.auth_problem is xeroguard.AuthProblem.INVALID_TOKEN and json_fetches == []
    assert c.to_dict() == xeroguard.classify(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}).to_dict()
    assert json_fetches.count("_raw_json") == 1


def test_a_large_body_is_not_kept(json_fetches: List[str]) -> None:
    # Over the keep limit the JSON form is taken in the same call: the classification holds no body.
    body = b'{"Id":"x","Status":"OK","Invoices":[' + b",".join([b'{"InvoiceID":"i","Status":"OK"}'] * 2000) + b"]}"
    assert len(body) > _classify._KEEP_INPUT_BYTES
    c = xeroguard.classify(200, [JSON, CORRELATION], body)
    assert not any(isinstance(v, (bytes, bytearray)) and len(v) >= len(body)
                   for v in _referents(c)), "the body is kept"
    assert c.category is xeroguard.Category.SUCCESS and c.correlation_id == CORRELATION[1]
    assert json_fetches == []


def test_small_and_large_batches_classify_as_their_raw_form() -> None:
    # A classification of a small input keeps it to fetch the text fields later; a large one takes them at once.
    ok = b'{"InvoiceID":"i","StatusAttributeString":"OK"}'
    bad = b'{"InvoiceID":"j","StatusAttributeString":"ERROR","ValidationErrors":[{"Message":"Bad date"}]}'
    for count in (10, 3000):
        body = b'{"Id":"x","Status":"OK","Invoices":[' + b",".join([ok] * count + [bad]) + b"]}"
        c = xeroguard.classify(200, [JSON], body)
        assert c.category is xeroguard.Category.PARTIAL_SUCCESS, count
        assert c.failed_elements == (count,) and c.validation_messages == ("Bad date",)
        raw = b"HTTP/1.1 200 OK\r\nContent-Type: " + JSON[1].encode() + b"\r\n\r\n" + body
        assert c == xeroguard.classify_raw(raw)
    assert len(body) > _classify._KEEP_INPUT_BYTES


def test_threads_classifying_at_once_each_get_their_own_answer() -> None:
    # The GIL is released during the call: the library shares no state between calls.
    statuses = [200, 400, 401, 404, 429, 500, 503, 413]
    expected = {s: xeroguard.classify(s, [("Retry-After", str(s)), JSON], b"{}").to_dict() for s in statuses}
    wrong: List[Any] = []
    barrier = threading.Barrier(len(statuses))

    def work(status: int) -> None:
        barrier.wait()
        for _ in range(300):
            got = xeroguard.classify(status, [("Retry-After", str(status)), JSON], b"{}")
            if got.to_dict() != expected[status]:
                wrong.append((status, got))

    threads = [threading.Thread(target=work, args=(s,)) for s in statuses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


@pytest.mark.parametrize("headers", [
    [("Retry-After", "7"), ("X-Empty", "")],
    {"Retry-After": "7", "X-Empty": ""},
    [(b"Retry-After", "7"), ("X-Empty", b"")],  # bytes take the per-header path
    (("Retry-After", bytearray(b"7")), (memoryview(b"X-Empty"), "")),
    iter([("Retry-After", "7"), ("X-Empty", "")]),
])
def test_every_header_form_reaches_the_library_the_same(headers: Any) -> None:
    c = xeroguard.classify(429, headers, b"")
    assert (c.retry_after_ms, c.category) == (7000, xeroguard.Category.RATE_LIMITED)


def test_repeated_headers_stay_apart_in_order() -> None:
    c = xeroguard.classify(429, [("Retry-After", "9"), ("Retry-After", "3")], b"")
    alone = xeroguard.classify(429, [("Retry-After", "9")], b"")
    assert c.retry_after_ms == alone.retry_after_ms == 9000  # the first of repeated Retry-After headers


@pytest.mark.parametrize("headers", [
    [("Retry-After", "7\x00X-A")],
    [("Retry\x00After", "7")],
    [(b"Retry-After", b"7\x00")],
])
def test_a_nul_in_a_header_is_refused_before_it_crosses(headers: Any) -> None:
    with pytest.raises(ValueError, match="cannot contain NUL"):
        xeroguard.classify(429, headers, b"")


def test_items_that_are_not_pairs_are_refused() -> None:
    with pytest.raises(ValueError):
        xeroguard.classify(429, [("Retry-After", "7", "extra")], b"")
    with pytest.raises(ValueError):
        xeroguard.classify(429, [("Retry-After",)], b"")
    # Whose texts, strung together, would read as pairs all the same.
    with pytest.raises(ValueError):
        xeroguard.classify(429, [("Retry-After",), ("7", "X-A", "1")], b"")
    with pytest.raises(ValueError):
        xeroguard.classify(429, [("Retry-After\x007",)], b"")
    with pytest.raises(TypeError, match="header name must be str or bytes, not int"):
        xeroguard.classify(429, [(1, "7")], b"")


def _referents(c: xeroguard.Classification) -> List[Any]:
    """Everything the classification's text source holds, one level down."""
    source = vars(c).get("_text_source")
    return [] if source is None else list(source.args)


def test_a_caller_changing_its_buffer_changes_nothing() -> None:
    body = bytearray(FIXTURE.read_bytes())
    c = xeroguard.classify(400, [JSON], body)
    body[:] = b'{"Message":"something else"}'
    assert c.message == "A validation exception occurred"


def test_every_text_field_matches_the_json_form() -> None:
    """The classification (through xg_classify_flat) against xg_classify's JSON form of the same response, its
    headers given as an xg_header array."""
    c = validation_400()
    body = FIXTURE.read_bytes()
    texts = [t.encode() for t in (*JSON, *CORRELATION)]
    headers = (_native.XgHeader * 2)(*(_native.XgHeader(texts[i], len(texts[i]), texts[i + 1], len(texts[i + 1]))
                                       for i in (0, 2)))
    response = _native.XgResponse(400, headers, 2, ctypes.cast(body, ctypes.POINTER(ctypes.c_uint8)), len(body), 0)
    out = ctypes.c_void_p()
    _native.lib.xg_classify(ctypes.byref(response), None, ctypes.byref(out))
    expected = xeroguard.Classification.from_dict(json.loads(_native.take_string(out)))
    assert c == expected and c.to_dict() == expected.to_dict()


def test_it_is_still_a_frozen_dataclass() -> None:
    c = validation_400()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.status = 200  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'categroy'"):
        c.categroy  # type: ignore[attr-defined]  # noqa: B018
    assert [f.name for f in dataclasses.fields(c)] == list(c.to_dict())
    assert dataclasses.asdict(c)["validation_messages"] == c.validation_messages
    fixed = dataclasses.replace(c, status=422)
    assert fixed.status == 422 and fixed.message == c.message and fixed != c
    assert hash(c) == hash(validation_400()) and c == validation_400()
    assert "message='A validation exception occurred'" in repr(c)


@pytest.mark.parametrize("read_first", [False, True])
def test_copies_and_pickles_are_equal(read_first: bool) -> None:
    c = validation_400()
    if read_first:
        assert c.message
    for other in (pickle.loads(pickle.dumps(c)), copy.copy(c), copy.deepcopy(c)):
        assert other == c and other.validation_messages == c.validation_messages
        assert xeroguard.backoff(other, 1).give_up is xeroguard.GiveUp.NOT_RETRYABLE


def test_backoff_and_observe_agree_for_struct_and_python_forms() -> None:
    c = xeroguard.classify(429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "12", "X-MinLimit-Remaining": "0"})
    rebuilt = xeroguard.Classification.from_dict(c.to_dict())
    read = _native.field_reader(_native.XgClassification)
    # The filled struct and the field-by-field translation agree on every field but the last: whether the server
    # may have acted is the library's, and a classification made in Python gives the cautious answer.
    assert read(c._to_c())[:-1] == read(rebuilt._to_c())[:-1]
    assert (c.may_have_been_processed, rebuilt.may_have_been_processed) == (False, True)
    assert xeroguard.resend("POST", c, 1, has_idempotency_key=False).retry
    assert xeroguard.resend("POST", rebuilt, 1, has_idempotency_key=False).give_up is xeroguard.GiveUp.UNSAFE_TO_RESEND
    policy = xeroguard.RetryPolicy(jitter=0)
    assert xeroguard.backoff(c, 2, policy) == xeroguard.backoff(rebuilt, 2, policy)
    with xeroguard.Limiter(clock="manual") as a, xeroguard.Limiter(clock="manual") as b:
        a.observe("t", c)
        b.observe("t", rebuilt)
        assert a.snapshot("t") == b.snapshot("t") and a.peek("t").wait == 12.0


def test_threads_reading_text_at_once_agree() -> None:
    c = validation_400()
    seen: List[Any] = []
    barrier = threading.Barrier(8)

    def read() -> None:
        barrier.wait()
        seen.append((c.message, c.validation_messages, c.correlation_id))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and len(set(seen)) == 1 and seen[0][0] == "A validation exception occurred"


def test_headers_reach_the_library_as_given() -> None:
    # Many headers, repeated ones, bytes and str, empty values and non-ASCII text: the packed header block
    # must carry each (name, value) exactly.
    headers = [(b"X-Filler-%d" % i, "v" * i) for i in range(40)] + [
        ("Retry-After", ""), ("Retry-After", "9"), ("X-Rate-Limit-Problem", b"day"),
        ("Xero-Correlation-Id", "caf\u00e9-\u2603"), ("X-Empty", b""),
    ]
    c = xeroguard.classify(429, headers, b"")
    assert c.rate_limit_problem is xeroguard.RateLimitProblem.DAY
    assert c.correlation_id == "caf\u00e9-\u2603"
    as_pairs = [(k if isinstance(k, bytes) else k.encode(), v if isinstance(v, bytes) else v.encode())
                for k, v in headers]
    assert c == xeroguard.classify(429, as_pairs, b"") == xeroguard.classify_raw(
        b"HTTP/1.1 429 Too Many Requests\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in as_pairs) + b"\r\n")


def test_no_headers_and_no_body() -> None:
    for headers in ((), [], {}, None):
        c = xeroguard.classify(503, headers, None)
        assert c.category is xeroguard.Category.SERVICE_UNAVAILABLE and c.message is None

