"""Real redis-server instances for the Python tests, standard library only (the Rust twin: tests/support/redis.rs).

Each test starts its own server: a unix socket in a fresh temp dir, or a free loopback TCP port when it must
restart on the same port; never port 6379. Control: kill (SIGKILL), pause (SIGSTOP: connections are accepted,
nothing is answered), resume (SIGCONT), restart (same port and dir; the data survives only with aof=True).
Key hygiene: keys() via SCAN, keys_without_ttl() via PTTL. stop() kills by pid, reaps and removes the dir.

conftest.py registers this module as a plugin (pytest_plugins), which provides the fixtures `redis_server`
(a started unix-socket server) and `redis_server_factory` (start any number, with options); both stop every
server they started when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import pytest

FORBIDDEN_PORT = 6379  # a developer's or the machine's own Redis
LOOPBACK = "127.0.0.1"
# Bounds that only turn a hang into a failure on a loaded machine; nothing is timed.
STARTUP_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 20.0
PORT_ATTEMPTS = 5  # a chosen free port can be taken by another process before the server binds it
MAX_SOCKET_PATH = 100  # unix socket paths are limited to 108 bytes
INSTALL_HINT = ("install Debian's redis-server and redis-tools (apt-get install -y redis-server redis-tools); "
                "scripts/test.sh does this when run as root")


class ReplyError(str):
    """An error reply (`ERR ...`, `NOPERM ...`), returned rather than raised so tests can look at it."""


Reply = Union[None, int, bytes, str, ReplyError, List["Reply"]]


def free_port() -> int:
    """A free loopback port: bind port 0, read it, release it. Never the default Redis port."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            port: int = probe.getsockname()[1]
        if port != FORBIDDEN_PORT:
            return port


def encode_command(*args: Union[str, bytes, int]) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RespConnection:
    """A plain RESP2 connection with bounded reads (socket.timeout when nothing comes in time)."""

    def __init__(self, sock: socket.socket, timeout: float = REPLY_TIMEOUT_S) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self._buffer = b""

    @classmethod
    def unix(cls, path: Path, timeout: float = REPLY_TIMEOUT_S) -> "RespConnection":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise
        return cls(sock, timeout)

    @classmethod
    def tcp(cls, port: int, timeout: float = REPLY_TIMEOUT_S) -> "RespConnection":
        assert port != FORBIDDEN_PORT, "tests never talk to the default Redis port"
        sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, timeout)

    def send(self, *args: Union[str, bytes, int]) -> None:
        self.sock.sendall(encode_command(*args))

    def read_reply(self) -> Reply:
        return self._parse()

    def call(self, *args: Union[str, bytes, int]) -> Reply:
        self.send(*args)
        return self.read_reply()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RespConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            self._fill()
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before a reply")
        self._buffer += chunk

    def _parse(self) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"_":
            return None
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            while len(self._buffer) < length + 2:
                self._fill()
            data, self._buffer = self._buffer[:length], self._buffer[length + 2:]
            return data
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._parse() for _ in range(count)]
        raise ValueError("not a RESP2 reply: %r" % line)


