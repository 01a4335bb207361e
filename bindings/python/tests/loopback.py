"""A scripted HTTP/1.1 server on a raw loopback socket, in a thread, for the resend tests: it logs every request it
reads (method, path, headers, body) and answers each from a script, in order: a response, or a connection reset
(RST) after the whole request was read, which is what a client sees when a server dies mid-call. Once the script is
used up it answers 200 with an empty invoice list. Every response closes its connection, so each attempt is a new
connection and no client reuses one the test has reset.
"""

from __future__ import annotations

import dataclasses
import gzip
import http
import json
import socket
import struct
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

LOOPBACK = "127.0.0.1"
READ_TIMEOUT_S = 10.0  # only turns a stuck client into a failed test
DEFAULT_BODY = json.dumps({"Invoices": []}).encode()


@dataclasses.dataclass(frozen=True)
class Logged:
    method: str
    path: str
    headers: Dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())


@dataclasses.dataclass(frozen=True)
class Respond:
    status: int
    headers: Sequence[Tuple[str, str]] = (("Content-Type", "application/json"),)
    body: bytes = DEFAULT_BODY
    gzip: bool = False  # send the body gzip-encoded (Content-Encoding: gzip)


@dataclasses.dataclass(frozen=True)
class Reset:
    """Read the request, then reset the connection without a byte of response."""


@dataclasses.dataclass(frozen=True)
class First:
    """Run `effect` once the request is read (the request is "at the server"), then answer with `then`."""

    effect: Callable[[], None]
    then: Respond


Action = Union[Respond, Reset, First]


class LoopbackServer:
    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(32)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._script: List[Action] = []
        self._log: List[Logged] = []
        self._errors: List[BaseException] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="loopback-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return "http://%s:%d" % (LOOPBACK, self.port)

    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def log(self) -> List[Logged]:
        with self._lock:
            if self._errors:
                raise AssertionError("the loopback server failed: %r" % self._errors)
            return list(self._log)

    def stop(self) -> None:
        self._stopping = True
        try:  # wake accept()
            socket.create_connection((LOOPBACK, self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(10)
        self._listener.close()

    def _serve(self) -> None:
        while True:
            connection, _ = self._listener.accept()
            if self._stopping:
                connection.close()
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(READ_TIMEOUT_S)
            request = _read_request(connection)
            if request is None:
                connection.close()
                return
            with self._lock:
                self._log.append(request)
                action = self._script.pop(0) if self._script else Respond(200)
            if isinstance(action, First):
                action.effect()
                action = action.then
            if isinstance(action, Reset):
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()
                return
            try:
                connection.sendall(_response_bytes(action))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading (it closed a download it did not want)
            connection.close()
        except BaseException as error:  # reported by log(), so a broken server fails the test that used it
            with self._lock:
                self._errors.append(error)
            connection.close()


def _read_request(connection: socket.socket) -> Optional[Logged]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None  # a probe (stop()) or a client that gave up
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, rest = b"", rest
        while True:
            while b"\r\n" not in rest:
                rest += _recv(connection)
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += _recv(connection)
            body, rest = body + rest[:size], rest[size + 2:]
            if size == 0:
                break
    else:
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            rest += _recv(connection)
        body = rest[:length]
    return Logged(method, path, headers, body)


def _recv(connection: socket.socket) -> bytes:
    chunk = connection.recv(65536)
    if not chunk:
        raise ConnectionError("the client closed the connection mid-request")
    return chunk


def _response_bytes(action: Respond) -> bytes:
    body = gzip.compress(action.body) if action.gzip else action.body
    reason = http.HTTPStatus(action.status).phrase if action.status in http.HTTPStatus._value2member_map_ else "X"
    lines = ["HTTP/1.1 %d %s" % (action.status, reason)]
    lines += ["%s: %s" % header for header in action.headers]
    if action.gzip:
        lines.append("Content-Encoding: gzip")
    lines += ["Content-Length: %d" % len(body), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
