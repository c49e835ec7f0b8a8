#!/usr/bin/env bash
# Side-by-side benchmark of Bluetick, ejabberd and Prosody on loopback.
#
# Server labels (SERVERS): bluetick (bench/bluetick-bench.toml: durable delivery on, the default),
# bluetick-mem (bench/bluetick-bench-mem.toml: the same but offline.durable = "off-loses-acked-on-crash",
# the sender's XEP-0198 ack given once the message is queued in memory), ejabberd, prosody.
#
# Starts each server in turn, isolated in a temporary directory (configs from
# $PEERS, see /work/shared/peers/README.md), registers the same users on all
# three over XMPP (XEP-0077), runs the same `bluetick bench` scenarios against
# each with the same client settings (STARTTLS + SCRAM-SHA-1), restarting the
# server before every scenario so each one starts from the same state, and
# writes JSON per run, a comparison table (ratios bluetick/ejabberd and
# bluetick/Prosody) and a PNG chart into $OUT.
#
#   bench/compare.sh                        # defaults: about 6-8 minutes on 2 cores
#   SLOPE="5000 10000 19000" bench/compare.sh   # also the memory-per-connection slope
#   SERVERS="bluetick prosody" SCENARIOS="chat" bench/compare.sh
#   SCENARIOS=group bench/compare.sh        # only the 256-member room
#   SM=1 SERVERS="bluetick bluetick-mem ejabberd prosody" SCENARIOS="chat offline" bench/compare.sh
#                                           # with XEP-0198: chat also reports the sender's ✓ (ack_p50/ack_p99)
#   SM=1 CHAT_RATE=10000 SCENARIOS=chat bench/compare.sh   # chat paced at 10,000 msg/s in total
#   TRANSPORTS="tcp websocket" SCENARIOS=conns SLOPE="5000 10000 18000" bench/compare.sh
#                                           # conns and the slope also over WebSocket (wss on each server's
#                                           # HTTPS listener: Bluetick listen.https, ejabberd's TLS ejabberd_http
#                                           # with /ws, Prosody's https_ports); results as <server>-ws-*
#   REGISTER=bulk SERVERS="ejabberd prosody" TRANSPORTS=websocket SCENARIOS= SLOPE="5000 10000 17900" bench/compare.sh
#                                           # the peers' WebSocket slope with users created in bulk (REGISTER)
#
# Every server started here is stopped on exit (trap), whatever happens.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PEERS=${PEERS:-/work/shared/peers}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
SERVERS=${SERVERS:-"bluetick ejabberd prosody"}
SCENARIOS=${SCENARIOS-"conns chat offline storm group"}  # may be set empty (e.g. only SLOPE)

