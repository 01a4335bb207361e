"""Shared by the packaging tests (run by scripts/test-packaging.sh): the repository, commands whose output is shown
when they fail, a `make install` into a temporary prefix, the local Xero-like server, and the C# binding compiled
with Mono's mcs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Union

import pytest

REPO = Path(__file__).resolve().parents[2]
Command = Sequence[Union[str, Path]]


def run(cmd: Command, *, cwd: Optional[Path] = None, env: Optional[Mapping[str, str]] = None, timeout: float = 900,
        check: bool = True) -> "subprocess.CompletedProcess[str]":
    """Runs a command; with `check`, a failure shows its exit status and the tail of its output."""
    proc = subprocess.run([str(part) for part in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, "%s exited %d\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(str(part) for part in cmd), proc.returncode, proc.stdout[-6000:], proc.stderr[-6000:])
    return proc


def crate_version() -> str:
    import tomllib  # the packaging tests run on Python 3.11+ (Debian 12's)

    with open(REPO / "Cargo.toml", "rb") as f:
        return str(tomllib.load(f)["package"]["version"])


@pytest.fixture(scope="session")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make install` into a fresh prefix, as the README says."""
    path = tmp_path_factory.mktemp("prefix")
    run(["make", "install", "PREFIX=%s" % path], cwd=REPO, timeout=1800)
    return path


def pkg_config(prefix: Path, *args: str) -> List[str]:
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    return run(["pkg-config", *args, "xeroguard"], env=env).stdout.split()


class XeroServer:
    """tests/server/xero_like_server.py in a child process, with Xero's real limits."""

    def __init__(self) -> None:
        script = REPO / "tests" / "server" / "xero_like_server.py"
        # It stops by itself when its stdin (this process's pipe) closes.
        self.proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--latency-ms", "1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, port = self.proc.stdout.readline().split()
        assert ready == "READY", ready
        self.base_url = "http://127.0.0.1:%s" % port

    def admitted(self) -> int:
        """API calls the server has answered without a 429 so far."""
        with urllib.request.urlopen(self.base_url + "/__stats", timeout=10) as r:
            return sum(json.load(r)["admitted"].values())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def xero_server() -> Iterator[XeroServer]:
    server = XeroServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_env(xero_server: XeroServer) -> Dict[str, str]:
    """What the README examples read from the environment, pointed at the local server."""
    return dict(os.environ, XERO_API_URL=xero_server.base_url, XERO_TENANT_ID="4f8a2a1e-0000-4000-8000-000000000001",
                XERO_ACCESS_TOKEN="test-token")


MONO_PACKAGES = "mono-mcs mono-runtime libmono-system-net-http4.0-cil libmono-system-runtime-serialization4.0-cil"
MCS_REFERENCES = ["-r:System.dll", "-r:System.Core.dll", "-r:System.Xml.dll", "-r:System.Net.Http.dll",
                  "-r:System.Runtime.Serialization.dll"]


@pytest.fixture(scope="session")
def csharp_binding(tmp_path_factory: pytest.TempPathFactory, prefix: Path) -> Path:
    """A directory with XeroGuard.dll (compiled from bindings/csharp/src) and the installed libxeroguard.so."""
    for tool in ("mcs", "mono"):
        assert shutil.which(tool), "%s is missing: apt-get install %s" % (tool, MONO_PACKAGES)
    out = tmp_path_factory.mktemp("csharp")
    sources = sorted((REPO / "bindings" / "csharp" / "src").glob("*.cs"))
    run(["mcs", "-nologo", "-warnaserror+", "-target:library", "-out:%s" % (out / "XeroGuard.dll"), *MCS_REFERENCES,
         *sources])
    shutil.copyfile(prefix / "lib" / "libxeroguard.so", out / "libxeroguard.so")
    return out
