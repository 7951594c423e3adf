#!/bin/sh
# bench/push.sh BUILD: pushes per second from bin/mdm-pushd over one
# HTTP/2 connection, each figure beside its goal (issue 15): 20,000
# pushes/s, 50 us of daemon CPU per push, the daemon under 8 MiB of RSS.
#
# BENCH_PUSHES enrollments with tokens (default 20000) are made due by one
# mdm.push(), then one `mdm-pushd --once` sends them all: its wall time,
# its CPU and peak RSS (/usr/bin/time: the whole process, start-up, TLS
# handshake and cert loading included), the CPU of the server it talks to
# and of PostgreSQL (/proc, before and after), and the connections it
# opened (its log).  Against
#   - the APNs stand-in of the tests (tests/apns: Apache mod_http2 + the
#     FastCGI apns_standin, every request checked and recorded), and
#   - nghttpd (Debian nghttp2-server), an independent HTTP/2 server that
#     asks for the client certificate and answers each POST 200 (with the
#     empty file of that token's path): the daemon's own ceiling when the
#     server costs little.
# BENCH_PUSH_SERVERS chooses (default "standin nghttpd"; nghttpd is
# skipped when not installed).  Runs alone, with its own PostgreSQL
# (durable, as in production), or from bench/run.sh.  BENCH_PERF=DIR
# also records `perf record -g` of the daemon and of the server into DIR
# (perf-pushd-N.data, perf-server-N.data, and `perf report` text beside).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
B=$ROOT/${1:-build}
cd "$ROOT" || exit 1
PUSHES=${BENCH_PUSHES:-20000}
SERVERS=${BENCH_PUSH_SERVERS:-standin nghttpd}
STACK_ROOT=$ROOT
STACK_PROG=bench-push
# shellcheck source=scripts/stack.sh
. "$ROOT/scripts/stack.sh"
# shellcheck source=tests/apns/apns.sh
. "$ROOT/tests/apns/apns.sh"
stack_init
[ -x /usr/bin/time ] || stack_die "/usr/bin/time not found: run 'make deps' as root"

W=$(mktemp -d "${TMPDIR:-/tmp}/mdm-bench-push.XXXXXX") || exit 1
chmod 755 "$W"
stack_own "$W"
push_cleanup() {
	[ -n "${NGHTTPD_PID:-}" ] && kill "$NGHTTPD_PID" 2>/dev/null
	[ -d "$W/apns" ] && apns_stop "$W/apns"
	pg_stop "$W"
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench/push.sh: kept $W" >&2
	else
		rm -rf "$W"
	fi
}
trap push_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# CPU (ms) of the processes whose command line matches $1, and of their
# children (live, and through cutime those that have exited: a PostgreSQL
# backend ends with its client), from /proc.
cpu_ms() {
	# shellcheck disable=SC2046 # a list of pids
	cat $({
		for p in $(pgrep -f "$1"); do
			echo "$p"
			pgrep -P "$p"
		done
	} | sort -u | sed 's|.*|/proc/&/stat|') 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '
		{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 }
		END { printf "%.1f", t * 1000 / hz }'
}

q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$MDM_DB" -c "$1"; }

STACK_PG_PORT=$(stack_free_port 15632)
pg_start "$W" bench
MDM_DB=$PG_CONNINFO
export MDM_DB
"$B/bin/mdmctl" db migrate >/dev/null 2>&1 || stack_die "migrate failed"
mkdir -p "$W/push"
apns_push_cert "$W/push" "$W/push/push" "$W/push/issuer"
stack_own "$W/push"
"$B/bin/mdmctl" push-cert import --cert "$W/push/push.pem" --key "$W/push/push.key" \
	>/dev/null 2>&1 || stack_die "push-cert import failed"
q "INSERT INTO mdm.device (udid) SELECT 'PUSHBENCH-' || g FROM generate_series(1, $PUSHES) g;
	INSERT INTO mdm.enrollment (udid, topic, active, push_token, push_magic)
	SELECT 'PUSHBENCH-' || g, '$APNS_PUSH_TOPIC', true,
	       decode(md5(g::text) || md5('t' || g), 'hex'), 'magic-' || g
	FROM generate_series(1, $PUSHES) g" >/dev/null || stack_die "push devices failed"
APNS_STANDIN_BIN=$B/tests/apns_standin
apns_start "$W/apns" "$(stack_free_port 19543)" "$W/push/issuer.pem"