# Sizes (see docs/benchmarks.md).
CONNS=${CONNS:-2000}
HOLD=${HOLD:-10s}
PAIRS=${PAIRS:-100}
MESSAGES=${MESSAGES:-1000}
WINDOW=${WINDOW:-10}
OFF_USERS=${OFF_USERS:-200}
OFF_MSGS=${OFF_MSGS:-100}
STORM=${STORM:-2000}
STORM_WINDOW=${STORM_WINDOW:-4s}
GROUP_MEMBERS=${GROUP_MEMBERS:-256}   # group: one room of this many members (user1 creates it)
GROUP_SENDERS=${GROUP_SENDERS:-4}     # the first S members send
GROUP_MESSAGES=${GROUP_MESSAGES:-200} # messages per sender
GROUP_WINDOW=${GROUP_WINDOW:-$WINDOW} # own messages not yet reflected by the room, per sender
SLOPE=${SLOPE:-}            # e.g. "5000 10000 18000": conns runs for the memory slope
# TRANSPORTS: conns (and SLOPE) runs over "tcp" (STARTTLS), "websocket" (RFC 7395 over TLS: wss on the
# server's HTTPS listener), or both; the other scenarios always run over TCP.
TRANSPORTS=${TRANSPORTS:-tcp}
# WAKE=N: each conns run then times the first message to N parked sessions against the next one to each
# (--wake; wake_parked_p99 vs wake_active_p99). 0: off.
WAKE=${WAKE:-0}
ROUNDS=${ROUNDS:-1}         # repeat the scenarios; the table shows medians and the per-round ratio range
DURATION=${DURATION:-180s}  # hard cap per scenario run
SOURCES=${SOURCES:-127.0.0.1-8}
# SM=1: every bench run enables XEP-0198 stream management (--sm; ejabberd's mod_stream_mgmt and Prosody's
# smacks are on in the peers' configs); chat then sends <r/> after each message and reports the sender's ✓
# latency (ack_p50, ack_p99). SM=0 (default): no stream management, as in the earlier runs.
SM=${SM:-0}
# CHAT_RATE=N: chat sends N messages/s in total over all senders (--rate); empty (default): as fast as
# --window allows.
CHAT_RATE=${CHAT_RATE:-}
# Same client for all: STARTTLS required, SCRAM-SHA-1, X25519 (what OpenSSL 3.0 in ejabberd and Prosody uses;
# Go would otherwise negotiate the heavier post-quantum X25519MLKEM768 with Bluetick only).
CLIENT=${CLIENT:-"--tls starttls --mech SCRAM-SHA-1 --tls-curves x25519"}
# The peers' configs archive every message (MAM: mnesia in ejabberd, files in Prosody); Bluetick has no
# archive yet. NOMAM=1 (default) removes mod_mam / "mam" from the copies so all three do the same work;
# NOMAM=0 runs the configs exactly as in $PEERS.
NOMAM=${NOMAM:-1}
# Bluetick does archive every group message (the room archive, before fan-out): for the group scenario
# MUCMAM=1 (default) keeps the peers' room archives (ejabberd: mod_mam with rooms' mam: true — ejabberd
# never puts groupchat into users' archives; Prosody: muc_mam) even with NOMAM=1, so all three store each
# room message once. MUCMAM=0 drops them too.
MUCMAM=${MUCMAM:-1}
# REGISTER=inband (default): users are registered over XMPP (XEP-0077) and logged in once (SCRAM cache).
# REGISTER=bulk: the peers get theirs without XMPP, in seconds even for 17,900 users (in-band took over
# 15 minutes on ejabberd): ejabberd imports an XEP-0227 file (ejabberdctl import_piefxis), Prosody gets
# its internal storage account files written directly (bench/bulk-users.py); Bluetick still registers
# in-band.
REGISTER=${REGISTER:-inband}

# Ports: the peers' configs use 25222 (ejabberd) and 26222 (Prosody).
EJ_PORT=${EJ_PORT:-25222} EJ_HTTP=${EJ_HTTP:-25280} EJ_HTTPS=${EJ_HTTPS:-25443}
PROS_PORT=${PROS_PORT:-26222} PROS_HTTP=${PROS_HTTP:-26280} PROS_HTTPS=${PROS_HTTPS:-26443}
BT_PORT=${BT_PORT:-27222} BT_TLS=${BT_TLS:-27223} BT_HTTP=${BT_HTTP:-27280} BT_HTTPS=${BT_HTTPS:-27443}
EJ_NODE=${EJ_NODE:-btbench@localhost}

# Server labels (the functions setup_X, start_X, stop_X of bluetick-mem are bluetick's with another config).
for tr in $TRANSPORTS; do
	case $tr in
	tcp | websocket) ;;
	*) echo "compare.sh: unknown transport $tr in TRANSPORTS (tcp, websocket)" >&2; exit 2 ;;
	esac
done
for srv in $SERVERS; do
	case $srv in
	bluetick | bluetick-mem | ejabberd | prosody) ;;
	*) echo "compare.sh: unknown server $srv in SERVERS (bluetick, bluetick-mem, ejabberd, prosody)" >&2; exit 2 ;;
	esac
done
# bluetick-bench-mem.toml must be bluetick-bench.toml plus the durable line (and comments).
conf_lines() { grep -v -E '^[[:space:]]*(#|$)' "$1"; }
if ! diff <(conf_lines "$HERE/bluetick-bench.toml"; printf '[offline]\ndurable = "off-loses-acked-on-crash"\n') \
	<(conf_lines "$HERE/bluetick-bench-mem.toml") >/dev/null; then
	echo "compare.sh: bench/bluetick-bench-mem.toml must be bench/bluetick-bench.toml plus [offline] durable = \"off-loses-acked-on-crash\" at its end" >&2
	exit 2
fi

