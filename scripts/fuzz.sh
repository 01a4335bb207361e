#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 10: the smoke run in the test command). Seeds come from
# ../shared/fixtures; crashes land in fuzz/artifacts/<target>/ and fail the run. The Redis backend's target gets a
# redis-server of its own (a unix socket in a temp dir, never port 6379), stopped by pid when this script ends.
# Longer run: scripts/fuzz.sh 600. `scripts/fuzz.sh --build-only` builds the targets and stops (the test command
# builds them beside its other builds, then runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
# The fuzz crate is a workspace of its own with its own flags (sanitizers): its own target directory.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
shared="${XEROGUARD_SHARED:-../shared}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked --quiet || { echo "fuzz.sh: 'cargo install cargo-fuzz' failed" >&2; exit 1; }
fi
# cargo-fuzz needs unstable compiler flags (sanitizers); the stable toolchain allows them with this switch.
export RUSTC_BOOTSTRAP=1
# XEROGUARD_FUZZ_OPT_LEVEL (the test command sets 1 for its build and smoke run alike, or the run would rebuild): the
# targets' optimisation level. At 1 the build took 24 % less CPU (175 s against 230 s) and classify_raw ran 11 % fewer
# inputs a second (3,587 against 4,014); long runs keep cargo-fuzz's default (3).
if [ -n "${XEROGUARD_FUZZ_OPT_LEVEL:-}" ]; then export CARGO_PROFILE_RELEASE_OPT_LEVEL="$XEROGUARD_FUZZ_OPT_LEVEL"; fi

seeds="fuzz/corpus/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
for f in "$shared"/fixtures/xero/*; do
  name=$(basename "$f")
  case "$name" in
    SOURCES.md) ;;
    *_headers.txt|429_*) cp "$f" "$seeds/$name" ;;
    [0-9][0-9][0-9]_*) { printf 'HTTP/1.1 %s Xero\r\nContent-Type: text/html\r\n\r\n' "${name:0:3}"; cat "$f"; } > "$seeds/$name" ;;
    *) { printf 'HTTP/1.1 400 Bad Request\r\n\r\n'; cat "$f"; } > "$seeds/$name" ;;
  esac
done

echo "== build the fuzz targets (AddressSanitizer)"
cargo fuzz build --fuzz-dir fuzz 2>&1 | grep -E "^(error|warning)" -A6 || true
cargo fuzz build --fuzz-dir fuzz >/dev/null 2>&1 || { echo "fuzz.sh: building the fuzz targets failed" >&2; exit 1; }
[ "$seconds" = --build-only ] && exit 0

command -v redis-server >/dev/null 2>&1 || { echo "fuzz.sh: redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
redis_dir=$(mktemp -d)
redis-server --port 0 --unixsocket "$redis_dir/redis.sock" --save '' --appendonly no --dir "$redis_dir" \
  --logfile "$redis_dir/redis.log" &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; rm -rf "$redis_dir"' EXIT
for _ in $(seq 200); do [ -S "$redis_dir/redis.sock" ] && break; sleep 0.05; done
[ -S "$redis_dir/redis.sock" ] || { echo "fuzz.sh: redis-server did not start (see $redis_dir/redis.log)" >&2; exit 1; }
export XEROGUARD_FUZZ_REDIS="redis+unix://$redis_dir/redis.sock"

for target in classify_raw classify_structured limiter_ops limiter_ops_redis; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  case "$target" in limiter_ops*) ;; *) cp "$seeds"/* "$corpus"/ ;; esac
  echo "== fuzz $target for ${seconds}s"
  log="fuzz/$target.log"
  if ! cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    grep -E "panicked|ERROR|SUMMARY" "$log" | head -20 >&2
    echo "fuzz.sh: $target failed; input in fuzz/artifacts/$target/, log in $log" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$log" || { echo "fuzz.sh: $target ran no inputs (see $log)" >&2; exit 1; }
done
echo "== fuzzing found nothing"
