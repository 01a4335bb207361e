"""What the fleet tests share (tests/fleet/test_fleet.py, tests/fleet/test_fleet_faults.py): building and starting
the workers of each language (worker.c, Worker.cs, worker.py, worker.mjs; they all speak one protocol: READY, GO
<run ms>, one JSON line), their command line, a run of them, and a redis-server owned by the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))
sys.path.insert(0, str(ROOT / "bindings" / "python" / "tests"))

from redis_server import RedisServer  # noqa: E402
from xero_like_server import XeroLikeServer  # noqa: E402

WORKER_START_TIMEOUT_S = 120.0
# XEROGUARD_FLEET_LANGUAGES (default c,csharp,python,node) narrows a run to some languages, for debugging only: the
# test command runs all four.
LANGUAGES = [x.strip() for x in os.environ.get("XEROGUARD_FLEET_LANGUAGES", "c,csharp,python,node").split(",")
             if x.strip()]
# (limit, window ms) of one window, as the Xero-like server and worst_window take it.
Window = Tuple[int, int]

# The fleet's shape (test_fleet.py's docstring says why): Xero's, with windows of 1 s and 10 s.
MINUTE: Window = (6, 1000)  # per tenant
DAY: Window = (50, 10_000)  # per tenant
CONCURRENCY = 2  # per tenant
APP: Window = (20, 1000)  # per app
# The workers' margin on every window: it covers how much later one call can arrive after its send than another
# (measured and printed by test_fleet.py: p99 2-10 ms, the worst 5-13 ms on a loaded 2-core machine, from a Mono or
# Python thread waiting to be scheduled; 20-33 ms for the first calls before the workers warmed their guarded path
# up). 40 ms is three times the worst seen. It costs no throughput while what the margins add up to over the span
# (SPAN_WINDOWS x the margin) stays below a window minus a burst; beyond that a window's calls would be lost.
MARGIN_MS = 40
PERMIT_TIMEOUT_MS = 10_000
SERVER_LATENCY_MS = 5


def fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def native_library() -> Path:
    for profile in ("release", "debug"):
        lib = ROOT / "target" / profile / "libxeroguard.so"
        if lib.is_file():
            return lib
    fail("target/release/libxeroguard.so (or debug) is missing: run cargo build --release first (scripts/test.sh "
         "builds it)")
    raise AssertionError


def soname(lib: Path) -> Optional[str]:
    out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "(SONAME)" in line and "[" in line:
            return line.split("[", 1)[1].split("]", 1)[0]
    return None


def build_c_worker(work: Path) -> List[str]:
    """Compiles worker.c against include/ and a private copy of the library (linked by its SONAME, like an
    installed one)."""
    if shutil.which("cc") is None or shutil.which("readelf") is None:
        fail("cc and readelf are needed for the C workers: apt-get install -y gcc binutils")
    lib_dir = work / "lib"
    lib_dir.mkdir()
    lib = native_library()
    shutil.copy(lib, lib_dir / "libxeroguard.so")
    name = soname(lib)
    if name and name != "libxeroguard.so":
        (lib_dir / name).symlink_to("libxeroguard.so")
    exe = work / "worker_c"
    done = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-pthread",
                           "-I", str(ROOT / "include"), str(HERE / "worker.c"), "-L", str(lib_dir), "-lxeroguard",
                           "-Wl,-rpath," + str(lib_dir), "-o", str(exe)], capture_output=True, text=True)
    if done.returncode != 0:
        fail("compiling tests/fleet/worker.c failed:\n" + done.stderr)
    return [str(exe)]


def build_csharp_worker(work: Path) -> List[str]:
    """Compiles Worker.cs with mcs against the C# binding that bindings/csharp/run-tests.sh built."""
    build = ROOT / "bindings" / "csharp" / "build"
    dll, lib = build / "XeroGuard.dll", build / "libxeroguard.so"
    if not dll.is_file() or not lib.is_file():
        fail("%s and %s are missing: run bash bindings/csharp/run-tests.sh first (scripts/test.sh does)" % (dll, lib))
    for tool in ("mcs", "mono"):
        if shutil.which(tool) is None:
            fail("%s is missing: apt-get install -y mono-mcs mono-runtime libmono-system-net-http4.0-cil" % tool)
    shutil.copy(dll, work / "XeroGuard.dll")
    exe = work / "FleetWorker.exe"
    refs = ["-r:System.dll", "-r:System.Core.dll", "-r:System.Net.Http.dll", "-r:" + str(work / "XeroGuard.dll")]
    done = subprocess.run(["mcs", "-nologo", "-warnaserror+", "-target:exe", "-out:" + str(exe)] + refs
                          + [str(HERE / "Worker.cs")], capture_output=True, text=True)
    if done.returncode != 0:
        fail("compiling tests/fleet/Worker.cs failed:\n" + done.stdout + done.stderr)
    return ["mono", "--debug", str(exe), "--library", str(lib)]


def python_worker(work: Path) -> List[str]:
    # The interpreter running this test: the bindings venv, where xeroguard (and httpx) are installed.
    return [sys.executable, str(HERE / "worker.py")]


