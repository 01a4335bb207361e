"""The Redis test helper (redis_server.py) against real servers: what the Python Redis tests stand on."""

from __future__ import annotations

import socket
from typing import Callable

import pytest

from redis_server import FORBIDDEN_PORT, RedisServer, RespConnection, ReplyError, process_alive

# Long enough that a reply which was going to come has come; only ever fails if a reply does arrive.
NO_REPLY_WITHIN_S = 0.3


def test_redis_server_fixture_answers_ping_on_a_raw_socket_and_dies_on_kill(redis_server: RedisServer) -> None:
    assert redis_server.url == "redis+unix://%s" % redis_server.socket_path
    assert redis_server.port is None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(str(redis_server.socket_path))
        raw.sendall(b"PING\r\n")
        assert raw.recv(16) == b"+PONG\r\n"
    assert redis_server.cli("CONFIG", "GET", "port") == "port\n0"  # no TCP listener
    assert redis_server.cli("CONFIG", "GET", "save") == "save\n"
    pid = redis_server.pid
    assert process_alive(pid)
    redis_server.kill()
    assert not process_alive(pid)
    with pytest.raises(OSError):
        RespConnection.unix(redis_server.socket_path)


def test_redis_server_on_tcp_pauses_resumes_and_restarts_on_its_port(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(tcp=True)
    port = server.port
    assert port is not None and port != FORBIDDEN_PORT
    assert server.url == "redis://127.0.0.1:%d" % port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"PING\r\n")
        assert raw.recv(16) == b"+PONG\r\n"

    server.pause()
    with server.connect(timeout=NO_REPLY_WITHIN_S) as connection:  # accepted by the kernel
        connection.send("SET", "sent-while-paused", "1")
        with pytest.raises(socket.timeout):
            connection.read_reply()
        server.resume()
        connection.sock.settimeout(10)
        assert connection.read_reply() == "OK"  # answered after the pause
    assert server.command("GET", "sent-while-paused") == b"1"

    old_pid = server.pid
    server.restart()
    assert server.port == port and server.pid != old_pid and not process_alive(old_pid)
    assert server.command("GET", "sent-while-paused") is None  # no persistence
    with server.connect() as connection:
        assert connection.call("PING") == "PONG"


def test_redis_server_with_aof_keeps_data_across_a_restart(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(tcp=True, aof=True, config=[("maxmemory-policy", "noeviction")])
    assert server.cli("CONFIG", "GET", "appendonly") == "appendonly\nyes"
    assert server.cli("CONFIG", "GET", "maxmemory-policy") == "maxmemory-policy\nnoeviction"
    server.command("SET", "kept", "v")
    server.command("SET", "expiring", "v", "EX", 1000)
    server.restart()  # SIGKILL, like a crash
    assert server.command("GET", "kept") == b"v"
    assert server.keys_without_ttl() == ["kept"]


def test_redis_keys_without_ttl_finds_only_keys_that_never_expire(redis_server: RedisServer) -> None:
    redis_server.command("EVAL", "for i = 1, 2500 do redis.call('SET', 'bulk:' .. i, 'v') end", 0)
    redis_server.command("SET", "xg:{app}:cfg", "limits")
    redis_server.command("SET", "xg:{app}:win:t1", "log", "PX", 50000)
    assert redis_server.keys("xg:*") == ["xg:{app}:cfg", "xg:{app}:win:t1"]
    assert redis_server.keys_without_ttl("xg:*") == ["xg:{app}:cfg"]
    assert len(redis_server.keys("bulk:*")) == 2500  # more than one SCAN batch
    assert isinstance(redis_server.command("NOSUCHCOMMAND"), ReplyError)


def test_redis_server_stop_kills_a_paused_server_and_removes_its_dir() -> None:
    server = RedisServer().start()
    server.pause()
    pid, directory = server.pid, server.dir
    server.stop()
    assert not process_alive(pid)
    assert not directory.exists()
    server.stop()  # twice is fine
