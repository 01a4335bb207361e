"""Build hook: compile the Rust crate (two directories up) with cargo and bundle its shared library.

Metadata lives in pyproject.toml; this file only adds the native build to build_py and marks the wheel as
platform-specific.

Environment:
  XEROGUARD_CRATE_DIR         the crate to build (default: ../.. from this file)
  XEROGUARD_PREBUILT_LIBRARY  bundle this already-built library instead of running cargo
  CARGO                       the cargo executable (default: cargo on PATH, then ~/.cargo/bin/cargo)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent


def _library_suffix() -> str:
    return {"win32": ".dll", "darwin": ".dylib"}.get(sys.platform, ".so")


def _cargo() -> str:
    for candidate in (os.environ.get("CARGO"), shutil.which("cargo"), str(Path.home() / ".cargo/bin/cargo")):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("xeroguard: cargo not found (looked at $CARGO, PATH, ~/.cargo/bin); install Rust to build")


def build_native_library() -> Path:
    prebuilt = os.environ.get("XEROGUARD_PREBUILT_LIBRARY")
    if prebuilt:
        path = Path(prebuilt)
        if not path.is_file():
            raise SystemExit("xeroguard: XEROGUARD_PREBUILT_LIBRARY=%s is not a file" % path)
        return path
    crate = Path(os.environ.get("XEROGUARD_CRATE_DIR") or HERE.parent.parent).resolve()
    manifest = crate / "Cargo.toml"
    if not manifest.is_file():
        raise SystemExit(
            "xeroguard: no Rust crate at %s (building from outside the repository?); set XEROGUARD_CRATE_DIR "
            "or XEROGUARD_PREBUILT_LIBRARY" % crate
        )
    cmd = [_cargo(), "build", "--release", "--lib", "--message-format=json-render-diagnostics",
           "--manifest-path", str(manifest)]
    print("xeroguard: running " + " ".join(cmd), file=sys.stderr)
    # Diagnostics go to stderr as usual; stdout carries the JSON messages naming the built files.
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit("xeroguard: cargo build failed (exit %d)" % proc.returncode)
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and "cdylib" in msg.get("target", {}).get("kind", []):
            for name in msg.get("filenames", []):
                if name.endswith(_library_suffix()):
                    return Path(name)
    raise SystemExit("xeroguard: cargo built no cdylib ending in %s" % _library_suffix())


class BuildPyWithNative(build_py):
    def run(self) -> None:
        super().run()
        lib = build_native_library()
        dest = Path(self.build_lib) / "xeroguard" / ("xeroguard.dll" if sys.platform == "win32" else
                                                     "libxeroguard" + _library_suffix())
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, dest)
        print("xeroguard: bundled %s as %s" % (lib, dest), file=sys.stderr)


class NativeDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True  # the bundled library makes the wheel platform-specific


class PlatformWheel(bdist_wheel):
    def get_tag(self):  # type: ignore[no-untyped-def]
        # Loaded with ctypes, not as an extension module: any Python 3 on this platform can use it.
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(distclass=NativeDistribution, cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel})