# WORK=dir reuses the servers' data (registered users) and the SCRAM cache of an earlier run.
if [ -n "${WORK:-}" ]; then W=$WORK; mkdir -p "$W"; else W=$(mktemp -d /tmp/btcompare.XXXXXX); fi
chmod 755 "$W"
mkdir -p "$OUT"
BT="$W/bluetick"
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- stopping everything, always ------------------------------------------
BT_PID="" PROS_PID="" EJ_UP=0
stop_bluetick() {
	if [ -n "$BT_PID" ]; then
		kill "$BT_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$BT_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$BT_PID" 2>/dev/null || true
		BT_PID=""
	fi
}
stop_prosody() {
	if [ -n "$PROS_PID" ]; then
		kill "$PROS_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$PROS_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$PROS_PID" 2>/dev/null || true
		PROS_PID=""
	fi
}
ejctl() {
	su ejabberd -s /bin/sh -c "ejabberdctl --ctl-config $W/ejb/ejabberdctl.cfg --config $W/ejb/ejabberd.yml --spool $W/ejb/spool --logs $W/ejb/logs --node $EJ_NODE $*"
}
ej_pid() { pgrep -f "beam.smp.*-sname $EJ_NODE|beam.smp.*-name $EJ_NODE|beam.smp.*$EJ_NODE" | head -1; }
stop_ejabberd() {
	if [ "$EJ_UP" = 1 ]; then
		local pid; pid=$(ej_pid || true)
		ejctl stop >/dev/null 2>&1 || true
		for _ in $(seq 100); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
		EJ_UP=0
	fi
}
EPMD_WAS_UP=1
cleanup() {
	stop_bluetick; stop_prosody; stop_ejabberd
	# ejabberdctl starts epmd, which outlives the node: stop it if this run started it (epmd -kill
	# refuses while any Erlang node is still registered with it).
	if [ "$EPMD_WAS_UP" = 0 ]; then
		epmd -kill >/dev/null 2>&1 || true
	fi
	log "all servers stopped; work dir $W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
# first free port among $1, $1+1000, $1+2000, ... (other people may run servers on the defaults)
pick_port() {
	local p=$1
	while ! port_free "$p"; do p=$((p + 1000)); done
	echo "$p"
}
wait_port() { # port seconds
	for _ in $(seq $(($2 * 10))); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

# ---- installation ---------------------------------------------------------
need_pkgs=""
command -v ejabberdctl >/dev/null || [ -x /usr/sbin/ejabberdctl ] || need_pkgs="$need_pkgs ejabberd"
command -v prosody >/dev/null || need_pkgs="$need_pkgs prosody"
if [ -n "$need_pkgs" ]; then
	log "installing$need_pkgs"
	DEBIAN_FRONTEND=noninteractive apt-get install -y $need_pkgs >"$W/apt.log" 2>&1
fi
export PATH="$PATH:/usr/sbin"
# su resets the soft open-files limit through PAM: let ejabberd have 20000.
if ! grep -qE '^ejabberd[[:space:]]+-[[:space:]]+nofile' /etc/security/limits.conf; then
	echo 'ejabberd - nofile 20000' >>/etc/security/limits.conf
fi

log "building bluetick"
(cd "$ROOT" && go build -o "$BT" ./cmd/bluetick)

# ---- servers ----------------------------------------------------------------
setup_ejabberd() {
	EJ_PORT=$(pick_port "$EJ_PORT") EJ_HTTP=$(pick_port "$EJ_HTTP") EJ_HTTPS=$(pick_port "$EJ_HTTPS")
	mkdir -p "$W/ejb/spool" "$W/ejb/logs" "$W/ejb/upload"
	cp "$PEERS"/ejabberd/* "$W/ejb/"
	chmod u+w "$W"/ejb/*
	sed -i -e "s#/tmp/ejb/#$W/ejb/#g" "$W/ejb/ejabberdctl.cfg"
	# Erlang's port mapper (epmd) and distribution listener: loopback only, not every interface.
	printf '\nERL_EPMD_ADDRESS=127.0.0.1\nINET_DIST_INTERFACE=127.0.0.1\n' >>"$W/ejb/ejabberdctl.cfg"
	EPMD_WAS_UP=0
	if pgrep -x epmd >/dev/null; then EPMD_WAS_UP=1; fi
	ejabberd_config 0
	chown -R ejabberd:ejabberd "$W/ejb"
}
# ejabberd_config MUCMAM: ejabberd.yml from $PEERS with paths and ports rewritten; with NOMAM=1 no
# archive at all (MUCMAM=0) or only rooms' (MUCMAM=1: groupchat never enters users' archives).
ejabberd_config() {
	cp "$PEERS/ejabberd/ejabberd.yml" "$W/ejb/ejabberd.yml"
	chmod u+w "$W/ejb/ejabberd.yml"
	sed -i -e "s#/tmp/ejb-bar#$W/ejb#g" -e "s#port: 25222#port: $EJ_PORT#" -e "s#port: 25280#port: $EJ_HTTP#" \
		-e "s#port: 25443#port: $EJ_HTTPS#" -e "s#127.0.0.1:25443#127.0.0.1:$EJ_HTTPS#" "$W/ejb/ejabberd.yml"
	# WebSocket over TLS: /ws also on the TLS listener (the peers' config has it on plain HTTP only).
	sed -i -e "s#^      /upload: mod_http_upload#      /upload: mod_http_upload\n      /ws: ejabberd_http_ws#" "$W/ejb/ejabberd.yml"
	if [ "$NOMAM" = 1 ] && [ "$1" = 0 ]; then
		python3 - "$W/ejb/ejabberd.yml" <<'EOF'
import sys, re
p = sys.argv[1]; s = open(p).read()
s = re.sub(r"  mod_mam:\n(    .*\n)+", "", s)
s = s.replace("      mam: true\n", "      mam: false\n")
open(p, "w").write(s)
EOF
	fi
	chown ejabberd:ejabberd "$W/ejb/ejabberd.yml"
}
start_ejabberd() {
	port_free "$EJ_PORT" || { log "port $EJ_PORT busy: set EJ_PORT"; exit 1; }
	ejctl start >/dev/null
	EJ_UP=1
	ejctl started >/dev/null
	wait_port "$EJ_PORT" 60 || { log "ejabberd did not open $EJ_PORT"; tail "$W/ejb/logs/error.log" >&2; exit 1; }
	SERVER_PID=$(ej_pid)
	SERVER_ADDR=127.0.0.1:$EJ_PORT
	SERVER_WS=wss://127.0.0.1:$EJ_HTTPS/ws
	log "ejabberd up, beam.smp pid $SERVER_PID, nofile $(awk '/open files/{print $4"/"$5}' /proc/$SERVER_PID/limits)"
}
setup_prosody() {
	PROS_PORT=$(pick_port "$PROS_PORT") PROS_HTTP=$(pick_port "$PROS_HTTP") PROS_HTTPS=$(pick_port "$PROS_HTTPS")
	mkdir -p "$W/pros/data"
	prosody_config 0
	openssl x509 -in "$PEERS/ejabberd/bench.local.pem" -out "$W/pros/bench.local.crt"
	openssl pkey -in "$PEERS/ejabberd/bench.local.pem" -out "$W/pros/bench.local.key"
	chown -R prosody:prosody "$W/pros"
}
# prosody_config MUCMAM: prosody.cfg.lua from $PEERS with paths and ports rewritten; with NOMAM=1 no
# "mam" (users' archives) and, unless MUCMAM=1, no "muc_mam" (rooms' archives).
prosody_config() {
	cp "$PEERS/prosody/prosody.cfg.lua" "$W/pros/"
	chmod u+w "$W/pros/prosody.cfg.lua"
	sed -i -e "s#/tmp/pros#$W/pros#g" -e "s#{ 26222 }#{ $PROS_PORT }#" -e "s#{ 26280 }#{ $PROS_HTTP }#" "$W/pros/prosody.cfg.lua"
	# WebSocket over TLS: an HTTPS listener with the host's certificate (the peers' config has none).
	sed -i -e "s#^https_ports = { }#https_ports = { $PROS_HTTPS }\nhttps_interfaces = { \"127.0.0.1\" }\nhttps_certificate = \"$W/pros/bench.local.crt\"#" "$W/pros/prosody.cfg.lua"
	if [ "$NOMAM" = 1 ]; then
		sed -i -e 's/"mam", //' "$W/pros/prosody.cfg.lua"
		if [ "$1" = 0 ]; then
			sed -i -e 's/modules_enabled = { "muc_mam" }/modules_enabled = { }/' "$W/pros/prosody.cfg.lua"
		fi
	fi
	chown prosody:prosody "$W/pros/prosody.cfg.lua"
}
start_prosody() {
	port_free "$PROS_PORT" || { log "port $PROS_PORT busy: set PROS_PORT"; exit 1; }
	su prosody -s /bin/sh -c "ulimit -n 20000; exec prosody --config $W/pros/prosody.cfg.lua" >>"$W/pros/stdout.log" 2>&1 &
	local su_pid=$!
	wait_port "$PROS_PORT" 30 || { log "prosody did not open $PROS_PORT"; cat "$W/pros/prosody.log" >&2; exit 1; }
	PROS_PID=$(pgrep -P "$su_pid" | head -1)
	[ -n "$PROS_PID" ] || PROS_PID=$su_pid
	SERVER_PID=$PROS_PID
	SERVER_ADDR=127.0.0.1:$PROS_PORT
	SERVER_WS=wss://127.0.0.1:$PROS_HTTPS/xmpp-websocket
	log "prosody up, pid $SERVER_PID ($(cat /proc/$SERVER_PID/comm)), nofile $(awk '/open files/{print $4"/"$5}' /proc/$SERVER_PID/limits)"
}
# Bluetick: label bluetick → config bluetick-bench.toml, data $W/bt; bluetick-mem → bluetick-bench-mem.toml,
# data $W/btmem (its own users and database, registered the same way). Only one runs at a time.
bt_conf() { case $1 in bluetick) echo "$HERE/bluetick-bench.toml" ;; bluetick-mem) echo "$HERE/bluetick-bench-mem.toml" ;; esac; }
bt_dir() { case $1 in bluetick) echo "$W/bt" ;; bluetick-mem) echo "$W/btmem" ;; esac; }
setup_bluetick() { # [label]
	local label=${1:-bluetick}
	BT_PORT=$(pick_port "$BT_PORT") BT_TLS=$(pick_port "$BT_TLS") BT_HTTP=$(pick_port "$BT_HTTP") BT_HTTPS=$(pick_port "$BT_HTTPS")
	mkdir -p "$(bt_dir "$label")/data"
	# The config plus an HTTPS listener (WebSocket over TLS; TRANSPORTS=websocket).
	{ cat "$(bt_conf "$label")"; printf '\n[listen]\nhttps = "127.0.0.1:%s"\n' "$BT_HTTPS"; } >"$(bt_dir "$label")/bench.toml"
}
start_bluetick() { # [label]
	local label=${1:-bluetick} dir
	dir=$(bt_dir "$label")
	port_free "$BT_PORT" || { log "port $BT_PORT busy: set BT_PORT"; exit 1; }
	"$BT" serve --config "$dir/bench.toml" --data "$dir/data" --domain bench.local --registration open \
		--c2s 127.0.0.1:$BT_PORT --c2s-tls 127.0.0.1:$BT_TLS --http 127.0.0.1:$BT_HTTP --log-level warn \
		>>"$dir/serve.log" 2>&1 &
	BT_PID=$!
	wait_port "$BT_PORT" 30 || { log "$label did not open $BT_PORT"; cat "$dir/serve.log" >&2; exit 1; }
	SERVER_PID=$BT_PID
	SERVER_ADDR=127.0.0.1:$BT_PORT
	SERVER_WS=wss://127.0.0.1:$BT_HTTPS/xmpp-websocket
	# Durable delivery keeps live sessions' messages in data/journal; without it there is none.
	local mode="durable delivery on (data/journal)"
	[ -d "$dir/data/journal" ] || mode="durable delivery off (no data/journal)"
	log "$label up, pid $SERVER_PID, $mode"
}
setup_bluetick-mem() { setup_bluetick bluetick-mem; }
start_bluetick-mem() { start_bluetick bluetick-mem; }
stop_bluetick-mem() { stop_bluetick; }
start_server() { "start_$1"; sleep 1; }
# server_config SERVER SCENARIO: the peers' config for that scenario (room archives for group, see MUCMAM).
server_config() {
	local mucmam=0
	if [ "$2" = group ] && [ "$MUCMAM" = 1 ]; then mucmam=1; fi
	case $1 in
	ejabberd) ejabberd_config "$mucmam" ;;
	prosody) prosody_config "$mucmam" ;;
	esac
}
stop_server() { "stop_$1"; sleep 1; }

# ---- runs -------------------------------------------------------------------
max_users=$CONNS
for n in $((2 * PAIRS)) $((2 * OFF_USERS)) $STORM $GROUP_MEMBERS $SLOPE; do
	if [ "$n" -gt "$max_users" ]; then max_users=$n; fi
done
procs_for() { echo $(( ($1 + 9499) / 9500 )); } # at most 9,500 clients per generator process

bench() { # server scenario tag extra-args...   (TR=websocket: over WebSocket, label <server>-ws)
	local srv=$1 scen=$2 tag=$3; shift 3
	local sm="" server="--server $SERVER_ADDR" label=$srv
	if [ "$SM" = 1 ]; then sm="--sm"; fi
	if [ "${TR:-tcp}" = websocket ]; then server="--server $SERVER_WS --transport websocket" label=$srv-ws; fi
	# shellcheck disable=SC2086
	"$BT" bench $server --domain bench.local --label "$label" --users 'user%d' --password benchpass \
		$CLIENT $sm --sources "$SOURCES" --scram-cache "$W/scram-$srv.cache" --pid "$SERVER_PID" --duration "$DURATION" \
		--scenario "$scen" --json "$OUT/$srv-$tag.json" "$@" >"$OUT/$srv-$tag.md" 2>"$OUT/$srv-$tag.log" ||
		log "$srv $tag: bench exited with $? (see $OUT/$srv-$tag.log)"
	local summary
	summary=$(grep -E '^\| (logins_per_s|msgs_per_s|mem_per_conn|latency_p99|ack_p99|store_msgs_per_s|drain_msgs_per_s|deliveries_per_s|failed|lost|duplicates) ' "$OUT/$srv-$tag.md" | awk -F'|' '{printf "%s=%s ", $2, $3}' | tr -s ' ' || true)
	log "$srv $tag: $summary"
	# With SM=1 a chat run reports the ✓ only if the server offered XEP-0198 (the client enables it when offered).
	if [ "$SM" = 1 ] && [ "$scen" = chat ] && ! grep -q '^| ack_p99 ' "$OUT/$srv-$tag.md"; then
		log "$srv $tag: SM=1 but no ack_p99: the server did not offer or answer XEP-0198 stream management"
	fi
}

# MUC service of each server: Bluetick's group service, the peers' mod_muc / muc component.
muc_service() {
	case $1 in
	bluetick*) echo "groups.bench.local" ;;
	*) echo "conference.bench.local" ;;
	esac
}

scenario_args() { # scenario server
	case $1 in
	conns) echo "--conns $CONNS --hold $HOLD --procs $(procs_for "$CONNS") --wake $WAKE" ;;
	chat) echo "--pairs $PAIRS --messages $MESSAGES --window $WINDOW${CHAT_RATE:+ --rate $CHAT_RATE}" ;;
	offline) echo "--offline-users $OFF_USERS --offline-messages $OFF_MSGS" ;;
	storm) echo "--storm $STORM --storm-window $STORM_WINDOW --procs $(procs_for "$STORM")" ;;
	group) echo "--group-members $GROUP_MEMBERS --group-senders $GROUP_SENDERS --group-messages $GROUP_MESSAGES --window $GROUP_WINDOW --muc-service $(muc_service "$2") --procs $(procs_for "$GROUP_MEMBERS")" ;;
	esac
}

log "output in $OUT; servers $SERVERS; users user1..user$max_users; NOMAM=$NOMAM SM=$SM CHAT_RATE=${CHAT_RATE:-none}"
# Registration first, on every server; then each scenario on every server
# in turn (scenario-major order spreads background load on a shared
# machine over all of them), each run on a freshly started server.
for srv in $SERVERS; do
	"setup_$srv"
	if [ -f "$W/registered-$srv" ] && [ "$(cat "$W/registered-$srv")" -ge "$max_users" ]; then
		log "$srv: users already registered in $W"
		continue
	fi
	if [ "$REGISTER" = bulk ] && [ "$srv" = prosody ]; then
		log "prosody: writing $max_users accounts into its internal storage"
		python3 "$HERE/bulk-users.py" prosody "$max_users" bench.local benchpass "$W/pros/data"
		chown -R prosody:prosody "$W/pros/data"
		echo "$max_users" >"$W/registered-$srv"
		continue
	fi
	start_server "$srv"
	if [ "$REGISTER" = bulk ] && [ "$srv" = ejabberd ]; then
		log "ejabberd: importing $max_users users from XEP-0227 files, 2,500 a file"
		# One ejabberdctl call gives up after about a minute (then the node is stopped mid-import):
		# chunks of 2,500 users (~25 s each here).
		for first in $(seq 1 2500 "$max_users"); do
			last=$((first + 2499)); [ "$last" -le "$max_users" ] || last=$max_users
			python3 "$HERE/bulk-users.py" piefxis "$last" bench.local benchpass "$W/ejb/users.xml" "$first"
			chown ejabberd:ejabberd "$W/ejb/users.xml"
			timeout 5m su ejabberd -s /bin/sh -c "ejabberdctl --ctl-config $W/ejb/ejabberdctl.cfg --config $W/ejb/ejabberd.yml --spool $W/ejb/spool --logs $W/ejb/logs --node $EJ_NODE import_piefxis $W/ejb/users.xml" ||
				{ log "ejabberd: import_piefxis of user$first..user$last failed (see $W/ejb/logs/error.log)"; exit 1; }
			log "ejabberd: user$first..user$last imported"
		done
		echo "$max_users" >"$W/registered-$srv"
		stop_server "$srv"
		continue
	fi
	log "$srv: registering $max_users users in-band (and one login each to cache SCRAM keys)"
	bench "$srv" register register --register-count "$max_users" --warm --procs "$(procs_for "$max_users")" --duration 20m
	echo "$max_users" >"$W/registered-$srv"
	stop_server "$srv"
done
for round in $(seq "$ROUNDS"); do
	for scen in $SCENARIOS; do
		for srv in $SERVERS; do
			server_config "$srv" "$scen"
			trs=tcp
			if [ "$scen" = conns ]; then trs=$TRANSPORTS; fi
			for tr in $trs; do
				pre=""
				if [ "$tr" = websocket ]; then pre="ws-"; fi
				start_server "$srv"
				# shellcheck disable=SC2046
				TR=$tr bench "$srv" "$scen" "$pre$scen-r$round" $(scenario_args "$scen" "$srv")
				stop_server "$srv"
			done
		done
	done
done
for n in $SLOPE; do
	for tr in $TRANSPORTS; do
		for srv in $SERVERS; do
			pre=""
			if [ "$tr" = websocket ]; then pre="ws-"; fi
			server_config "$srv" conns
			start_server "$srv"
			TR=$tr bench "$srv" conns "${pre}conns$n" --conns "$n" --hold "$HOLD" --procs "$(procs_for "$n")" --concurrency 100 --wake "$WAKE"
			stop_server "$srv"
		done
	done
done

files=()
for round in $(seq "$ROUNDS"); do
	for srv in $SERVERS; do for scen in $SCENARIOS; do
		if [ -f "$OUT/$srv-$scen-r$round.json" ]; then files+=("$OUT/$srv-$scen-r$round.json"); fi
	done; done
done
if [ ${#files[@]} -gt 0 ]; then
	base=bluetick
	case " $SERVERS " in *" bluetick "*) ;; *) base=${SERVERS%% *} ;; esac
	"$BT" bench report --base "$base" --md "$OUT/compare.md" --png "$OUT/compare.png" --json "$OUT/compare.json" "${files[@]}"
fi
# Over WebSocket: a table of its own (same scenario as the TCP runs; base bluetick-ws).
wsfiles=()
for round in $(seq "$ROUNDS"); do
	for srv in $SERVERS; do
		if [ -f "$OUT/$srv-ws-conns-r$round.json" ]; then wsfiles+=("$OUT/$srv-ws-conns-r$round.json"); fi
	done
done
if [ ${#wsfiles[@]} -gt 0 ]; then
	"$BT" bench report --base "${SERVERS%% *}-ws" --md "$OUT/compare-ws.md" --png "$OUT/compare-ws.png" --json "$OUT/compare-ws.json" "${wsfiles[@]}"
fi
if [ -n "$SLOPE" ]; then
	for tr in $TRANSPORTS; do
		if [ "$tr" = tcp ]; then
			python3 "$HERE/slope.py" "$OUT" "$SERVERS" "$SLOPE" | tee -a "$OUT/compare.md"
		else
			# shellcheck disable=SC2001
			python3 "$HERE/slope.py" "$OUT" "$(echo "$SERVERS" | sed 's/\([^ ]*\)/\1-ws/g')" "$SLOPE" | tee -a "$OUT/compare-ws.md"
		fi
	done
fi
log "done: $OUT/compare.md, $OUT/compare.png"