def _process_state(pid: int) -> Optional[str]:
    """The state letter in /proc/PID/stat (R, S, T, Z, ...); None once the pid is gone."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    return _process_state(pid) not in (None, "Z")


def _text(reply: Reply) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    if isinstance(reply, (str, int)):
        return str(reply)
    raise AssertionError("expected a string reply, got %r" % (reply,))


class RedisServer:
    """One redis-server process owned by a test. Use start()/stop(), or `with RedisServer(...) as server:`."""

    def __init__(self, tcp: bool = False, aof: bool = False, config: Sequence[Tuple[str, str]] = ()) -> None:
        self.tcp = tcp
        self.aof = aof
        self.config = list(config)  # extra settings, e.g. [("maxmemory-policy", "allkeys-lru")]
        self.port: Optional[int] = None
        self.pid = 0  # the current (or, after kill, the last) process
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.dir = self._make_dir()

    @staticmethod
    def _make_dir() -> Path:
        path = Path(tempfile.mkdtemp(prefix="xg-redis-py-"))
        if len(str(path / "redis.sock")) <= MAX_SOCKET_PATH:
            return path
        path.rmdir()  # a long TMPDIR would not fit a unix socket path
        return Path(tempfile.mkdtemp(prefix="xg-redis-py-", dir="/tmp"))

    # -- where it is --------------------------------------------------------------------------------------------

    @property
    def socket_path(self) -> Path:
        return self.dir / "redis.sock"

    @property
    def url(self) -> str:
        """`redis+unix:///.../redis.sock`, or `redis://127.0.0.1:PORT` for a TCP server."""
        if self.port is None:
            return "redis+unix://%s" % self.socket_path
        return "redis://%s:%d" % (LOOPBACK, self.port)

    def log(self) -> str:
        parts = []
        for name in ("stderr.log", "redis.log"):
            try:
                parts.append((self.dir / name).read_text(errors="replace"))
            except OSError:
                pass
        return "".join(parts)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> "RedisServer":
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server not found: " + INSTALL_HINT)
        last_log = ""
        for _ in range(PORT_ATTEMPTS):
            if self.tcp:
                self.port = free_port()
            taken, last_log = self._launch()
            if not taken:
                return self
        raise RuntimeError("redis-server found its port taken %d times; last log:\n%s" % (PORT_ATTEMPTS, last_log))

    def _args(self) -> List[str]:
        args = ["redis-server", "--bind", LOOPBACK, "--port", str(self.port or 0),
                "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
                "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"), "--daemonize", "no",
                "--save", "", "--enable-debug-command", "local"]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else ["--appendonly", "no"]
        for name, value in self.config:
            args += ["--" + name] + value.split()
        return args

    def _launch(self) -> Tuple[bool, str]:
        """Starts the process and waits until it answers PING; (port taken, log) if it exited on a bind error."""
        assert self.port != FORBIDDEN_PORT, "never start a test server on the default Redis port"
        with open(self.dir / "stderr.log", "ab") as stderr:
            process = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=stderr)
        self.pid = process.pid
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            status = process.poll()
            if status is not None:
                log = self.log()
                if "Address already in use" in log:
                    return True, log
                raise RuntimeError("redis-server exited at start (status %d); its log:\n%s" % (status, log))
            if self._answers_ping():
                self.process = process
                return False, ""
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError("redis-server (pid %d) did not answer PING within %.0f s; its log:\n%s"
                                   % (process.pid, STARTUP_TIMEOUT_S, self.log()))
            time.sleep(0.01)

    def _answers_ping(self) -> bool:
        try:
            with RespConnection.unix(self.socket_path) as connection:
                return connection.call("PING") == "PONG"  # not LOADING
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self.process is not None

    def kill(self) -> None:
        """SIGKILL and reap: gone at once, without a chance to write anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted (by the kernel); nothing is answered until resume()."""
        assert self.process is not None, "pause: the server is not running"
        os.kill(self.pid, signal.SIGSTOP)
        self._wait_for_state(stopped=True)

    def resume(self) -> None:
        """SIGCONT: answers again, requests sent meanwhile included."""
        assert self.process is not None, "resume: the server is not running"
        os.kill(self.pid, signal.SIGCONT)
        self._wait_for_state(stopped=False)

    def _wait_for_state(self, stopped: bool) -> None:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while (_process_state(self.pid) == "T") != stopped:
            assert time.monotonic() < deadline, "pid %d did not %s" % (self.pid, "stop" if stopped else "continue")
            time.sleep(0.001)

    def restart(self) -> None:
        """Kills the server if it runs (like a crash) and starts it on the same port, socket and dir."""
        self.kill()
        taken, log = self._launch()
        if taken:
            raise RuntimeError("restart: port %s was taken meanwhile; log:\n%s" % (self.port, log))

    def stop(self) -> None:
        """Kills by pid (a paused one too), reaps, removes the dir. Safe to call twice."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- talking to it ------------------------------------------------------------------------------------------

    def connect(self, timeout: float = REPLY_TIMEOUT_S) -> RespConnection:
        """A connection over the client transport (the TCP port, else the socket)."""
        if self.port is not None:
            return RespConnection.tcp(self.port, timeout)
        return RespConnection.unix(self.socket_path, timeout)

    def command(self, *args: Union[str, bytes, int]) -> Reply:
        """One command as the default user over the unix socket (always there, whatever the transport)."""
        with RespConnection.unix(self.socket_path) as connection:
            return connection.call(*args)

    def cli(self, *args: str) -> str:
        """redis-cli over the unix socket; its raw output without the trailing newline."""
        done = subprocess.run(["redis-cli", "-s", str(self.socket_path)] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=CLI_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError("redis-cli %s failed: %s" % (args, (done.stdout + done.stderr).decode()))
        text = done.stdout.decode("utf-8", "replace")
        return text[:-1] if text.endswith("\n") else text

    def keys(self, pattern: str = "*") -> List[str]:
        """Every key matching `pattern` (SCAN, so a big keyspace is fine), sorted."""
        with RespConnection.unix(self.socket_path) as connection:
            return _scan(connection, pattern)

    def keys_without_ttl(self, pattern: str = "*") -> List[str]:
        """Matching keys with no TTL (PTTL = -1), sorted: every key but a config should expire."""
        with RespConnection.unix(self.socket_path) as connection:
            return [key for key in _scan(connection, pattern) if connection.call("PTTL", key) == -1]


def _scan(connection: RespConnection, pattern: str) -> List[str]:
    keys: Set[str] = set()
    cursor = "0"
    while True:
        reply = connection.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        assert isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list), reply
        keys.update(_text(key) for key in reply[1])
        cursor = _text(reply[0])
        if cursor == "0":
            return sorted(keys)


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """start(tcp=False, aof=False, config=()) -> a started RedisServer; all are stopped after the test."""
    started: List[RedisServer] = []

    def start(tcp: bool = False, aof: bool = False, config: Sequence[Tuple[str, str]] = ()) -> RedisServer:
        server = RedisServer(tcp=tcp, aof=aof, config=config)
        started.append(server)
        try:
            return server.start()
        except RuntimeError as error:
            pytest.fail(str(error))  # never a skip: a missing redis-server fails loudly, naming the package

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """A started server on a unix socket, no persistence; stopped after the test."""
    return redis_server_factory()
