#!/usr/bin/env bash
# The packaging tests (tests/packaging/, pytest): the Python sdist and manylinux wheel made by
# scripts/build-python-dist.sh and installed where there is no cargo; `make install` used through pkg-config; one
# version and one licence; every code block of README.md and the bindings' READMEs. The tools (PyPI, pinned in
# tests/packaging/requirements.txt), the binding's test dependencies (the README examples use httpx and
# xero-python) and the package itself go into target/packaging-venv. Arguments go to pytest (e.g. -k docs).
# Needs cargo, cc, g++, make, binutils, pkg-config, Mono and python3 with venv; installs pkg-config and Mono with
# apt when it can, and otherwise names what is missing. `--prepare` installs and stops; then
# XEROGUARD_PACKAGING_PREPARED=1 runs the tests without installing again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${XEROGUARD_PACKAGING_VENV:-$PWD/target/packaging-venv}"
export XEROGUARD_PACKAGING_VENV="$VENV"
MONO_PACKAGES="mono-mcs mono-runtime libmono-system-net-http4.0-cil libmono-system-runtime-serialization4.0-cil"

die() { echo "test-packaging.sh: $*" >&2; exit 1; }
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test-packaging.sh: installing $*"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null) ||
            die "apt-get install $* failed"
    else
        die "missing: apt-get install $*"
    fi
}

for tool in cargo cc g++ make python3; do command -v "$tool" >/dev/null || die "$tool is required"; done
command -v objdump >/dev/null && command -v readelf >/dev/null || apt_install binutils
command -v pkg-config >/dev/null || apt_install pkg-config
command -v mcs >/dev/null && command -v mono >/dev/null || apt_install $MONO_PACKAGES

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
if [ "${XEROGUARD_PACKAGING_PREPARED:-}" != 1 ]; then
    "${PIP[@]}" install -q -r tests/packaging/requirements.txt -r bindings/python/requirements-test.txt ||
        die "could not install tests/packaging/requirements.txt and bindings/python/requirements-test.txt"
    # The package from this checkout, for the README's Python examples and the version checks.
    "${PIP[@]}" install -q --force-reinstall --no-deps ./bindings/python || die "pip install ./bindings/python failed"
fi

# --prepare: only the above (the test command installs before it runs these tests beside the bindings' suites, so
# that no two pip builds of bindings/python run at once).
[ "${1:-}" = --prepare ] && exit 0

unset XEROGUARD_LIBRARY
# Its own scratch directory: /tmp/pytest-of-$USER is shared with every other pytest run on the machine.
exec "$VENV/bin/python" -m pytest -p no:cacheprovider --basetemp "$PWD/target/packaging-tmp" tests/packaging "$@"