# bench_run NAME URL PATTERN COMMS: one --once run against URL, PATTERN
# matching the server's processes (COMMS: their command names, for perf);
# prints the figures.
bench_run() {
	q "UPDATE mdm.push_state SET pending = false, quiet_until = NULL, last_status = NULL" \
		>/dev/null || stack_die "push_state reset failed"
	q "SELECT mdm.push(ARRAY(SELECT 'PUSHBENCH-' || g FROM generate_series(1, $PUSHES) g))" \
		>/dev/null || stack_die "mdm.push failed"
	log=$W/pushd-$1.log
	RUNS=$((RUNS + 1))
	perf_pushd=
	if [ -n "${BENCH_PERF:-}" ]; then
		mkdir -p "$BENCH_PERF"
		perf_pushd="perf record -q -g -o $BENCH_PERF/perf-pushd-$RUNS.data --"
		# System-wide, reported for the server's processes (another Apache may run).
		spids=$(pgrep -f "$3" | paste -sd, -)
		perf record -q -a -g -o "$BENCH_PERF/perf-server-$RUNS.data" \
			2>"$BENCH_PERF/perf-server-$RUNS.err" &
		PERF_PID=$!
		sleep 0.5
	fi
	s0=$(cpu_ms "$3")
	p0=$(cpu_ms "$W/pgdata")
	/usr/bin/time -f '%e %U %S %M' -o "$W/time-$1" env MDM_APNS_URL="$2" \
		MDM_APNS_CA_FILE="$APNS_CA" MDM_PUSH_MIN_INTERVAL=0 MDM_LOG_LEVEL=info \
		$perf_pushd "$B/bin/mdm-pushd" --once --id bench >/dev/null 2>"$log" &
	tpid=$!
	# What the RSS is made of at its largest: anonymous (heap) and file
	# (libraries' pages, shared with other processes: PSS counts its share).
	rss="0 0 0 0"
	while kill -0 "$tpid" 2>/dev/null; do
		for d in $(pgrep -P "$tpid"); do
			rss=$(awk -v m="$rss" '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 }
				/^Pss_Anon:/ { a = $2 } /^Pss_File:/ { f = $2 }
				END { split(m, o, " "); if (r > o[1]) print r, p, a, f; else print m }' \
				"/proc/$d/smaps_rollup" 2>/dev/null || echo "$rss")
		done
		sleep 0.05
	done
	wait "$tpid" || stack_die "mdm-pushd failed: $(tail -3 "$log")"
	times=$(cat "$W/time-$1")
	s1=$(cpu_ms "$3")
	if [ -n "$perf_pushd" ]; then
		kill -INT "$PERF_PID"
		wait "$PERF_PID"
		perf report --stdio --no-children -i "$BENCH_PERF/perf-pushd-$RUNS.data" \
			>"$BENCH_PERF/perf-pushd-$RUNS.txt" 2>/dev/null
		perf report --stdio --no-children --comms "$4" --pid "$spids" \
			-i "$BENCH_PERF/perf-server-$RUNS.data" >"$BENCH_PERF/perf-server-$RUNS.txt" \
			2>/dev/null
	fi
	sleep 0.2 # the daemon's backend exits
	p1=$(cpu_ms "$W/pgdata")
	ok=$(q "SELECT count(*) FROM mdm.push_state WHERE last_status = 200 AND NOT pending")
	conns=$(sed -n 's/.*over \([0-9]*\) new connection.*/\1/p' "$log" |
		awk '{ n += $1 } END { print n + 0 }')
	[ "$ok" -eq "$PUSHES" ] || stack_die "$1: only $ok of $PUSHES pushes recorded as 200"
	echo "  against $1:"
	printf '%s\n' "$times" | awk -v n="$PUSHES" -v c="$conns" -v a="$s0" -v b="$s1" \
		-v pa="$p0" -v pb="$p1" -v rss="$rss" '{
		split(rss, m, " ")
		rate = n / $1; d = ($2 + $3) * 1e6 / n; rss = $4 / 1024
		printf "    pushes/s %.0f (goal 20000: ratio %.2f); seconds %.3f; connections %d (goal 1)\n", rate, rate / 20000, $1, c
		printf "    mdm-pushd CPU per push %.1f us (goal 50: ratio %.2f); max RSS %.1f MiB (goal 8: ratio %.2f)\n", d, 50 / d, rss, 8 / rss
		printf "      largest RSS sampled %.1f MiB; its PSS %.1f MiB = %.1f anonymous + %.1f of shared library pages\n", m[1] / 1024, m[2] / 1024, m[3] / 1024, m[4] / 1024
		printf "    server CPU per push %.1f us; PostgreSQL CPU per push %.1f us\n", (b - a) * 1000 / n, (pb - pa) * 1000 / n }'
}

RUNS=0
echo "Pushes: $PUSHES due at once, one mdm-pushd --once, one topic, $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SERVERS; do
	case $s in
	standin) bench_run "stand-in (Apache mod_http2 + FastCGI)" "$APNS_URL" "$W/apns" \
			apache2,apns_standin ;;
	nghttpd)
		command -v nghttpd >/dev/null 2>&1 || {
			echo "  against nghttpd: not installed (Debian nghttp2-server)"
			continue
		}
		port=$(stack_free_port 19643)
		# It answers a POST with the file at its path: an empty file per token.
		mkdir -p "$W/nghttpd/3/device"
		q "SELECT encode(push_token, 'hex') FROM mdm.enrollment WHERE udid LIKE 'PUSHBENCH-%'" |
			(cd "$W/nghttpd/3/device" && xargs touch) || stack_die "no nghttpd files"
		nghttpd --verify-client -d "$W/nghttpd" "$port" \
			"$W/apns/tls/server.key" "$W/apns/tls/server.pem" >"$W/nghttpd.log" 2>&1 &
		NGHTTPD_PID=$!
		stack_retry 50 stack_port_busy "$port" || stack_die "nghttpd did not start"
		bench_run "nghttpd (answers 200 with an empty file)" "https://127.0.0.1:$port" \
			"nghttpd --verify-client" nghttpd
		kill "$NGHTTPD_PID"
		NGHTTPD_PID=
		;;
	*) stack_die "BENCH_PUSH_SERVERS: standin or nghttpd, not $s" ;;
	esac
done
