#!/usr/bin/env bash
# Idle sessions on Bluetick alone, with the heap looked at from inside (issue 19):
# a fresh server per size, N idle sessions (conns scenario), a heap profile and the
# runtime's memory statistics after a forced GC while they are held (every TCP
# session parked by then), and the wake-up latency of parked sessions (--wake).
#
#   bench/idle-heap.sh BIN OUTDIR "5000 10000 17900" [tcp|websocket]
#
# BIN is a bluetick binary; users user1..userN must exist in $DATA with password
# benchpass (register them once: BIN bench --scenario register --register-count N
# --warm --scram-cache $DATA/../scram.cache ...). Per size it writes OUTDIR/<tr>N.json (the bench
# result: RSS before/held, wake_*), heap-<tr>N.pb (go tool pprof BIN heap-...pb) and
# mem-<tr>N.txt (HeapAlloc, HeapInuse, ... after a GC). About 17,900 is the most
# one process holds here: the admission gate keeps 10% of the 20,000 open files
# in reserve (18,000 connections at once, the profile's HTTP request included).
# CURVES is the client's TLS key exchanges (bench --tls-curves): x25519 (the
# default) or default (Go's list: X25519MLKEM768 first, as browsers offer).
set -euo pipefail
BIN=$1 OUT=$2 SIZES=$3 TR=${4:-tcp}
DATA=${DATA:-/tmp/idleheap/data}
# Ports below the ephemeral range (32768-60999): with tens of thousands of client
# sockets on loopback, a listener in that range may find its port taken.
C2S=${C2S:-127.0.0.1:17222} HTTP=${HTTP:-127.0.0.1:17280} HTTPS=${HTTPS:-127.0.0.1:17443}
HOLD=${HOLD:-25s} WAKE=${WAKE:-1000} CURVES=${CURVES:-x25519}
mkdir -p "$OUT" "$DATA"
conf=$OUT/bench.toml
{ cat "$(dirname "$0")/bluetick-bench.toml"; printf '\n[listen]\nhttps = "%s"\n' "$HTTPS"; } >"$conf"
for n in $SIZES; do
	"$BIN" serve --config "$conf" --data "$DATA" --domain bench.local --registration open --c2s "$C2S" \
		--c2s-tls off --http "$HTTP" --log-level warn --pprof >"$OUT/serve-$TR$n.log" 2>&1 &
	sp=$!
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/${C2S%:*}/${C2S#*:}") 2>/dev/null && break; sleep 0.1; done
	server=$C2S extra=""
	if [ "$TR" = websocket ]; then server=$HTTPS extra="--transport websocket"; fi
	# shellcheck disable=SC2086
	"$BIN" bench --server "$server" $extra --domain bench.local --users 'user%d' --password benchpass \
		--tls-curves "$CURVES" --sources 127.0.0.1-8 --scram-cache "$DATA/../scram.cache" --pid "$sp" \
		--scenario conns --conns "$n" --hold "$HOLD" --wake "$WAKE" --procs $(((n + 9499) / 9500)) \
		--concurrency 100 --json "$OUT/$TR$n.json" >"$OUT/$TR$n.md" 2>"$OUT/$TR$n.log" &
	bp=$!
	until grep -q 'connected ' "$OUT/$TR$n.log" 2>/dev/null || ! kill -0 "$bp" 2>/dev/null; do sleep 0.5; done
	sleep 8 # idle TCP sessions park after 2 s
	curl -s "http://$HTTP/debug/pprof/heap?gc=1" -o "$OUT/heap-$TR$n.pb"
	curl -s "http://$HTTP/debug/pprof/heap?gc=1&debug=1" | grep -E '^# (HeapAlloc|HeapInuse|HeapIdle|HeapReleased|StackInuse|Sys) ' >"$OUT/mem-$TR$n.txt"
	wait "$bp" || true
	kill "$sp"
	wait "$sp" || true
	grep -E '^\| (logins_per_s|mem_per_conn|wake_parked_p99|wake_active_p99|failed) ' "$OUT/$TR$n.md"
done
