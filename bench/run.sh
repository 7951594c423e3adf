#!/bin/sh
# bench/run.sh BUILD: SCEP enrollments per second, in one run, beside
#   - the floor OpenSSL sets: one enrollment costs the server three
#     RSA-2048 private-key operations (unwrap the request's content key,
#     sign the certificate, sign the CertRep), so `openssl speed rsa2048`
#     sign/s x cores / 3 is the most any server could do here;
#   - micromdm's scepserver (Debian package scep) on the same machine,
#     same client, same request count, its default config but a
#     2048-bit CA key.
# Our stack runs as `make test` runs it (PostgreSQL, Apache, spawn-fcgi,
# mod_proxy_fcgi); scepserver runs in a private network namespace (it
# binds every interface).  BENCH_N requests, BENCH_CONC at a time.
#
# Then command-channel connects per second (bench/command_bench.c:
# BENCH_DEVICES devices, each one connect of Idle -> its command ->
# Acknowledged -> empty 200 on one new TLS connection, BENCH_CONC at a
# time), beside
#   - PostgreSQL's own ceiling on the same cluster: pgbench's built-in
#     simple-update script (-N), BENCH_CONC clients, extended protocol as
#     libpq's PQexecParams; one connect commits two write transactions,
#     so its tps / 2 is the most connects any code could commit here;
#   - what TLS alone allows: the same full handshakes with the same
#     client and identities, each with one GET that Apache answers 404
#     itself (measured by command_bench), and the bound one signature per
#     handshake with the server key (ECDSA P-256 as the stack makes it, or
#     RSA-2048 with STACK_TLS_KEY=rsa) puts on that: sign/s x cores.
#
# Both run first on a database of 1,000 devices (bench/scale.sql: devices
# with their certificates, enrollments, check-ins, a queue of 100 commands
# and 100 answered), then again once the same script has grown it to
# BENCH_SCALE devices (default 1000000, with 100,000 commands queued and
# as many answered: some 3 minutes here and 6 GB under TMPDIR; 0 skips
# it), each figure then beside its ratio to the one at 1,000 (issue 15:
# at most 1.2x).  After the runs: every FastCGI
# worker's memory (VmRSS, and PSS anonymous and file-backed, against 8 MiB),
# and the query plans of the hot paths at the larger scale: a short pass
# with auto_explain on, summed up by bench/plans.sh, which names every
# sequential scan of a big table (BENCH_PLANS=FILE: each statement and its
# access paths there, the plans as logged in FILE.log).  Then the pushes
# (bench/push.sh).
#
# BENCH_PERF=DIR: each timed window (SCEP, connects) is also recorded with
# linux-perf on the server processes (bench/perf-window.sh), and where
# their time went is written to DIR/scep.txt and DIR/connect.txt (top
# lines printed here).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cd "$ROOT" || exit 1
B=$ROOT/$BUILD
N=${BENCH_N:-400}
CONC=${BENCH_CONC:-8}
DEVICES=${BENCH_DEVICES:-200}
PGBENCH_SECONDS=${BENCH_PGBENCH_SECONDS:-5}
SCALE=${BENCH_SCALE:-1000000}
CORES=$(nproc)
STACK_ROOT=$ROOT
STACK_PROG=bench
# shellcheck source=scripts/stack.sh
. "$ROOT/scripts/stack.sh"
# acme.fcgi starts with Apple's attestation root (config acme_attest_root_file).
MDM_ACME_ATTEST_ROOT_FILE=${MDM_ACME_ATTEST_ROOT_FILE:-$ROOT/share/apple-enterprise-attestation-root.pem}
export MDM_ACME_ATTEST_ROOT_FILE
# shellcheck source=tests/apns/apns.sh
. "$ROOT/tests/apns/apns.sh"
stack_init

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mdm-bench.XXXXXX") || exit 1
chmod 755 "$TMP"
stack_own "$TMP"
cleanup() {
	[ -d "$TMP/apns" ] && apns_stop "$TMP/apns"
	apache_stop "$TMP"
	stack_sweep "$TMP/"
	pg_stop "$TMP"
	[ -n "${SCEPSERVER_PID:-}" ] && kill "$SCEPSERVER_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The floor.
sign_s=$(openssl speed -seconds 3 rsa2048 2>/dev/null |
	awk '/^rsa 2048 bits/ { print $6 }')
floor=$(awk -v s="$sign_s" -v c="$CORES" 'BEGIN { printf "%.0f", s * c / 3 }')
floor_cpu=$(awk -v s="$sign_s" 'BEGIN { printf "%.2f", 3000 / s }')

# Our stack.
pg_start "$TMP" bench
MDM_DB=$PG_CONNINFO
# The product's default level, so that logging is part of the cost
# (BENCH_LOG_LEVEL=warn measures without a line per request).
MDM_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
MDM_SCEP_CHALLENGE="bench-static-challenge-$$"
export MDM_DB MDM_LOG_LEVEL MDM_SCEP_CHALLENGE
"$B/bin/mdmctl" db migrate >/dev/null || stack_die "migrate failed"
mkdir -p "$TMP/ca"
"$B/bin/mdmctl" ca init --subject "/CN=Bench CA" --key-out "$TMP/ca/ca.key" >/dev/null ||
	stack_die "ca init failed"
stack_own "$TMP/ca"
tls_make "$TMP"
mkdir -p "$TMP/cgi-bin"
for p in $STACK_PROGRAMS; do cp "$B/cgi-bin/$p.fcgi" "$TMP/cgi-bin/"; done
chmod 755 "$TMP/cgi-bin" "$TMP"/cgi-bin/*.fcgi
stack_own "$TMP/cgi-bin"
https_port=$(stack_free_port 19443)
http_port=$(stack_free_port 19080)
STACK_POOL_SIZE=$CORES
apache_start "$TMP" proxy "$TMP/cgi-bin" "$https_port" "$http_port"
stack_wait_health "http://127.0.0.1:$http_port/scep/health" || stack_die "stack not healthy"
# perf_window NAME MATCH: the next bench's timed window recorded into
# $BENCH_PERF/NAME.* (processes of the stack user matching MATCH), when
# BENCH_PERF is set; perf_top NAME prints the top of what it found.
perf_window() {
	[ -n "${BENCH_PERF:-}" ] || return 0
	mkdir -p "$BENCH_PERF"
	BENCH_WINDOW="sh $ROOT/bench/perf-window.sh"
	BENCH_PERF_OUT=$BENCH_PERF/$1 BENCH_PERF_MATCH=$2 BENCH_PERF_USER=$STACK_USER
	export BENCH_WINDOW BENCH_PERF_OUT BENCH_PERF_MATCH BENCH_PERF_USER
}
perf_top() {
	[ -n "${BENCH_PERF:-}" ] || return 0
	unset BENCH_WINDOW
	echo "  where the servers' time went ($BENCH_PERF/$1.txt):"
	sed -n '1,/^# by function/p' "$BENCH_PERF/$1.txt" | sed '$d' | head -12 | sed 's/^/    /'
}

# field NAME TEXT: the value of NAME=value in the bench line TEXT.
field() {
	printf '%s\n' "$2" | awk -v k="$1=" '{
		for (i = 1; i <= NF; i++)
			if (index($i, k) == 1) { print substr($i, length(k) + 1); exit } }'
}

# Seconds since boot, to a hundredth (date has no sub-second POSIX format).
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# seed N: the database grown to N devices by bench/scale.sql (N / 10
# commands queued, as many answered); SEED_S is how long it took, SEED_WHAT
# what the database then holds.
seed() {
	t0=$(uptime_s)
	pg_psql mdm -v n="$1" -f "$ROOT/bench/scale.sql" >"$TMP/log/scale-$1.log" 2>&1 || {
		stack_show_log "$TMP/log/scale-$1.log"
		stack_die "bench/scale.sql -v n=$1 failed"
	}
	SEED_S=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.0f", b - a }')
	SEED_WHAT=$(pg_psql mdm -F ' ' -c "SELECT devices, queued, finished,
		pg_size_pretty(pg_database_size(current_database())) FROM bench.scale" |
		awk '{ printf "%d devices with certificates and enrollments, %d commands queued, %d answered; %s %s", $1, $2, $3, $4, $5 }')
}

# stack_pids POOL: this stack's processes only (the stack user may run
# other clusters and Apaches, a test's or a developer's): pm PostgreSQL's
# postmaster, ap Apache's parent, roots both and POOL's workers.
stack_pids() {
	pm=$(head -n 1 "$PG_DATA/postmaster.pid")
	# Apache's parent, or lighttpd (one process) while it serves instead.
	ap=$(cat "$TMP/apache/run/httpd.pid" 2>/dev/null || cat "$TMP/lighttpd/run/lighttpd.pid")
	roots="$pm $ap $(tr '\n' ' ' <"$TMP/apache/run/pool-$1.pid")"
}

# scep_run NAME: SCEP enrollments on the stack, after a warm-up (which
# loads the CA once per process); the bench line in ours.
scep_run() {
	"$B/bench/scep_bench" "http://127.0.0.1:$http_port/scep" "$MDM_SCEP_CHALLENGE" 16 "$CONC" \
		>/dev/null || stack_die "warm-up failed"
	stack_pids scep
	pids=$({
		echo "$roots"
		pgrep -P "$pm"
		pgrep -P "$ap"
	} | tr '\n' ' ')
	perf_window "$1" 'scep.fcgi|apache2|postgres'
	# shellcheck disable=SC2086 # a list of pids
	ours=$("$B/bench/scep_bench" "http://127.0.0.1:$http_port/scep" "$MDM_SCEP_CHALLENGE" "$N" \
		"$CONC" $pids) || stack_die "our run failed: $ours"
	unset BENCH_WINDOW
}

# connect_run NAME: command-channel connects (fresh devices each time:
# command_bench names them BENCH-<pid>-<time>-<n>); the bench lines in cmd.
connect_run() {
	perf_window "$1" "server.fcgi|${BENCH_WEB:-apache2}|postgres"
	stack_pids server
	# shellcheck disable=SC2086 # a list of pids
	cmd=$("$B/bench/command_bench" "https://127.0.0.1:$https_port" "$TLS_CA_CERT" "$DEVICES" \
		"$CONC" "$STACK_USER" $roots) || stack_die "command channel run failed: $cmd"
}

# The figures at 1,000 devices: the database as bench/scale.sql makes it.
seed 1000
echo "Database: $SEED_WHAT (bench/scale.sql, $SEED_S s); log_level $MDM_LOG_LEVEL"
scep_run scep

# micromdm's scepserver, when installed.
theirs="not installed"
if command -v scepserver >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1; then
	mkdir -p "$TMP/scepserver"
	(cd "$TMP/scepserver" && scepserver ca -init -depot depot -keySize 2048 >/dev/null 2>&1)
	# shellcheck disable=SC2016 # the inner script's $1.. are its own arguments
	theirs=$(unshare -n sh -c '
		ip link set lo up
		cd "$1" && scepserver -depot depot -port 8099 -challenge bench-challenge \
			>scepserver.log 2>&1 &
		pid=$!
		i=0
		until curl -sf "http://127.0.0.1:8099/scep?operation=GetCACaps" >/dev/null; do
			i=$((i + 1)); [ $i -lt 50 ] || exit 1; sleep 0.1
		done
		"$2" http://127.0.0.1:8099/scep bench-challenge 16 "$4" >/dev/null
		"$2" http://127.0.0.1:8099/scep bench-challenge "$3" "$4" "$pid"
		rc=$?
		kill $pid
		exit $rc
	' sh "$TMP/scepserver" "$B/bench/scep_bench" "$N" "$CONC")
	# scep_bench exits 1 when any reply was not SUCCESS; its line says how many were.
	[ -n "$theirs" ] || theirs="did not run (see $TMP/scepserver/scepserver.log)"
fi

rate() { field per_second "$1"; }
cpu() { field cpu_ms_per_enrollment "$1"; }
r_ours=$(rate "$ours")
echo "SCEP PKCSReq, RSA-2048, $N enrollments, $CONC concurrent, $CORES cores"
echo "  openssl speed rsa2048: $sign_s sign/s per core -> floor $floor enrollments/s, $floor_cpu ms CPU each"
echo "  mdm scep.fcgi:         $ours"
awk -v r="$r_ours" -v f="$floor" -v c="$(cpu "$ours")" -v fc="$floor_cpu" 'BEGIN {
	printf "    ratio to the floor: %.2f of the rate; CPU per enrollment %.2fx the floor\n", r / f, c / fc }'
perf_top scep
echo "  micromdm scepserver:   $theirs"
r_theirs=$(rate "$theirs")
if [ -n "$r_theirs" ]; then
	awk -v a="$r_ours" -v b="$r_theirs" -v f="$floor" 'BEGIN {
		printf "    ratio to the floor: %.2f; mdm / scepserver: %.2f\n", b / f, a / b }'
fi
scep_1k=$(cpu "$ours")

# The command channel, on the same stack.
connect_run connect

# PostgreSQL's ceiling: a scratch database, the same client count.
pgb() { as_stack "$PG_BIN/pgbench" -h "$PG_SOCK" -p "$STACK_PG_PORT" -U postgres "$@"; }
pg_psql postgres -c "CREATE DATABASE pgbench" >/dev/null || stack_die "cannot create pgbench"
pgb -i -q -s 1 pgbench >"$TMP/log/pgbench-init.log" 2>&1 || {
	stack_show_log "$TMP/log/pgbench-init.log"
	stack_die "pgbench -i failed"
}
tps=$(pgb -N -M extended -c "$CONC" -j "$CORES" -T "$PGBENCH_SECONDS" pgbench 2>/dev/null |
	awk '/^tps = / { printf "%.0f", $3 }')
[ -n "$tps" ] || stack_die "pgbench did not run"
pg_ceiling=$(awk -v t="$tps" 'BEGIN { printf "%.0f", t / 2 }')
# The server key's signature is the handshake's one private-key operation.
if openssl x509 -in "$SERVER_CERT" -noout -text | grep -q 'id-ecPublicKey'; then
	tls_key="ECDSA P-256"
	tls_sign_s=$(openssl speed -seconds 2 ecdsap256 2>/dev/null |
		awk '/ecdsa \(nistp256\)/ { print $(NF - 1) }')
else
	tls_key="RSA-2048"
	tls_sign_s=$sign_s
fi
tls_ceiling=$(awk -v s="$tls_sign_s" -v c="$CORES" 'BEGIN { printf "%.0f", s * c }')
r_cmd=$(field per_second "$cmd")
echo "Command channel, $DEVICES devices (EC P-256 identities), one connect each, $CONC concurrent"
printf '%s\n' "$cmd" | sed '1s/^/  mdm server.fcgi: /; 2,$s/^/    /'
echo "  pgbench -N (simple-update), $CONC clients, same cluster: $tps tps -> ceiling $pg_ceiling connects/s"
echo "    a connect = 2 requests, each one statement and one transaction"
echo "    (mdm.command_exchange, sql/020): 2 round trips; pgbench -N commits 1"
echo "    transaction in 5 round trips"
r_hs=$(field handshake_only_per_second "$cmd")
c_srv=$(field cpu_ms_per_connect "$cmd")
c_cli=$(field client_cpu_ms_per_connect "$cmd")
awk -v r="$r_cmd" -v t="$pg_ceiling" -v h="$r_hs" -v l="$tls_ceiling" -v k="$tls_key" -v s="$c_srv" \
	-v c="$c_cli" -v n="$CORES" 'BEGIN {
	printf "    ratio to the PostgreSQL ceiling: %.2f\n", r / t
	printf "  CPU: server %.2f ms + this client %.2f ms per connect on %d cores -> at most %.0f/s here; ratio %.2f\n", s, c, n, n * 1000 / (s + c), r / (n * 1000 / (s + c))
	printf "  TLS alone (full handshake + a static 404, same client): %.0f/s; ratio %.2f\n", h, r / h
	printf "    (bound: one %s sign per handshake, the server key -> %d/s)\n", k, l }'
# connect_cpu TEXT: the four server CPU figures per connect of a bench run.
connect_cpu() {
	echo "$(field cpu_ms_per_connect "$1") $(field cpu_ms_per_connect_resumed "$1")" \
		"$(field cpu_ms_per_idle "$1") $(field cpu_ms_per_idle_resumed "$1")"
}
connect_1k=$(connect_cpu "$cmd")
# The goal (issue 15): a device connect in at most 1 ms of server CPU.
printf '%s\n' "$connect_1k" | awk '{
	printf "  server CPU per connect against the goal of 1.0 ms (goal / measured):\n"
	printf "    with a command, full handshake %.2f ms (%.2f); TLS session resumed %.2f ms (%.2f)\n", $1, 1 / $1, $2, 1 / $2
	printf "    nothing due,    full handshake %.2f ms (%.2f); TLS session resumed %.2f ms (%.2f)\n", $3, 1 / $3, $4, 1 / $4 }'
perf_top connect

# The same connects behind lighttpd instead of Apache (lighttpd-conf/, the
# same pools and database): what the web server's share of a connect is.
if [ -x "$LIGHTTPD_BIN" ]; then
	apache_stop "$TMP"
	"$B/bin/mdmctl" ca bundle --out "$TMP/ca/client-ca.pem" >/dev/null ||
		stack_die "mdmctl ca bundle failed"
	stack_own "$TMP/ca"
	lighttpd_start "$TMP" "$TMP/cgi-bin" "$https_port" "$http_port" "$TMP/ca/client-ca.pem"
	stack_wait_health "http://127.0.0.1:$http_port/scep/health" || stack_die "lighttpd not healthy"
	BENCH_WEB=lighttpd
	export BENCH_WEB
	connect_run connect-lighttpd
	unset BENCH_WEB
	echo "The same behind lighttpd $("$LIGHTTPD_BIN" -v 2>/dev/null | sed -n 's/^lighttpd\/\([^ ]*\).*/\1/p')" \
		"(lighttpd-conf/, the same pools and database)"
	printf '%s\n' "$cmd" | sed '1s/^/  mdm server.fcgi: /; 2,$s/^/    /'
	echo "$connect_1k $(connect_cpu "$cmd")" | awk '{
		printf "  server CPU per connect behind lighttpd against the goal of 1.0 ms (goal / measured; lighttpd / Apache):\n"
		printf "    with a command, full handshake %.2f ms (%.2f; %.2fx); TLS session resumed %.2f ms (%.2f; %.2fx)\n", $5, 1 / $5, $5 / $1, $6, 1 / $6, $6 / $2
		printf "    nothing due,    full handshake %.2f ms (%.2f; %.2fx); TLS session resumed %.2f ms (%.2f; %.2fx)\n", $7, 1 / $7, $7 / $3, $8, 1 / $8, $8 / $4 }'
	perf_top connect-lighttpd
	lighttpd_stop "$TMP"
	apache_start "$TMP" proxy "$TMP/cgi-bin" "$https_port" "$http_port"
	stack_wait_health "http://127.0.0.1:$http_port/scep/health" || stack_die "stack not healthy"
