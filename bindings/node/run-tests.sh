#!/usr/bin/env bash
# The Node binding's test command: builds the npm package as it ships (scripts/build-node-package.sh: the release
# library stripped into prebuilds/, the TypeScript compiled with tsc --strict, npm pack), then runs every suite of
# test/ with node --test against that build and its bundled library (the tarball itself is installed by
# test/package.test.mjs into an empty project). Fails, naming what is missing, when node or npm is absent.
# Environment: XEROGUARD_PREBUILT_LIBRARY (a built library to package), CARGO_TARGET_DIR, XEROGUARD_SHARED,
# XEROGUARD_VENV (the Python suite's venv, for the Redis test shared with Python), XEROGUARD_NODE_TARBALL (a package
# built already by scripts/build-node-package.sh from this checkout: not built again). Arguments go to node --test.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
die() { echo "bindings/node/run-tests.sh: $*" >&2; exit 2; }

command -v node >/dev/null || die "node is required: install Node.js 18+ (Debian: apt-get install -y nodejs npm)"
command -v npm >/dev/null || die "npm is required (Debian: apt-get install -y npm)"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 18 ] || die "Node.js 18 or later is required, found $(node --version)"

version="$(node -p "require('$HERE/package.json').version")"
# The test command builds the package once (its tarball in XEROGUARD_NODE_TARBALL) for this suite and the docs test.
if [ -z "${XEROGUARD_NODE_TARBALL:-}" ] || [ ! -f "$XEROGUARD_NODE_TARBALL" ]; then
  OUT="${CARGO_TARGET_DIR:-$ROOT/target}/node-dist"
  rm -rf "$OUT"
  bash "$ROOT/scripts/build-node-package.sh" "$OUT" || die "scripts/build-node-package.sh failed"
  export XEROGUARD_NODE_TARBALL="$OUT/xeroguard-$version.tgz"
fi

# The suites load the package's bundled library, as an installed package does, not an override.
unset XEROGUARD_LIBRARY
cd "$HERE"
# One file at a time: several start servers and check that the event loop keeps turning.
exec node --test --test-concurrency=1 "${@:-test/}"
