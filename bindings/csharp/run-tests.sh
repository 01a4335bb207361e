#!/usr/bin/env bash
# Builds the native library and the C# binding with Mono, then runs the C# tests (against the local
# Xero-like server) and the C# example. Exit code: non-zero when anything fails.
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
[ -f "$XEROGUARD_SHARED/conformance/classify-cases.json" ] ||
    { echo "run-tests.sh: conformance cases not found under $XEROGUARD_SHARED (set XEROGUARD_SHARED)" >&2; exit 2; }

echo "== cargo build --release"
(cd "$ROOT" && cargo build --release --quiet)

echo "== compile (mcs)"
rm -rf "$BUILD" && mkdir -p "$BUILD"
cp "$ROOT/target/release/libxeroguard.so" "$BUILD/"
REFS="-r:System.dll -r:System.Core.dll -r:System.Xml.dll -r:System.Net.Http.dll -r:System.Runtime.Serialization.dll"
# -doc with warning level 4 reports every public member without XML docs (CS1591); -warnaserror+ fails on it.
mcs -nologo -warn:4 -warnaserror+ -target:library -doc:"$BUILD/XeroGuard.xml" -out:"$BUILD/XeroGuard.dll" $REFS "$HERE"/src/*.cs
mcs -nologo -warnaserror+ -target:exe -out:"$BUILD/XeroGuard.Tests.exe" $REFS -r:"$BUILD/XeroGuard.dll" "$HERE"/tests/*.cs
mcs -nologo -warnaserror+ -target:exe -out:"$BUILD/XeroGuard.Example.exe" $REFS -r:"$BUILD/XeroGuard.dll" "$ROOT"/examples/csharp/*.cs
# The C compiler's view of every struct, which the tests compare with the C# mirrors.
cc -std=c99 -Wall -Wextra -Werror -I"$ROOT/include" "$HERE/tests/layout_probe.c" -o "$BUILD/layout_probe"
"$BUILD/layout_probe" > "$BUILD/layout.txt"

echo "== start the Xero-like server"
# Its stdin is this script's pipe: if the script dies, the server sees EOF and stops.
coproc SERVER { exec python3 "$ROOT/tests/server/xero_like_server.py" --port 0 --minute-ms 1000 --minute-limit 60 \
    --day-limit 5000 --concurrency 5 --app-minute-limit 10000 --latency-ms 5; }
SERVER_PID=$SERVER_PID
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT
read -r -t 30 READY PORT <&"${SERVER[0]}" || true
[ "${READY:-}" = READY ] || { echo "run-tests.sh: the test server did not start" >&2; exit 1; }
export XG_SERVER_URL="http://127.0.0.1:$PORT"
export XG_LAYOUT_FILE="$BUILD/layout.txt"

cd "$BUILD"
status=0
echo "== tests"
timeout 150 mono --debug XeroGuard.Tests.exe || status=$?
echo "== example"
timeout 60 mono --debug XeroGuard.Example.exe || status=$?
exit $status