fi

# The same at BENCH_SCALE devices (issue 15: within 1.2x of the figures at
# 1,000).  The generation runs while the stack idles; the FastCGI programs
# keep their connections, so their plans are made again only where
# ANALYZE changed the statistics, as a running server's would be.
if [ "$SCALE" -gt 1000 ]; then
	seed "$SCALE"
	echo "At $SCALE devices: $SEED_WHAT (bench/scale.sql grew it in $SEED_S s)"
	scep_run "scep-$SCALE"
	echo "  mdm scep.fcgi:   $ours"
	awk -v c="$(cpu "$ours")" -v k="$scep_1k" 'BEGIN {
		printf "    CPU per enrollment %.2f ms: %.2fx the figure at 1,000 (goal <= 1.2x)\n", c, c / k }'
	perf_top "scep-$SCALE"
	connect_run "connect-$SCALE"
	printf '%s\n' "$cmd" | sed '1s/^/  mdm server.fcgi: /; 2,$s/^/    /'
	echo "$connect_1k $(connect_cpu "$cmd")" | awk '{
		printf "  server CPU per connect, and its ratio to the figure at 1,000 (goal <= 1.2x):\n"
		printf "    with a command, full handshake %.2f ms (%.2fx); TLS session resumed %.2f ms (%.2fx)\n", $5, $5 / $1, $6, $6 / $2
		printf "    nothing due,    full handshake %.2f ms (%.2fx); TLS session resumed %.2f ms (%.2fx)\n", $7, $7 / $3, $8, $8 / $4 }'
	perf_top "connect-$SCALE"
