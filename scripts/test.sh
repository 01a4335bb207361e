#!/usr/bin/env bash
# Runs every test suite: Rust (unit, conformance, properties, CLI, header drift), C and C++ (from the Rust
# suite), Python (pytest), C# (Mono), the fleet (C, C# and Python workers on one Redis), and packaging (the sdist
# and manylinux wheel, make install with pkg-config, one version, every README code block). A missing toolchain
# is installed or named; no suite is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "test.sh: '$1' is required: $2" >&2; exit 1; }
}
need cargo "install Rust (rustup)"
need cc "install gcc (Debian: apt-get install -y gcc)"
need g++ "install g++ (Debian: apt-get install -y g++)"
need python3 "install Python 3.9+ (Debian: apt-get install -y python3 python3-venv)"
# The Redis tests start their own redis-server instances (never the one on 6379); TLS ones need openssl.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
    || ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq redis-server redis-tools openssl) >/dev/null \
      || { echo "test.sh: could not install redis-server redis-tools openssl (apt-get install)" >&2; exit 1; }
  fi
fi
need redis-server "install Debian's redis-server (apt-get install -y redis-server)"
need redis-cli "install Debian's redis-tools (apt-get install -y redis-tools)"
need openssl "install Debian's openssl (apt-get install -y openssl)"
# The fleet test runs some workers on a skewed clock.
if ! command -v faketime >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq faketime) >/dev/null \
    || { echo "test.sh: could not install faketime (apt-get install faketime)" >&2; exit 1; }
fi
need faketime "install Debian's faketime (apt-get install -y faketime)"

[ -d ../shared/conformance ] || [ -n "${XEROGUARD_SHARED:-}" ] || {
  echo "test.sh: ../shared (conformance cases and fixtures) must sit beside the checkout, or set XEROGUARD_SHARED" >&2
  exit 1
}

echo "== formatting and lints (cargo fmt --check, cargo clippy -D warnings)"
cargo fmt --check
(cd fuzz && cargo fmt --check)
cargo clippy --all-targets -- -D warnings 2>&1

echo "== Rust, C and C++ suites (cargo test)"
cargo test --all-targets 2>&1
cargo test --features fault-injection --test ffi_panic 2>&1

echo "== C suites under valgrind memcheck (errors or definite leaks fail)"
if ! command -v valgrind >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq valgrind) >/dev/null || { echo "test.sh: could not install valgrind (apt-get install valgrind)" >&2; exit 1; }
  else
    echo "test.sh: valgrind is required for the memcheck run: apt-get install valgrind" >&2; exit 1
  fi
fi
XEROGUARD_C_WRAPPER="valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite" \
  cargo test --test c_suite 2>&1

echo "== C suites under AddressSanitizer + UndefinedBehaviorSanitizer (any report fails)"
XEROGUARD_C_SANITIZE=1 cargo test --test c_suite 2>&1

echo "== fuzz smoke run (10 s per target; longer: scripts/fuzz.sh 600)"
bash scripts/fuzz.sh 10

echo "== Python suite"
bash bindings/python/run-tests.sh

echo "== C# suite (Mono)"
bash bindings/csharp/run-tests.sh

echo "== fleet: C, C# and Python workers sharing tenants through one Redis, some on a skewed clock (tests/fleet)"
# The bindings venv (made by the Python suite) has xeroguard, httpx and pytest; the C# suite built the binding.
"${XEROGUARD_VENV:-bindings/python/.venv}/bin/python" -m pytest -p no:cacheprovider -s tests/fleet

echo "== packaging and docs (scripts/test-packaging.sh): sdist, manylinux wheel without cargo, make install, READMEs"
bash scripts/test-packaging.sh

echo "== all suites passed"
