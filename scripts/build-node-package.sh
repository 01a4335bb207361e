#!/usr/bin/env bash
# Builds the npm package of bindings/node: the release library (cargo build --release, or the one already in
# target/release), stripped into bindings/node/prebuilds/linux-x64/, the TypeScript compiled (dist/cjs, dist/esm),
# then `npm pack` into OUTDIR (default target/node-dist). Prints the tarball's path and size.
#   scripts/build-node-package.sh [OUTDIR]
# Environment: XEROGUARD_PREBUILT_LIBRARY (use that library instead of building), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${1:-$ROOT/target/node-dist}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
die() { echo "build-node-package.sh: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is required (Node.js 18 or later)"
command -v npm >/dev/null || die "npm is required"

LIB="${XEROGUARD_PREBUILT_LIBRARY:-}"
if [ -z "$LIB" ]; then
  command -v cargo >/dev/null || die "cargo is required to build the library (or set XEROGUARD_PREBUILT_LIBRARY)"
  cargo build --release --quiet
  LIB="${CARGO_TARGET_DIR:-$ROOT/target}/release/libxeroguard.so"
fi
[ -f "$LIB" ] || die "$LIB does not exist"

PKG="$ROOT/bindings/node"
mkdir -p "$PKG/prebuilds/linux-x64"
# The shipped copy carries no symbol table beyond the dynamic one (the release profile strips already; this makes
# sure for a library built otherwise).
strip --strip-unneeded -o "$PKG/prebuilds/linux-x64/libxeroguard.so" "$LIB"
cp "$ROOT/LICENSE" "$PKG/LICENSE"

cd "$PKG"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
npm run --silent build
TARBALL="$(npm pack --silent --pack-destination "$OUT" | tail -n 1)"
echo "$OUT/$TARBALL ($(du -k "$OUT/$TARBALL" | cut -f1) KiB; $(stat -c %s "$OUT/$TARBALL") bytes)"
