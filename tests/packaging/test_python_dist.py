"""The Python release files as scripts/build-python-dist.sh makes them: an sdist that carries the crate, a wheel built
from the unpacked sdist outside the repository, tagged manylinux2014 with auditwheel's agreement, holding a
stripped library; installed into a fresh venv where there is no cargo, it classifies and paces."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import List, NamedTuple, Tuple

import pytest

from conftest import REPO, crate_version, run


class Dist(NamedTuple):
    sdist: Path
    wheel: Path
    log: str


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    # scripts/test.sh builds them beside its other builds (same script, output in DIR and DIR.log); alone, build here.
    prebuilt = os.environ.get("XEROGUARD_PREBUILT_DIST")
    if prebuilt:
        out = Path(prebuilt)
        log = Path(prebuilt + ".log").read_text()
    else:
        out = tmp_path_factory.mktemp("dist")
        proc = run(["bash", REPO / "scripts" / "build-python-dist.sh", out], cwd=REPO, timeout=2400)
        log = proc.stdout + proc.stderr
    version = crate_version()
    wheels = list(out.glob("xeroguard-%s-*.whl" % version))
    assert len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return Dist(out / ("xeroguard-%s.tar.gz" % version), wheels[0], log)


def test_the_sdist_carries_the_crate_and_the_wheel_is_built_from_it_outside_the_repository(dist: Dist) -> None:
    top = "xeroguard-%s/" % crate_version()
    with tarfile.open(dist.sdist) as sdist:
        names = {name[len(top):] for name in sdist.getnames() if name.startswith(top)}
    for needed in ["setup.py", "pyproject.toml", "LICENSE", "src/xeroguard/_native.py", "rust/Cargo.toml",
                   "rust/Cargo.lock", "rust/build.rs", "rust/cbindgen.toml", "rust/src/lib.rs", "rust/src/ffi/mod.rs",
                   "rust/include/xeroguard.h", "rust/LICENSE"]:
        assert needed in names, "the sdist lacks %s" % needed
    assert not [n for n in names if n.startswith(("tests/", "rust/tests/", "rust/benches/", "rust/target/"))]
    built_from = re.search(r"built from the unpacked sdist in (\S+)", dist.log)
    assert built_from, dist.log[-3000:]
    assert not Path(built_from.group(1)).resolve().is_relative_to(REPO)
    # setuptools-rust's cargo command names the crate it built: the sdist's copy.
    assert re.search(r"cargo-zigbuild rustc --lib .*--manifest-path rust/Cargo\.toml", dist.log), dist.log[-3000:]


def test_the_wheel_is_manylinux2014_and_auditwheel_agrees(dist: Dist) -> None:
    assert dist.wheel.name == "xeroguard-%s-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl" % (
        crate_version())
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    shown = " ".join(run(["auditwheel", "show", dist.wheel], env=env).stdout.split())
    assert 'is consistent with the following platform tag: "manylinux_2_17_x86_64"' in shown, shown
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read("xeroguard-%s.dist-info/WHEEL" % crate_version()).decode()
    assert "Tag: py3-none-manylinux_2_17_x86_64" in metadata and "Root-Is-Purelib: false" in metadata, metadata
    assert "xeroguard-%s.dist-info/licenses/LICENSE" % crate_version() in names


def glibc_versions(library: Path) -> List[Tuple[int, ...]]:
    symbols = run(["objdump", "-T", library]).stdout
    return sorted({tuple(int(part) for part in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", symbols)})


def test_the_wheel_holds_a_stripped_library_for_glibc_2_17(dist: Dist, tmp_path: Path) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        libraries = [name for name in wheel.namelist() if name.endswith(".so")]
        assert libraries == ["xeroguard/libxeroguard.so"], libraries
        library = Path(wheel.extract(libraries[0], tmp_path))
    sections = run(["readelf", "-S", "-W", library]).stdout
    assert ".debug_info" not in sections and ".symtab" not in sections, sections
    # Stripped, 2.8 MB: the Redis client with TLS and Cluster is most of it. Debug info would be several times that.
    assert library.stat().st_size < 4_000_000, library.stat().st_size
    assert max(glibc_versions(library)) <= (2, 17), glibc_versions(library)
    assert dist.wheel.stat().st_size < 2_000_000, dist.wheel.stat().st_size  # 1.4 MB compressed


USE_IT = r"""
import shutil, sys
assert shutil.which("cargo") is None, shutil.which("cargo")
import xeroguard
assert xeroguard.library_path.startswith(sys.prefix), xeroguard.library_path
assert xeroguard.__version__ == xeroguard.library_version == sys.argv[1], (xeroguard.__version__, sys.argv[1])

c = xeroguard.classify(429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "37"}, b"")
assert (c.category, c.action, c.recommended_wait_ms) == ("rate_limited", "retry", 37000), c

tenant = "4f8a2a1e-0000-4000-8000-000000000001"
with xeroguard.Limiter(clock="manual") as limiter:
    for _ in range(60):  # at one instant: each call sent and answered before the next (5 may be in flight)
        granted = limiter.acquire(tenant)
        assert granted.granted, granted
        limiter.release(granted.permit)
    refused = limiter.acquire(tenant)
    assert (refused.granted, refused.reason, refused.wait_ms) == (False, "minute", 60500), refused
    limiter.set_now(60500)
    assert limiter.acquire(tenant).granted
    limiter.observe(tenant, b"HTTP/1.1 429 Too Many\r\nRetry-After: 17\r\nX-Rate-Limit-Problem: minute\r\n\r\n")
    blocked = limiter.acquire(tenant)
    assert (blocked.granted, blocked.reason, blocked.wait_ms) == (False, "retry_after", 17000), blocked
print("classified and paced with", xeroguard.library_path)
"""


def test_the_wheel_works_in_a_fresh_venv_without_cargo(dist: Dist, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--disable-pip-version-check", dist.wheel])
    # No directory that holds cargo, and a home without ~/.cargo.
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "cargo").exists()]
    env = dict(os.environ, PATH=os.pathsep.join([str(venv / "bin"), *path]), HOME=str(tmp_path))
    env.pop("XEROGUARD_LIBRARY", None)
    script = tmp_path / "use_it.py"
    script.write_text(USE_IT)
    out = run([venv / "bin" / "python", script, crate_version()], cwd=tmp_path, env=env).stdout
    assert "classified and paced with %s" % venv in out, out
    assert shutil.which("cargo", path=env["PATH"]) is None
