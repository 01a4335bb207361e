#!/usr/bin/env bash
# Runs every test suite: Rust (unit, conformance, properties, CLI, header drift, the forced-panic test), C and C++
# (from the Rust suite, then again under valgrind and under ASan+UBSan), the fuzz smoke run, Python (pytest), C#
# (Mono), Node (node --test), the fleet (C, C#, Python and Node workers on one Redis), and packaging (the sdist and
# manylinux wheel, make install with pkg-config, one version, every README code block). A missing toolchain is
# installed or named; no suite is skipped.
#
# Speed: one target directory; the library every binding loads is built once (`cargo build --release`, the shipped
# form) and installed into each venv as it is (XEROGUARD_PREBUILT_LIBRARY); the test build carries the
# fault-injection hook (Cargo.toml's dev-dependencies), so nothing is rebuilt for the panic test; the C programs are
# compiled once per mode. The builds run in two lanes side by side (debug: lints, the test build and the Python
# release files; release: the library and the fuzz targets). Of the suites, those that check latencies run alone
# (Rust, the fleet); the C programs under valgrind and ASan run beside the fuzz smoke run, and the bindings' suites
# (Python, C#, Node) beside the packaging and docs tests. Each stage's duration is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "test.sh: '$1' is required: $2" >&2; exit 1; }
}
apt_install() {  # apt_install COMMAND PACKAGE...: installs the packages when COMMAND is missing and we may
  local command="$1"; shift
  command -v "$command" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null \
      || { echo "test.sh: could not install $* (apt-get install)" >&2; exit 1; }
  fi
}
need cargo "install Rust (rustup)"
need cc "install gcc (Debian: apt-get install -y gcc)"
need g++ "install g++ (Debian: apt-get install -y g++)"
need python3 "install Python 3.9+ (Debian: apt-get install -y python3 python3-venv)"
need node "install Node.js 18 or later (Debian: apt-get install -y nodejs npm)"
need npm "install npm (Debian: apt-get install -y npm)"
# The Redis tests start their own redis-server instances (never the one on 6379); TLS ones need openssl.
apt_install redis-server redis-server redis-tools openssl
apt_install redis-cli redis-tools
apt_install openssl openssl
need redis-server "install Debian's redis-server (apt-get install -y redis-server)"
need redis-cli "install Debian's redis-tools (apt-get install -y redis-tools)"
need openssl "install Debian's openssl (apt-get install -y openssl)"
# The fleet test runs some workers on a skewed clock; the C programs run once under valgrind memcheck.
apt_install faketime faketime
need faketime "install Debian's faketime (apt-get install -y faketime)"
apt_install valgrind valgrind
need valgrind "install Debian's valgrind (apt-get install -y valgrind)"

[ -d ../shared/conformance ] || [ -n "${XEROGUARD_SHARED:-}" ] || {
  echo "test.sh: ../shared (conformance cases and fixtures) must sit beside the checkout, or set XEROGUARD_SHARED" >&2
  exit 1
}

# One target directory for every build and every suite.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LOGS="$CARGO_TARGET_DIR/test-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"
# Every venv below installs this library instead of building its own (bindings/python/setup.py).
export XEROGUARD_PREBUILT_LIBRARY="$CARGO_TARGET_DIR/release/libxeroguard.so"
# The fuzz targets of the smoke run are built at opt-level 1 (scripts/fuzz.sh says what that costs and saves).
export XEROGUARD_FUZZ_OPT_LEVEL=1
# The Python release files, built in the debug lane; the packaging tests check them (tests/packaging).
export XEROGUARD_PREBUILT_DIST="$CARGO_TARGET_DIR/prebuilt-dist"

TIMES="$LOGS/stages.tsv"
STARTED=$(date +%s)
summary() {
  local status=$?
  echo
  echo "== stage durations (seconds)"
  [ -f "$TIMES" ] && while IFS=$'\t' read -r name seconds result; do
    printf '%6s  %-6s  %s\n' "$seconds" "$result" "$name"
  done < "$TIMES"
  echo "total $(( $(date +%s) - STARTED )) s"
  exit $status
}
trap summary EXIT

# stage NAME COMMAND...: runs and times one step; its output goes to the terminal.
stage() {
  local name="$1"; shift
  local start; start=$(date +%s)
  echo "== $name"
  local status
  # A subshell with errexit of its own: a failing command inside a step (a function) fails the step.
  set +e
  ( set -e; "$@" )
  status=$?
  set -e
  printf '%s\t%s\t%s\n' "$name" "$(( $(date +%s) - start ))" "$([ $status = 0 ] && echo ok || echo FAILED)" >> "$TIMES"
  return $status
}