def node_worker(work: Path) -> List[str]:
    """worker.mjs over the npm package as bindings/node/run-tests.sh built it (dist/), on the harness's library."""
    package = ROOT / "bindings" / "node"
    if shutil.which("node") is None:
        fail("node is missing: install Node.js 18 or later (apt-get install -y nodejs npm)")
    if not (package / "dist" / "cjs" / "index.js").is_file() or not (package / "node_modules" / "koffi").is_dir():
        fail("%s is not built: run bash bindings/node/run-tests.sh first (scripts/test.sh does)" % package)
    return ["node", str(HERE / "worker.mjs"), "--library", str(native_library())]


BUILDERS = {"c": build_c_worker, "csharp": build_csharp_worker, "python": python_worker, "node": node_worker}


def pair_of_workers_per_language(work: Path, skews: Optional[Dict[str, str]] = None) -> List[Worker]:
    """Two workers of each language in LANGUAGES, built in `work`; the second on a clock moved by skews[language]
    (faketime) when skews are given."""
    unknown = sorted(set(LANGUAGES) - set(BUILDERS))
    assert not unknown, "XEROGUARD_FLEET_LANGUAGES names unknown languages: %s" % unknown
    if skews and shutil.which("faketime") is None:
        fail("faketime is missing (skewed-clock workers): apt-get install -y faketime (scripts/test.sh does)")
    workers: List[Worker] = []
    for language in LANGUAGES:
        argv = BUILDERS[language](work)
        workers += [Worker(language, 1, argv, None), Worker(language, 2, argv, skews[language] if skews else None)]
    return workers


class Worker:
    def __init__(self, language: str, index: int, argv: List[str], skew: Optional[str]) -> None:
        self.language = language
        self.id = "%s%d" % ({"c": "c", "csharp": "cs", "python": "py", "node": "js"}[language], index)
        self.skew = skew
        self.argv = (["faketime", "-f", skew] if skew else []) + argv
        self.proc: Optional["subprocess.Popen[str]"] = None
        self.ready_unix = 0.0
        self.harness_unix_at_ready = 0.0
        self.result: Dict[str, Any] = {}
        self.stderr = ""

    def start(self, common: List[str]) -> None:
        self.proc = subprocess.Popen(self.argv + ["--id", self.id] + common, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        line: List[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(WORKER_START_TIMEOUT_S)
        words = line[0].split() if line else []
        if len(words) != 3 or words[0] != "READY":
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            fail("worker %s (%s) did not start: first line %r; stderr:\n%s"
                 % (self.id, " ".join(self.argv), line[0] if line else "(none in time)", err))
        self.harness_unix_at_ready = time.time()
        self.ready_unix = float(words[1])

    def go(self, run_ms: int) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("GO %d\n" % run_ms)
        self.proc.stdin.flush()

    def finish(self, timeout_s: float) -> None:
        assert self.proc is not None
        try:
            out, self.stderr = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, self.stderr = self.proc.communicate(timeout=30)
            fail("worker %s did not finish within %.0f s; stderr:\n%s" % (self.id, timeout_s, self.stderr))
        lines = out.strip().splitlines()
        if self.proc.returncode != 0 or not lines:
            fail("worker %s exited %s; stderr:\n%s" % (self.id, self.proc.returncode, self.stderr))
        self.result = json.loads(lines[-1])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
    except RuntimeError as error:
        fail(str(error))
    try:
        yield server
    finally:
        server.stop()


def xero_like_server(seed: int) -> XeroLikeServer:
    """The Xero-like server with the fleet's shape, in this process: its log's t_ms is time.monotonic() since
    `state.started`, the clock (CLOCK_MONOTONIC) the unskewed workers stamp their sends with."""
    return XeroLikeServer(minute_ms=MINUTE[1], minute_limit=MINUTE[0], day_ms=DAY[1], day_limit=DAY[0],
                          concurrency=CONCURRENCY, app_minute_limit=APP[0], latency_ms=SERVER_LATENCY_MS, seed=seed)


def worker_args(redis: RedisServer, prefix: str, xero: XeroLikeServer, tenants: Sequence[str],
                margin_ms: int = MARGIN_MS) -> List[str]:
    """The command line every worker takes (after --id): the store, the server, the tenants (a thread or task per
    tenant each) and the fleet's limits, each window with the margin."""
    def window(w: Window) -> str:
        return "%d/%d/%d" % (w[0], w[1], margin_ms)
    return ["--redis", redis.url, "--prefix", prefix, "--port", str(xero.port), "--tenants", ",".join(tenants),
            "--threads-per-tenant", "1", "--minute", window(MINUTE), "--day", window(DAY),
            "--concurrency", str(CONCURRENCY), "--app", window(APP), "--permit-timeout-ms", str(PERMIT_TIMEOUT_MS)]


def run_fleet(workers: Sequence[Worker], common: List[str], xero: XeroLikeServer, run_ms: int,
              meanwhile: Callable[[], None] = lambda: None) -> None:
    """Starts every worker, waits until all are ready, clears the server's counts (the warm-up calls are not part of
    the run), lets them call for run_ms while `meanwhile` runs here, and collects their results. Every worker is
    killed on the way out, pass or fail."""
    try:
        for w in workers:
            w.start(common)
        for w in workers:
            w.wait_ready()
        xero.reset()
        for w in workers:
            w.go(run_ms)
        meanwhile()
        for w in workers:
            w.finish(run_ms / 1000.0 + 60)
    finally:
        for w in workers:
            w.kill()