fi

# Memory of every FastCGI worker after the runs: VmRSS, and what it is made
# of by PSS (anonymous: its heap, its own; file-backed: library and
# program pages, shared with the other workers, which PSS splits between
# them).  The largest worker of each program, beside the goal (issue 15).
echo "FastCGI workers after the runs, the largest of each program's (goal: under 8 MiB RSS)"
for p in $STACK_PROGRAMS; do
	pidfile=$TMP/apache/run/pool-$p.pid
	[ -f "$pidfile" ] || continue
	# spawn-fcgi ends its pid file without a newline.
	for pid in $(tr '\n' ' ' <"$pidfile"); do
		[ -r "/proc/$pid/smaps_rollup" ] || continue
		awk '{ v[$1] = $2 } END { print v["VmRSS:"] + 0, v["Pss:"] + 0, v["Pss_Anon:"] + 0,
			v["Pss_File:"] + 0, v["Pss_Shmem:"] + 0 }' "/proc/$pid/status" "/proc/$pid/smaps_rollup"
	done | awk -v p="$p" '
		{ n++; if ($1 > r) { r = $1; pss = $2; a = $3; f = $4; s = $5 } }
		END {
			if (n == 0) { printf "  %s.fcgi: no worker running\n", p; exit }
			printf "  %-13s %d workers: RSS %.1f MiB (goal 8: ratio %.2f); PSS %.1f MiB = %.1f anonymous + %.1f file-backed", p ".fcgi", n, r / 1024, 8 * 1024 / r, pss / 1024, a / 1024, f / 1024
			if (s > 0) printf " + %.1f shared memory", s / 1024
			printf "\n" }'
