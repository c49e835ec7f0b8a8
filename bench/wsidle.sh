#!/usr/bin/env bash
# Idle WebSocket sessions: RSS and goroutines per idle authenticated wss
# session, and the first-message latency to and from a parked session
# (docs/benchmarks.md, "Ten kilobytes per idle session (issue 19)").
#
#   bench/wsidle.sh [BINARY...]     default: a build of this tree
#   COUNTS=5000,15000  sessions at which to sample (each ≤ 19,000)
#   CURVES=x25519      offer only X25519 (default: Go's list, ML-KEM hybrid first, as browsers)
#
# Each binary gets a fresh server on loopback ports over a copy of one data
# directory whose users were registered once (in-band, by `bluetick bench
# --scenario register`); the driver (TestWSIdleDriver in internal/c2s)
# logs COUNTS sessions in over wss on the HTTPS listener, holds them until
# the server's goroutine count settles, and samples /proc and pprof.
# Bounded: at most the largest count of sessions (≤ 19,000), TIMEOUT each.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
COUNTS=${COUNTS:-5000,15000}
TIMEOUT=${TIMEOUT:-15m}
W=${W:-$(mktemp -d /tmp/wsidle.XXXXXX)}
export PATH=/usr/local/go/bin:$PATH
max=$(tr , '\n' <<<"$COUNTS" | sort -n | tail -1)

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1000)); done; echo "$p"; }
wait_port() { for _ in $(seq $(($2 * 10))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

if [ $# -eq 0 ]; then
	go build -o "$W/bluetick" "$ROOT/cmd/bluetick"
	set -- "$W/bluetick"
fi
(cd "$ROOT" && go test -c -o "$W/c2s.test" ./internal/c2s)

C2S=$(pick_port 15222) HTTP=$(pick_port 15280) HTTPS=$(pick_port 15443)
# The bench configuration plus the HTTPS listener (wss).
{ cat "$HERE/bluetick-bench.toml"; printf '\n[listen]\nhttps = "127.0.0.1:%s"\n' "$HTTPS"; } >"$W/bluetick.toml"
serve() { # binary datadir
	"$1" serve --config "$W/bluetick.toml" --data "$2" --domain bench.local --registration open \
		--c2s 127.0.0.1:$C2S --c2s-tls off --http 127.0.0.1:$HTTP --log-level warn --pprof >>"$2.log" 2>&1 &
	PID=$!
	wait_port "$HTTPS" 30 || { cat "$2.log" >&2; exit 1; }
}

# Users, once.
mkdir -p "$W/users"
serve "$1" "$W/users"
"$1" bench --server 127.0.0.1:$C2S --domain bench.local --tls none --scenario register --register-count "$max" --duration 10m >"$W/register.log" 2>&1
kill "$PID"; wait "$PID" || true

for bin in "$@"; do
	d="$W/run.$(basename "$bin")"
	rm -rf "$d"; cp -a "$W/users" "$d"
	serve "$bin" "$d"
	echo "== $bin"
	BLUETICK_WSIDLE_ADDR=127.0.0.1:$HTTPS BLUETICK_WSIDLE_PID=$PID BLUETICK_WSIDLE_PPROF=http://127.0.0.1:$HTTP \
		BLUETICK_WSIDLE_COUNTS=$COUNTS BLUETICK_WSIDLE_TIMEOUT=$TIMEOUT BLUETICK_WSIDLE_HEAP=$d BLUETICK_WSIDLE_CURVES=${CURVES:-} \
		"$W/c2s.test" -test.run '^TestWSIdleDriver$' -test.v -test.timeout 30m 2>&1 | grep -E 'wsidle_driver_test|^(ok|FAIL|---)' || true
	kill "$PID"; wait "$PID" || true
done
