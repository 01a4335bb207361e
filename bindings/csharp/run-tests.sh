#!/usr/bin/env bash
# Builds the native library and the C# binding with Mono, then runs the C# tests (against the local
# Xero-like server and a redis-server of their own) and the C# example. Exit code: non-zero when anything fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/build"
export XEROGUARD_SHARED="${XEROGUARD_SHARED:-$ROOT/../shared}"

# Debian packages: the compiler, the runtime, and the two class libraries the binding uses.
PACKAGES="mono-mcs mono-runtime libmono-system-net-http4.0-cil libmono-system-runtime-serialization4.0-cil"
have_mono() {
    command -v mcs >/dev/null && command -v mono >/dev/null &&
        [ -n "$(find /usr/lib/mono -name System.Net.Http.dll -print -quit 2>/dev/null)" ] &&
        [ -n "$(find /usr/lib/mono -name System.Runtime.Serialization.dll -print -quit 2>/dev/null)" ]
}
if ! have_mono; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "run-tests.sh: installing Mono ($PACKAGES)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null
    fi
    have_mono || { echo "run-tests.sh: Mono is missing; install the Debian packages: $PACKAGES" >&2; exit 2; }
fi
command -v python3 >/dev/null || { echo "run-tests.sh: python3 is needed for the test server" >&2; exit 2; }
REDIS_SERVER="$(command -v redis-server || true)"
[ -n "$REDIS_SERVER" ] ||
    { echo "run-tests.sh: redis-server is missing (the shared-limiter tests need it); install the Debian package redis-server" >&2; exit 2; }
[ -f "$XEROGUARD_SHARED/conformance/classify-cases.json" ] ||
    { echo "run-tests.sh: conformance cases not found under $XEROGUARD_SHARED (set XEROGUARD_SHARED)" >&2; exit 2; }

echo "== cargo build --release"
(cd "$ROOT" && cargo build --release --quiet)

echo "== compile (mcs)"
rm -rf "$BUILD" && mkdir -p "$BUILD"
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/libxeroguard.so" "$BUILD/"
REFS="-r:System.dll -r:System.Core.dll -r:System.Xml.dll -r:System.Net.Http.dll -r:System.Runtime.Serialization.dll"
# -doc with warning level 4 reports every public member without XML docs (CS1591); -warnaserror+ fails on it.
mcs -nologo -warn:4 -warnaserror+ -target:library -doc:"$BUILD/XeroGuard.xml" -out:"$BUILD/XeroGuard.dll" $REFS "$HERE"/src/*.cs
# LimiterMetrics is .NET 6 code (System.Diagnostics.Metrics), which Mono lacks: compiled on its own, as the net6.0 build
# compiles it, against stand-ins of the Meter API that let the tests collect what it publishes.
mcs -nologo -warn:4 -warnaserror+ -define:NET6_0_OR_GREATER -target:library -doc:"$BUILD/XeroGuard.Metrics.xml" \
    -out:"$BUILD/XeroGuard.Metrics.dll" $REFS -r:"$BUILD/XeroGuard.dll" "$HERE/src/Metrics.cs" "$HERE/tests/metrics/MeterStandIns.cs"
mcs -nologo -warnaserror+ -target:exe -out:"$BUILD/XeroGuard.Tests.exe" $REFS -r:"$BUILD/XeroGuard.dll" \
    -r:"$BUILD/XeroGuard.Metrics.dll" "$HERE"/tests/*.cs
mcs -nologo -warnaserror+ -target:exe -out:"$BUILD/XeroGuard.Example.exe" $REFS -r:"$BUILD/XeroGuard.dll" "$ROOT"/examples/csharp/*.cs
# The C compiler's view of every struct, which the tests compare with the C# mirrors.
cc -std=c99 -Wall -Wextra -Werror -I"$ROOT/include" "$HERE/tests/layout_probe.c" -o "$BUILD/layout_probe"
"$BUILD/layout_probe" > "$BUILD/layout.txt"

# Everything started below is stopped by pid on exit: the servers, and any redis-server the tests started themselves
# (each leaves its pid in REDIS_DIR while it runs).
SERVER_PID=""
REDIS_PID=""
REDIS_DIR=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$REDIS_DIR" ]; then
        for pidfile in "$REDIS_DIR"/own-*.pid; do
            [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
        done
    fi
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    if [ -n "$REDIS_DIR" ]; then rm -rf "$REDIS_DIR"; fi
}
trap cleanup EXIT

echo "== start the Xero-like server"
# Its stdin is this script's pipe: if the script dies, the server sees EOF and stops.
coproc SERVER { exec python3 "$ROOT/tests/server/xero_like_server.py" --port 0 --minute-ms 1000 --minute-limit 60 \
    --day-limit 5000 --concurrency 5 --app-minute-limit 10000 --latency-ms 5; }
SERVER_PID=$SERVER_PID
read -r -t 30 READY PORT <&"${SERVER[0]}" || true
[ "${READY:-}" = READY ] || { echo "run-tests.sh: the test server did not start" >&2; exit 1; }
export XG_SERVER_URL="http://127.0.0.1:$PORT"
export XG_LAYOUT_FILE="$BUILD/layout.txt"

echo "== start redis-server (unix socket only, no persistence)"
REDIS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/xeroguard-cs-redis.XXXXXX")"
"$REDIS_SERVER" --port 0 --unixsocket "$REDIS_DIR/redis.sock" --save '' --appendonly no --dir "$REDIS_DIR" \
    >"$REDIS_DIR/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do
    [ -S "$REDIS_DIR/redis.sock" ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
done
[ -S "$REDIS_DIR/redis.sock" ] ||
    { echo "run-tests.sh: redis-server did not start:" >&2; cat "$REDIS_DIR/redis.log" >&2; exit 1; }
export XG_REDIS_URL="redis+unix://$REDIS_DIR/redis.sock"
export XG_REDIS_SERVER="$REDIS_SERVER"
export XG_REDIS_DIR="$REDIS_DIR"

cd "$BUILD"
status=0
echo "== tests"
timeout 300 mono --debug XeroGuard.Tests.exe "$@" || status=$?
echo "== example"
timeout 60 mono --debug XeroGuard.Example.exe || status=$?
exit $status