done

# Query plans on the hot paths, at the largest scale measured: a short
# pass of its own after the timed runs, with auto_explain logging every
# plan (log_min_duration 0, nested statements too: triggers, functions).
# The programs keep their PostgreSQL sessions and session_preload_libraries
# acts at connection, so Apache and the pools start again first; the app=
# in each log line names the program (application_name).  enroll.fcgi
# serves nothing here: the bench stack has no profile signer or push topic.
plans_scale=$SCALE
[ "$SCALE" -gt 1000 ] || plans_scale=1000
pg_psql postgres -c "ALTER SYSTEM SET log_line_prefix = '%m [%p] app=%a '" \
	-c "SELECT pg_reload_conf()" >/dev/null || stack_die "log_line_prefix not set"
for s in "session_preload_libraries = 'auto_explain'" "auto_explain.log_min_duration = 0" \
	"auto_explain.log_nested_statements = on" "auto_explain.log_format = text"; do
	pg_psql postgres -c "ALTER DATABASE mdm SET $s" >/dev/null || stack_die "cannot SET $s"
done
plans_from=$(wc -c <"$PG_LOG")
apache_start "$TMP" proxy "$TMP/cgi-bin" "$https_port" "$http_port"
stack_wait_health "http://127.0.0.1:$http_port/scep/health" || stack_die "stack not healthy"
"$B/bench/scep_bench" "http://127.0.0.1:$http_port/scep" "$MDM_SCEP_CHALLENGE" 8 2 \
	>/dev/null || stack_die "plan pass: SCEP failed"
