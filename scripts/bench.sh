#!/usr/bin/env bash
# Runs every benchmark and rewrites BENCHMARKS.md (figures, machine, date) and benchmarks-efficiency.png:
#   criterion (classify, acquire+release vs governor, memory), window exactness (Rust and Python peers),
#   Python ops/s vs `limits` and PyrateLimiter, Node classify beside JSON.parse and acquire+release ops/s, the shared
#   (Redis) limiter beside theirs on one redis-server (latency, Redis CPU, memory per tenant), pacing efficiency
#   against the local Xero-like server (with 2 and 4 processes sharing one Redis).
# Takes about 15 minutes on 2 cores; run it on a quiet machine.
#   scripts/bench.sh           full run, rewrites BENCHMARKS.md, the chart and bench/results/*.json
#   scripts/bench.sh --quick   smoke run of every step; writes into target/bench-smoke/ and leaves the committed
#                              figures alone
set -euo pipefail
cd "$(dirname "$0")/.."
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"

if [ -n "$quick" ]; then
  out="target/bench-smoke"
  rm -rf "$out" && mkdir -p "$out"
  criterion_args=(--quick --warm-up-time 0.2 --measurement-time 0.5)
else
  out="bench/results"
  mkdir -p "$out"
  criterion_args=()
fi
out="$(cd "$out" && pwd)"
export XEROGUARD_BENCH_OUT="$out"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== Rust: classify, acquire+release, memory (criterion)"
rm -rf target/criterion/classify target/criterion/acquire_release
cargo bench --bench classify --bench pacing -- "${criterion_args[@]}" 2>&1 | grep -vE "^(Benchmarking|Found|  [0-9]+ \(|Gnuplot)" || { echo "bench.sh: cargo bench failed" >&2; exit 1; }
echo "== Rust: window exactness"
if [ -n "$quick" ]; then cargo bench --bench exactness -- --smoke; else cargo bench --bench exactness; fi

echo "== Python peers (bench/.venv)"
py=$(bash bench/setup-venv.sh | tail -1)
"$py" bench/exactness.py $quick --out "$out"
"$py" bench/python_ops.py $quick --out "$out"
echo "== Node binding: classify beside JSON.parse, acquire+release (the npm package as it ships)"
bash scripts/build-node-package.sh target/node-dist >/dev/null
node --expose-gc bench/node_ops.mjs $quick --out "$out"
echo "== shared limiters on one Redis: latency, Redis CPU, memory per tenant (xeroguard from C and Python, limits, PyrateLimiter)"
"$py" bench/redis_ops.py $quick --out "$out"
echo "== pacing efficiency against the local Xero-like server"
if [ -n "$quick" ]; then chart="$out/benchmarks-efficiency.png"; else chart="benchmarks-efficiency.png"; fi
"$py" bench/efficiency.py $quick --out "$out" --chart "$chart"

echo "== render"
"$py" bench/render.py --results "$out" --load-before "$load_before" $quick
