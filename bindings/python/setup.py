"""Build hook: setuptools-rust builds the crate's cdylib with no Python binding (the package loads it with ctypes)
and places it in the package as xeroguard/libxeroguard.so. Metadata is in pyproject.toml; the version is the
crate's (Cargo.toml is the one place it is written).

Where the crate is: `rust/` in an unpacked sdist (the sdist command below puts the crate there, as `cargo package`
publishes it), otherwise the repository two directories up.

Build knobs are setuptools-rust's: CARGO (e.g. cargo-zigbuild), CARGO_BUILD_TARGET (e.g.
x86_64-unknown-linux-gnu.2.17 with cargo-zigbuild, for an older glibc floor), CARGO_TARGET_DIR,
SETUPTOOLS_RUST_CARGO_PROFILE. scripts/build-python-dist.sh uses them to make the published wheel.

XEROGUARD_PREBUILT_LIBRARY=PATH puts that already built library in the package instead of running cargo: the test
command builds the library once (`cargo build --release`) and every venv it makes installs that one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import List, Tuple

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension

HERE = Path(__file__).resolve().parent
SDIST_CRATE_DIR = "rust"
# The library as the package's loader (src/xeroguard/_native.py) looks for it, next to the modules.
LIBRARY_MODULE = "xeroguard.libxeroguard"
LIBRARY_NAME = LIBRARY_MODULE.rsplit(".", 1)[1]
LIBRARY_FILE = {"win32": "xeroguard.dll", "darwin": "libxeroguard.dylib"}.get(sys.platform, "libxeroguard.so")


def crate_manifest() -> Path:
    for manifest in (HERE / SDIST_CRATE_DIR / "Cargo.toml", HERE.parent.parent / "Cargo.toml"):
        if manifest.is_file():
            return manifest
    raise SystemExit(
        "xeroguard: no Rust crate found: an sdist has it in %s/, the repository two directories up"
        % (HERE / SDIST_CRATE_DIR)
    )


def crate_version(manifest: Path) -> str:
    # The [package] table's version; no TOML parser before Python 3.11, and this line's form is fixed by cargo.
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[|\Z)", manifest.read_text(), re.M | re.S)
    version = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    if not version:
        raise SystemExit("xeroguard: no [package] version in %s" % manifest)
    return version.group(1)


def packaged_crate(manifest: Path, dest: Path) -> None:
    """Unpacks the crate as `cargo package` makes it (Cargo.toml's `include` decides the files) into dest."""
    if manifest.parent == HERE / SDIST_CRATE_DIR:  # an sdist made from an sdist: it is already packaged
        shutil.copytree(manifest.parent, dest, ignore=shutil.ignore_patterns("target"))
        return
    cargo = os.environ.get("CARGO", "cargo")
    with tempfile.TemporaryDirectory() as target_dir:
        subprocess.run(
            [cargo, "package", "--quiet", "--no-verify", "--allow-dirty", "--manifest-path", str(manifest),
             "--target-dir", target_dir],
            check=True,
        )
        (crate_file,) = Path(target_dir, "package").glob("*.crate")
        with tarfile.open(crate_file) as archive:
            for member in archive.getmembers():
                top, _, inner = member.name.partition("/")  # xeroguard-<version>/...
                if inner and member.isfile():
                    target = dest / inner
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = archive.extractfile(member)
                    assert source is not None
                    target.write_bytes(source.read())


class SdistWithCrate(sdist):
    def make_release_tree(self, base_dir: str, files: List[str]) -> None:
        super().make_release_tree(base_dir, files)
        packaged_crate(crate_manifest(), Path(base_dir) / SDIST_CRATE_DIR)


class BuildExtLibraryName(build_ext):
    def get_ext_filename(self, fullname: str) -> str:
        # setuptools-rust asks where a module goes (by its full or last name); the library keeps its plain name,
        # the one the loader looks for, instead of an extension module's .cpython-3XX-....so.
        *package, name = fullname.split(".")
        if name == LIBRARY_NAME:
            return os.path.join(*package, LIBRARY_FILE)
        return str(super().get_ext_filename(fullname))  # type: ignore[no-untyped-call]  # untyped in the stubs


class BuildPyWithPrebuiltLibrary(build_py):
    """With XEROGUARD_PREBUILT_LIBRARY, copies that library into the package where setuptools-rust would put it."""

    def run(self) -> None:
        super().run()
        prebuilt = os.environ.get(PREBUILT_LIBRARY_VARIABLE)
        if prebuilt:
            target = Path(self.build_lib, *LIBRARY_MODULE.split(".")[:-1], LIBRARY_FILE)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(prebuilt, target)


class PlatformWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False  # it carries a native library, whether built here or prebuilt

    def get_tag(self) -> Tuple[str, str, str]:
        # Loaded with ctypes, not as an extension module: any Python 3 on this platform can use it.
        _, _, plat = super().get_tag()
        return "py3", "none", plat


PREBUILT_LIBRARY_VARIABLE = "XEROGUARD_PREBUILT_LIBRARY"
MANIFEST = crate_manifest()
prebuilt_library = os.environ.get(PREBUILT_LIBRARY_VARIABLE)
if prebuilt_library and not Path(prebuilt_library).is_file():
    raise SystemExit("xeroguard: %s=%s is not a file" % (PREBUILT_LIBRARY_VARIABLE, prebuilt_library))
setup(
    version=crate_version(MANIFEST),
    rust_extensions=[] if prebuilt_library else [
        RustExtension(
            LIBRARY_MODULE,
            path=str(MANIFEST),
            binding=Binding.NoBinding,
            cargo_manifest_args=["--locked"],  # the Cargo.lock it ships with, in the repository and the sdist
        )
    ],
    cmdclass={"sdist": SdistWithCrate, "build_ext": BuildExtLibraryName, "build_py": BuildPyWithPrebuiltLibrary,
              "bdist_wheel": PlatformWheel},
    zip_safe=False,
)