# lane NAME COMMAND...: a stage in the background, its output in $LOGS/NAME.log (shown if it fails).
declare -A LANES=()
lane() {
  local name="$1"; shift
  local log="$LOGS/${name//[^A-Za-z0-9]/_}.log"
  set -m  # a process group of its own, so that a failure elsewhere can stop all of it
  ( stage "$name" "$@" ) > "$log" 2>&1 &
  set +m
  LANES[$!]="$name"$'\t'"$log"
}
# Waits for every lane; when one fails, stops the others and shows its log.
join_lanes() {
  local pid
  while [ ${#LANES[@]} -gt 0 ]; do
    if wait -n -p pid "${!LANES[@]}"; then
      unset "LANES[$pid]"
      continue
    fi
    local name="${LANES[$pid]%%$'\t'*}" log="${LANES[$pid]#*$'\t'}"
    echo "== lane '$name' failed; its log ($log) ends:" >&2
    tail -n 80 "$log" >&2
    unset "LANES[$pid]"
    for pid in "${!LANES[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    wait 2>/dev/null
    return 1
  done
}

# step NAME COMMAND...: one timed part of a lane (its duration is listed with the stages, indented).
step() {
  local name="$1"; shift
  local start; start=$(date +%s)
  echo "-- $name"
  "$@"
  printf '%s\t%s\t%s\n' "  $name" "$(( $(date +%s) - start ))" ok >> "$TIMES"
}

debug_lane() {
  step "cargo fmt --check" cargo fmt --check
  (cd fuzz && cargo fmt --check)
  step "cargo clippy --all-targets -D warnings" cargo clippy --all-targets -- -D warnings
  step "cargo test --no-run (the test build)" cargo test --all-targets --no-run
  # The debug shared library the C programs link, as tests/c_suite.rs builds it.
  step "cargo build --lib (debug, for C)" cargo build --lib --test c_suite
  rm -rf "$XEROGUARD_PREBUILT_DIST"
  step "Python sdist and manylinux wheel" bash -c 'bash scripts/build-python-dist.sh "$0" > "$0.log" 2>&1 \
    || { tail -n 60 "$0.log"; exit 1; }' "$XEROGUARD_PREBUILT_DIST"
}
release_lane() {
  # The shipped library: the bindings' suites, the fleet and make install use this one.
  step "cargo build --release" cargo build --release
  step "fuzz targets (ASan)" bash scripts/fuzz.sh --build-only
}
memory_lane() {
  step "C suites under valgrind memcheck" env \
    XEROGUARD_C_WRAPPER="valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite" \
    cargo test --test c_suite
  step "C suites under ASan + UBSan" env XEROGUARD_C_SANITIZE=1 cargo test --test c_suite
}

echo "== builds, in two lanes (logs in $LOGS)"
lane "build (debug): fmt, clippy, test build, Python dist" debug_lane
lane "build (release): library, fuzz targets" release_lane
join_lanes

stage "Rust, C and C++ suites (cargo test)" cargo test --all-targets
# Neither checks a latency: side by side.
echo "== the C programs under valgrind and under ASan, beside the fuzz smoke run (logs in $LOGS)"
lane "C suites under valgrind, then ASan + UBSan" memory_lane
lane "fuzz smoke run (10 s per target; longer: scripts/fuzz.sh 600)" bash scripts/fuzz.sh 10
join_lanes
# The npm package built once, as it ships (the release library above stripped in), for the Node suite, the fleet's
# Node workers and the docs test; the packaging venv made before the lanes (one pip build of bindings/python at a
# time). Then the bindings' suites one after another beside the packaging tests (no latency is checked there).
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
export XEROGUARD_NODE_TARBALL="$CARGO_TARGET_DIR/node-dist/xeroguard-$version.tgz"
rm -rf "$CARGO_TARGET_DIR/node-dist"
stage "npm package (scripts/build-node-package.sh)" bash scripts/build-node-package.sh "$CARGO_TARGET_DIR/node-dist"
stage "packaging venv (scripts/test-packaging.sh --prepare)" bash scripts/test-packaging.sh --prepare
bindings_lane() {
  step "Python suite" bash bindings/python/run-tests.sh
  step "C# suite (Mono)" bash bindings/csharp/run-tests.sh
  step "Node suite" bash bindings/node/run-tests.sh
}
echo "== the bindings' suites beside the packaging and docs tests (logs in $LOGS)"
lane "Python, C# and Node suites" bindings_lane
lane "packaging and docs (scripts/test-packaging.sh)" env XEROGUARD_PACKAGING_PREPARED=1 bash scripts/test-packaging.sh
join_lanes
# The bindings venv (made by the Python suite) has xeroguard, httpx and pytest; the C# suite built the binding;
# the npm package stage compiled the Node binding's JavaScript (bindings/node/dist).
stage "fleet: C, C#, Python and Node workers on one Redis, healthy and through faults (tests/fleet)" \
  "${XEROGUARD_VENV:-bindings/python/.venv}/bin/python" -m pytest -p no:cacheprovider -s tests/fleet

echo "== all suites passed"
