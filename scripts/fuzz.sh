#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 10: the smoke run in the test command). Seeds come from
# ../shared/fixtures; crashes land in fuzz/artifacts/<target>/ and fail the run.
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

for target in classify_raw classify_structured limiter_ops; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  [ "$target" = limiter_ops ] || cp "$seeds"/* "$corpus"/
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