# A one-time challenge is spent in the database, the static one is not.
for i in 1 2; do
	otc=$(pg_psql mdm -c "SELECT mdm.scep_challenge_new()") || stack_die "no challenge"
	"$B/bench/scep_bench" "http://127.0.0.1:$http_port/scep" "$otc" 1 1 >/dev/null ||
		stack_die "plan pass: SCEP with a one-time challenge failed ($i)"
done
"$B/bench/command_bench" "https://127.0.0.1:$https_port" "$TLS_CA_CERT" 4 2 "$STACK_USER" \
	>/dev/null || stack_die "plan pass: command channel failed"
for s in session_preload_libraries auto_explain.log_min_duration \
	auto_explain.log_nested_statements auto_explain.log_format; do
	pg_psql postgres -c "ALTER DATABASE mdm RESET $s" >/dev/null || stack_die "cannot RESET $s"
done
pg_psql postgres -c "ALTER SYSTEM RESET log_line_prefix" -c "SELECT pg_reload_conf()" \
	>/dev/null || stack_die "log_line_prefix not reset"
echo "Query plans at $plans_scale devices (auto_explain: every statement of 10 enrollments, 2 with one-time challenges, and 4 devices' check-ins and connects, after the timed runs)"
sh "$ROOT/bench/plans.sh" "$PG_LOG" "$plans_from" "${BENCH_PLANS:-/dev/null}"
[ -z "${BENCH_PLANS:-}" ] || tail -c +"$((plans_from + 1))" "$PG_LOG" >"$BENCH_PLANS.log"

# Pushes: bin/mdm-pushd over HTTP/2, in a script of its own (BENCH_PUSHES).
sh "$ROOT/bench/push.sh" "$BUILD" || stack_die "push bench failed"
