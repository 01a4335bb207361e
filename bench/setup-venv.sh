#!/usr/bin/env bash
# Creates bench/.venv with the peers (limits, pyrate-limiter), matplotlib and xeroguard's Python package built
# from this checkout. Prints the venv's python path on the last line. Fails loudly if anything is missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${XEROGUARD_BENCH_VENV:-$HERE/.venv}"
PYTHON="${PYTHON:-python3}"
die() { echo "bench/setup-venv.sh: $*" >&2; exit 2; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed (Debian: apt-get install python3-venv)"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input -q)
"${PIP[@]}" install -r "$HERE/requirements.txt" || die "could not install $HERE/requirements.txt"
"${PIP[@]}" install --force-reinstall --no-deps "$HERE/../bindings/python" || die "pip install of bindings/python failed"
echo "$VENV/bin/python"
