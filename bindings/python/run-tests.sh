#!/usr/bin/env bash
# The Python binding's test command: builds and installs the package (setuptools-rust runs cargo inside pip) into a
# venv with the pinned test dependencies, runs mypy --strict over the package, then pytest. Exit status is pytest's
# (2 when a step before it fails).
# Environment: PYTHON (default python3), XEROGUARD_VENV (default bindings/python/.venv), XEROGUARD_SHARED.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${XEROGUARD_VENV:-$HERE/.venv}"

die() { echo "bindings/python/run-tests.sh: $*" >&2; exit 2; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python 3.8+ interpreter)"
command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] || die "cargo not found: the package build compiles the Rust library"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv $VENV' failed (on Debian: apt-get install python3-venv)"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check --no-input)

"${PIP[@]}" install -q -r "$HERE/requirements-test.txt" || die "could not install the test dependencies in $HERE/requirements-test.txt"
# Reinstalled every run so the tests always load a library built from the current sources.
"${PIP[@]}" install -q --force-reinstall --no-deps "$HERE" || die "pip install of $HERE (setuptools-rust builds the crate's cdylib with cargo) failed"

missing=$("$PY" - <<'PY'
import importlib.util
mods = ["pytest", "mypy", "requests", "httpx", "xero_python", "prometheus_client", "xeroguard"]
print(" ".join(m for m in mods if importlib.util.find_spec(m) is None))
PY
)
[ -z "$missing" ] || die "missing after install: $missing"

# The package's own types first: mypy --strict over the sources (its cache stays in the venv).
"$PY" -m mypy --strict --cache-dir "$VENV/.mypy_cache" "$HERE/src/xeroguard" \
    || die "mypy --strict found type errors in $HERE/src/xeroguard (listed above)"

# The tests exercise the installed package with its bundled library, not an override.
unset XEROGUARD_LIBRARY
cd "$HERE"
exec "$PY" -m pytest -p no:cacheprovider "$@"
