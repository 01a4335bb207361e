"""The guards read a body as the library's rule says (xg_body_bytes_to_classify): every error body, a JSON, XML or
text success up to 1 MiB (it can carry errors: a summarizeErrors=false batch), nothing of any other success (a
download); and whatever they read still reaches the caller, whole."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import httpx
import pytest
import requests

import xeroguard
from loopback import LoopbackServer, Respond
from xeroguard import Category, Limiter
from xeroguard.integrations import _guard
from xeroguard.integrations.httpx import AsyncXeroGuardTransport, XeroGuardTransport
from xeroguard.integrations.requests import guard_session

MIB = 1 << 20
HEADERS = {"Xero-Tenant-Id": "tenant-a"}
# Longer than the 1 MiB a success is classified from, and still JSON the caller can parse.
LONG_JSON = b'{"Invoices": [], "Padding": "' + b"x" * (MIB + MIB // 2) + b'"}'
PDF = bytes(range(256)) * (2 * MIB // 256)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    s = LoopbackServer()
    yield s
    s.stop()


@pytest.fixture
def classified(monkeypatch: pytest.MonkeyPatch) -> List[Tuple[int, bytes]]:
    """(status, body) of every response the guards classify."""
    seen: List[Tuple[int, bytes]] = []
    real = _guard.classify

    def spy(status: int, headers: Any, body: bytes) -> xeroguard.Classification:
        seen.append((status, bytes(body)))
        return real(status, headers, body)

    monkeypatch.setattr(_guard, "classify", spy)
    return seen


def summarize_errors_false(shared_dir: Path) -> bytes:
    # Xero-OpenAPI's PUT /BankTransactions 200 example (shared/fixtures/xero/SOURCES.md): an element in ERROR.
    return (shared_dir / "fixtures" / "xero" / "200_summarize_errors_false_banktransactions.json").read_bytes()


def requests_get(server: LoopbackServer, stream: bool) -> requests.Response:
    session = guard_session(requests.Session(), Limiter(), prefixes=[server.url + "/"])
    return session.get(server.url + "/api.xro/2.0/Invoices", headers=HEADERS, stream=stream, timeout=10)


def httpx_client() -> httpx.Client:
    return httpx.Client(transport=XeroGuardTransport(Limiter()), timeout=10)


def test_a_partial_success_on_200_is_classified_from_its_body(server: LoopbackServer, shared_dir: Path,
                                                             classified: List[Tuple[int, bytes]]) -> None:
    body = summarize_errors_false(shared_dir)
    server.script(Respond(200, body=body), Respond(200, body=body))
    assert requests_get(server, stream=False).content == body
    with httpx_client() as client:
        assert client.get(server.url + "/api.xro/2.0/BankTransactions", headers=HEADERS).content == body
    assert classified == [(200, body)] * 2
    assert {xeroguard.classify(200, {}, b).category for _, b in classified} == {Category.PARTIAL_SUCCESS}


@pytest.mark.parametrize("stream", [False, True])
def test_requests_classifies_the_first_mib_of_a_long_success_and_hands_on_all(
        server: LoopbackServer, classified: List[Tuple[int, bytes]], stream: bool) -> None:
    server.script(Respond(200, body=LONG_JSON))
    r = requests_get(server, stream)
    assert classified == [(200, LONG_JSON[:MIB])]
    assert r.content == LONG_JSON and r.json()["Invoices"] == []


def test_requests_leaves_a_streamed_download_unread(server: LoopbackServer,
                                                    classified: List[Tuple[int, bytes]]) -> None:
    server.script(Respond(200, (("Content-Type", "application/pdf"),), PDF))
    r = requests_get(server, stream=True)
    assert classified == [(200, b"")]
    assert b"".join(r.iter_content(64 * 1024)) == PDF


def test_requests_reads_a_gzip_body_decoded(server: LoopbackServer, classified: List[Tuple[int, bytes]]) -> None:
    body = b'{"Type": "ValidationException", "Message": "A validation exception occurred"}'
    server.script(Respond(400, body=body, gzip=True), Respond(200, body=LONG_JSON, gzip=True))
    assert requests_get(server, stream=True).content == body
    assert requests_get(server, stream=True).content == LONG_JSON
    assert classified == [(400, body), (200, LONG_JSON[:MIB])]


def test_httpx_classifies_the_first_mib_of_a_long_success_and_hands_on_all(
        server: LoopbackServer, classified: List[Tuple[int, bytes]]) -> None:
    server.script(Respond(200, body=LONG_JSON), Respond(200, body=LONG_JSON, gzip=True))
    with httpx_client() as client:
        with client.stream("GET", server.url + "/api.xro/2.0/Invoices", headers=HEADERS) as r:
            assert b"".join(r.iter_bytes()) == LONG_JSON
        r = client.get(server.url + "/api.xro/2.0/Invoices", headers=HEADERS)
        assert r.content == LONG_JSON and r.headers["content-encoding"] == "gzip"  # decoded by httpx, as usual
    assert classified == [(200, LONG_JSON[:MIB])] * 2


def test_httpx_leaves_a_download_unread(server: LoopbackServer, classified: List[Tuple[int, bytes]]) -> None:
    server.script(Respond(200, (("Content-Type", "application/pdf"),), PDF))
    with httpx_client() as client:
        with client.stream("GET", server.url + "/api.xro/2.0/Invoices/1", headers=HEADERS) as r:
            assert not r.is_stream_consumed
            assert b"".join(r.iter_bytes()) == PDF
    assert classified == [(200, b"")]


def test_httpx_async_reads_an_error_body_and_hands_it_on(server: LoopbackServer,
                                                         classified: List[Tuple[int, bytes]]) -> None:
    error = b'{"Type": "ValidationException", "Message": "' + b"m" * 200_000 + b'"}'
    server.script(Respond(400, body=error, gzip=True))

    async def call() -> bytes:
        async with httpx.AsyncClient(transport=AsyncXeroGuardTransport(Limiter()), timeout=10) as client:
            return (await client.get(server.url + "/api.xro/2.0/Invoices", headers=HEADERS)).content

    assert asyncio.run(call()) == error
    assert classified == [(400, error)]
