# shellcheck shell=sh
# shellcheck disable=SC2034 # the functions set variables for their callers
#
# scripts/stack.sh: shell functions shared by scripts/demo.sh and
# tests/run.sh.  Sourced, not run.  POSIX sh.
#
# A "stack" lives in one directory DIR:
#   DIR/pgdata DIR/pgsock       PostgreSQL cluster, unix socket only
#   DIR/tls                     device CA, TLS CA, server and client certs
#   DIR/apache                  generated httpd.conf, logs, pid, runtime
#   DIR/sock                    spawn-fcgi sockets (mod_proxy_fcgi mode)
#
# Everything runs as one unprivileged user: `mdm` when we are root
# (PostgreSQL refuses to run as root), the current user otherwise.
#
# The caller sets STACK_ROOT (the repository root) before sourcing.

: "${STACK_ROOT:?STACK_ROOT must be set before sourcing stack.sh}"
STACK_PROG=${STACK_PROG:-stack}
STACK_PG_PORT=${STACK_PG_PORT:-5432}
STACK_POOL_SIZE=${STACK_POOL_SIZE:-2}
STACK_PROGRAMS="scep enroll checkin server acme"
APACHE_BIN=${APACHE_BIN:-/usr/sbin/apache2}
APACHE_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}

stack_die() {
	printf '%s: %s\n' "$STACK_PROG" "$*" >&2
	exit 1
}

stack_say() {
	printf '%s: %s\n' "$STACK_PROG" "$*"
}

# Prints the last lines of a log file to stderr, to explain a failure.
stack_show_log() {
	if [ -s "$1" ]; then
		printf '%s: --- last lines of %s ---\n' "$STACK_PROG" "$1" >&2
		tail -n "${2:-20}" "$1" >&2
	fi
}

stack_is_root() {
	[ "$(id -u)" = 0 ]
}

# Chooses the stack user, creating the system user `mdm` when root.
stack_init() {
	for tool in curl openssl sha256sum ss; do
		command -v "$tool" >/dev/null 2>&1 ||
			stack_die "$tool not found: run 'make deps' as root"
	done
	if stack_is_root; then
		STACK_USER=mdm
		if ! id -u "$STACK_USER" >/dev/null 2>&1; then
			useradd --system --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin "$STACK_USER" ||
				stack_die "cannot create system user $STACK_USER"
		fi
	else
		STACK_USER=$(id -un)
	fi
	STACK_GROUP=$(id -gn "$STACK_USER")
	pg_find_bindir
}

# Runs a command as the stack user.  From / so that a cwd the stack user
# cannot enter (e.g. /root) does not trip PostgreSQL's tools.
as_stack() {
	if stack_is_root; then
		(cd / && runuser -u "$STACK_USER" -- "$@")
	else
		"$@"
	fi
}

# Gives a directory tree we created to the stack user.
stack_own() {
	if stack_is_root; then
		chown -R "$STACK_USER:$STACK_GROUP" "$@"
	fi
}

# Fails clearly unless the stack user can reach each path.
stack_check_access() {
	for path in "$@"; do
		if [ -d "$path" ]; then
			as_stack test -x "$path" && as_stack test -r "$path" && continue
		else
			as_stack test -r "$path" && continue
		fi
		stack_die "user $STACK_USER cannot reach $path: every directory above it must be searchable by that user (chmod o+x), or move the checkout (e.g. under /srv or /tmp)"
	done
}

# A TCP port on 127.0.0.1 that nothing listens on, searching upwards.
stack_free_port() {
	# STACK_PORT_OFFSET (tests/run.sh: from its pid) keeps runs in
	# parallel, in other checkouts, from picking the same port at once.
	port=$(($1 + ${STACK_PORT_OFFSET:-0}))
	while [ "$port" -lt 65535 ]; do
		stack_port_busy "$port" || {
			echo "$port"
			return 0
		}
		port=$((port + 1))
	done
	stack_die "no free TCP port above $1"
}

stack_port_busy() {
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# stack_retry N CMD...: runs CMD until it succeeds, N times at most, 0.1 s
# apart; fails when it never did.
stack_retry() {
	sr_n=$1
	shift
	until "$@"; do
		sr_n=$((sr_n - 1))
		[ "$sr_n" -gt 0 ] || return 1
		sleep 0.1
	done
}

# stack_wait_gone PID SECONDS: waits for PID to exit; kills it after SECONDS.
stack_wait_gone() {
	stack_retry $(($2 * 10)) stack_gone "$1" && return 0
	kill -KILL "$1" 2>/dev/null
	sleep 0.2
	return 1
}

stack_gone() {
	! kill -0 "$1" 2>/dev/null
}

# ---------------------------------------------------------------- PostgreSQL

pg_find_bindir() {
	[ -n "${PG_BIN:-}" ] && return 0
	best=0
	for dir in /usr/lib/postgresql/*/bin; do
		[ -x "$dir/pg_ctl" ] || continue
		version=${dir#/usr/lib/postgresql/}
		version=${version%/bin}
		case $version in
		*[!0-9]*) continue ;;
		esac
		if [ "$version" -gt "$best" ]; then
			best=$version
			PG_BIN=$dir
		fi
	done
	[ -n "${PG_BIN:-}" ] && return 0
	if command -v pg_ctl >/dev/null 2>&1; then
		PG_BIN=$(dirname "$(command -v pg_ctl)")
		return 0
	fi
	stack_die "PostgreSQL server binaries not found: run 'make deps' as root (package postgresql)"
}

# pg_start DIR [test]: initialise (once) and start a cluster in DIR that
# listens on a unix socket in DIR/pgsock only; create role and database
# mdm.  With "test", durability is switched off for speed and mdm may
# create databases (the unit tests make their own).  Sets PG_DATA,
# PG_SOCK, PG_LOG, PG_CONNINFO.
pg_start() {
	PG_DATA=$1/pgdata
	PG_SOCK=$1/pgsock
	PG_LOG=$1/log/postgres.log
	[ "${#PG_SOCK}" -le 90 ] || stack_die "$PG_SOCK: too long for a unix socket path"
	mkdir -p "$PG_SOCK" "$1/log"
	stack_own "$PG_SOCK" "$1/log"
	if [ ! -f "$PG_DATA/PG_VERSION" ]; then
		mkdir -p "$PG_DATA"
		chmod 700 "$PG_DATA"
		stack_own "$PG_DATA"
		as_stack "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres \
			-E UTF8 --locale=C --no-sync >"$1/log/initdb.log" 2>&1 || {
			stack_show_log "$1/log/initdb.log"
			stack_die "initdb failed"
		}
		{
			echo "# Added by scripts/stack.sh: unix socket only."
			echo "listen_addresses = ''"
			echo "unix_socket_directories = '$PG_SOCK'"
			echo "port = $STACK_PG_PORT"
			if [ "${2:-}" = test ]; then
				echo "# Throw-away test cluster: durability off."
				echo "fsync = off"
				echo "synchronous_commit = off"
				echo "full_page_writes = off"
			fi
		} >>"$PG_DATA/postgresql.conf"
	fi
	as_stack "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 ||
		as_stack "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null || {
		stack_show_log "$PG_LOG"
		stack_die "PostgreSQL did not start"
	}
	pg_psql postgres -c "SELECT 1" >/dev/null ||
		stack_die "PostgreSQL does not answer on $PG_SOCK"
	pg_ensure "SELECT 1 FROM pg_roles WHERE rolname = 'mdm'" "CREATE ROLE mdm LOGIN"
	# The admin SQL API's role (sql/004_commands.sql); mdm, which owns the
	# schema, may hand it out (GRANT mdm_operator TO helpdesk).
	pg_ensure "SELECT 1 FROM pg_roles WHERE rolname = 'mdm_operator'" \
		"CREATE ROLE mdm_operator NOLOGIN" "GRANT mdm_operator TO mdm WITH ADMIN OPTION"
	pg_ensure "SELECT 1 FROM pg_database WHERE datname = 'mdm'" "CREATE DATABASE mdm OWNER mdm"
	if [ "${2:-}" = test ]; then
		# The unit tests make a database of their own per test.
		pg_psql postgres -c "ALTER ROLE mdm CREATEDB" >/dev/null ||
			stack_die "cannot let role mdm create databases"
	fi
	PG_CONNINFO="host=$PG_SOCK port=$STACK_PG_PORT dbname=mdm user=mdm"
	# The command a test can append stop/start/restart to.
	PG_CTL_CMD="$PG_BIN/pg_ctl -D $PG_DATA -l $PG_LOG -w"
	if stack_is_root; then
		PG_CTL_CMD="runuser -u $STACK_USER -- $PG_CTL_CMD"
	fi
}

# pg_ensure QUERY SQL...: runs the statements SQL unless QUERY answers 1.
pg_ensure() {
	[ "$(pg_psql postgres -c "$1")" = 1 ] && return 0
	shift
	for pe_sql in "$@"; do
		pg_psql postgres -c "$pe_sql" >/dev/null || stack_die "PostgreSQL refused: $pe_sql"
	done
}

# pg_psql DB ARGS...: psql as the superuser, unaligned, quiet.
pg_psql() {
	db=$1
	shift
	"$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h "$PG_SOCK" \
		-p "$STACK_PG_PORT" -U postgres -d "$db" "$@"
}

# pg_stop DIR: fast shutdown; not an error when nothing runs.
pg_stop() {
	[ -f "$1/pgdata/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$1/pgdata/postmaster.pid")
	as_stack "$PG_BIN/pg_ctl" -D "$1/pgdata" -m fast -w -t 30 stop \
		>/dev/null 2>&1
	[ -n "$pid" ] && stack_wait_gone "$pid" 10
	return 0
}

# ----------------------------------------------------------------------- TLS

# pki_self_signed BASE SUBJECT EXT: BASE.pem, self-signed, and BASE.key
# (RSA 2048, SHA-256, 10 years) with the extensions of section EXT of
# scripts/pki.cnf.  pki_issue BASE SUBJECT EXT ISSUERBASE DAYS [rsa|ec]: the
# same issued by ISSUERBASE.pem/.key, random serial (ec: a P-256 key).  Both keep an existing
# BASE, leave the key mode 600 and die with openssl's errors.
pki_self_signed() {
	[ -s "$1.pem" ] && [ -s "$1.key" ] && return 0
	pki_log=$(dirname "$1")/openssl.log
	openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
		-config "$STACK_ROOT/scripts/pki.cnf" -extensions "$3" -subj "$2" \
		-keyout "$1.key" -out "$1.pem" >"$pki_log" 2>&1 || pki_fail "$1"
	chmod 600 "$1.key"
}

pki_issue() {
	[ -s "$1.pem" ] && [ -s "$1.key" ] && return 0
	pki_log=$(dirname "$1")/openssl.log
	case ${6:-rsa} in
	ec) pki_newkey="-newkey ec -pkeyopt ec_paramgen_curve:P-256" ;;
	*) pki_newkey="-newkey rsa:2048" ;;
	esac
	# shellcheck disable=SC2086 # pki_newkey is two options and their values
	if ! openssl req -new $pki_newkey -nodes -config "$STACK_ROOT/scripts/pki.cnf" \
		-subj "$2" -keyout "$1.key" -out "$1.csr" >"$pki_log" 2>&1 ||
		! openssl x509 -req -sha256 -days "$5" -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" \
			-set_serial "0x$(openssl rand -hex 16)" -extfile "$STACK_ROOT/scripts/pki.cnf" \
			-extensions "$3" -out "$1.pem" >>"$pki_log" 2>&1; then
		pki_fail "$1"
	fi
	rm -f "$1.csr"
	chmod 600 "$1.key"
}

pki_fail() {
	stack_show_log "$pki_log"
	rm -f "$1.pem" "$1.key" "$1.csr"
	stack_die "openssl: cannot make $1.pem"
}

# tls_make DIR [clients]: creates (once) in DIR/tls
#   device-ca.pem/.key  "MDM Demo Device CA" (issues device identities)
#   tls-ca.pem/.key     "MDM Demo TLS CA" (issues the HTTPS certificate)
#   server.pem/.key     for 127.0.0.1 and localhost
# and with "clients" also
#   client.pem/.key     a device identity issued by the device CA
#   self.pem/.key       a self-signed client certificate
# Sets CA_CERT CA_KEY TLS_CA_CERT SERVER_CERT SERVER_KEY, and with
# clients CLIENT_CERT CLIENT_KEY CLIENT_FP SELF_CERT SELF_KEY SELF_FP.
tls_make() {
	t=$1/tls
	mkdir -p "$t"
	CA_CERT=$t/device-ca.pem
	CA_KEY=$t/device-ca.key
	TLS_CA_CERT=$t/tls-ca.pem
	SERVER_CERT=$t/server.pem
	SERVER_KEY=$t/server.key
	pki_self_signed "$t/device-ca" "/CN=MDM Demo Device CA" v3_ca
	pki_self_signed "$t/tls-ca" "/CN=MDM Demo TLS CA" v3_ca
	# ECDSA P-256 unless STACK_TLS_KEY=rsa: Apple devices take either, and
	# a handshake then costs Apache an EC signature, not an RSA-2048 one
	# (bench/run.sh; docs/CONFIG.md).
	case ${STACK_TLS_KEY:-ec} in
	rsa) pki_issue "$t/server" "/CN=127.0.0.1" v3_server "$t/tls-ca" 825 rsa ;;
	*) pki_issue "$t/server" "/CN=127.0.0.1" v3_server_ec "$t/tls-ca" 825 ec ;;
	esac
	if [ "${2:-}" = clients ]; then
		CLIENT_CERT=$t/client.pem
		CLIENT_KEY=$t/client.key
		SELF_CERT=$t/self.pem
		SELF_KEY=$t/self.key
		pki_issue "$t/client" "/CN=e2e-device" v3_client "$t/device-ca" 825
		pki_self_signed "$t/self" "/CN=e2e-self-signed" v3_self
		CLIENT_FP=$(tls_fingerprint "$CLIENT_CERT")
		SELF_FP=$(tls_fingerprint "$SELF_CERT")
	fi
	stack_own "$t"
}

# SHA-256 of the DER certificate, lowercase hex.
tls_fingerprint() {
	openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

# -------------------------------------------------------- spawn-fcgi pools

# pools_start DIR CGI_BIN: one spawn-fcgi pool per program, on
# DIR/sock/NAME.sock, inheriting every MDM_* variable of this shell.
pools_start() {
	mkdir -p "$1/sock" "$1/apache/logs" "$1/apache/run"
	stack_own "$1/sock" "$1/apache"
	for p in $STACK_PROGRAMS; do
		[ -x "$2/$p.fcgi" ] || stack_die "$2/$p.fcgi missing: run 'make all'"
		rm -f "$1/sock/$p.sock" "$1/apache/run/pool-$p.pid"
		: >>"$1/apache/logs/pool-$p.log"
		stack_own "$1/apache/logs/pool-$p.log"
		stack_spawn "$1/sock/$p.sock" "$STACK_POOL_SIZE" "$1/apache/run/pool-$p.pid" \
			"$1/apache/logs/pool-$p.log" "$2/$p.fcgi"
	done
}

# stack_spawn SOCKET COUNT PIDFILE LOG PROGRAM [ARG...]: COUNT copies of
# PROGRAM ARG... as the stack user, a spawn-fcgi pool on SOCKET (mode
# 0600), their pids in PIDFILE; spawn-fcgi's messages and the programs'
# stderr go to LOG.
stack_spawn() {
	command -v spawn-fcgi >/dev/null 2>&1 ||
		stack_die "spawn-fcgi not found: run 'make deps' as root"
	sp_sock=$1 sp_count=$2 sp_pidfile=$3 sp_log=$4
	shift 4
	# spawn-fcgi points its children's stderr at /dev/null: a shell in
	# between keeps the programs' log lines.
	# shellcheck disable=SC2016,SC2094 # the script's $0 is LOG, an argument
	as_stack spawn-fcgi -s "$sp_sock" -M 0600 -F "$sp_count" -P "$sp_pidfile" \
		-- /bin/sh -c 'exec "$@" 2>>"$0"' "$sp_log" "$@" >>"$sp_log" 2>&1 || {
		stack_show_log "$sp_log"
		stack_die "spawn-fcgi could not start $(basename "$1")"
	}
}

# pools_stop DIR: not an error when nothing runs.  Signals every pool
# first, then waits, so that the programs wind down together.
pools_stop() {
	STACK_PIDS=
	for p in $STACK_PROGRAMS; do
		stack_term "$1/apache/run/pool-$p.pid" "*$p.fcgi*"
		rm -f "$1/sock/$p.sock"
	done
	stack_wait_pids 10
}

# stack_term PIDFILE PATTERN...: sends TERM to each pid in PIDFILE (one a
# line; spawn-fcgi leaves the last without a newline) whose command line
# matches one of the case PATTERNs, since a pid may have been reused by
# another program; adds the pids to STACK_PIDS and removes PIDFILE.  Not
# an error when PIDFILE is absent.
stack_term() {
	[ -f "$1" ] || return 0
	st_file=$1
	shift
	while read -r st_pid || [ -n "$st_pid" ]; do
		st_args=$(ps -o args= -p "$st_pid" 2>/dev/null)
		for st_pattern in "$@"; do
			# shellcheck disable=SC2254 # the argument is a pattern
			case $st_args in
			$st_pattern)
				kill -TERM "$st_pid" 2>/dev/null
				STACK_PIDS="$STACK_PIDS $st_pid"
				break
				;;
			esac
		done
	done <"$st_file"
	rm -f "$st_file"
}

# stack_wait_pids SECONDS: waits for each pid in STACK_PIDS (stack_term)
# to exit, up to SECONDS each, then kills it; empties STACK_PIDS.
stack_wait_pids() {
	for st_pid in $STACK_PIDS; do
		stack_wait_gone "$st_pid" "$1"
	done
	STACK_PIDS=
}

# stack_sweep PREFIX: ends the stack user's processes whose command line
# starts with PREFIX (programs left behind by a crashed pool or Apache).
stack_sweep() {
	ps -u "$STACK_USER" -o pid= -o args= 2>/dev/null | while read -r pid args; do
		case $args in
		"$1"*)
			kill -TERM "$pid" 2>/dev/null
			stack_wait_gone "$pid" 5
			;;
		esac
	done
}

# ------------------------------------------------------------------- Apache

# The value of a variable as an Apache config argument in double quotes.
apache_quote() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# Escapes a value for the right-hand side of a sed s||| command.
sed_rhs() {
	printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# apache_fcgid_env FILE: the FcgidInitialEnv lines for the MDM_* (and
# sanitizer) variables of the environment.  mod_fcgid cuts every value to
# 127 bytes without a word (its INITENV_VAL_LEN); a longer MDM_ value (a
# conninfo listing several hosts, say) goes instead into the configuration
# file FILE ("key = value", docs/CONFIG.md), named by MDM_CONFIG.
apache_fcgid_env() {
	echo "# Generated by scripts/stack.sh from the environment."
	rm -f "$1"
	for name in $(env | sed -n 's/^\(MDM_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u) \
		ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS PKCS11_MODULE_PATH P11_KIT_SERVER_ADDRESS; do
		eval "isset=\${$name+x}"
		[ -n "$isset" ] || continue
		eval "value=\${$name}"
		# shellcheck disable=SC2154 # assigned by eval above
		if [ "${#value}" -gt 127 ]; then
			case $name in
			MDM_CONFIG | MDM_[!A-Z]* | [!M]*)
				stack_die "mod_fcgid would cut $name to 127 bytes" ;;
			esac
			[ -z "${MDM_CONFIG:-}" ] ||
				stack_die "mod_fcgid would cut $name to 127 bytes: put it in $MDM_CONFIG"
			key=$(printf '%s' "${name#MDM_}" | tr 'A-Z' 'a-z')
			printf '%s = %s\n' "$key" "$value" >>"$1"
			continue
		fi
		printf 'FcgidInitialEnv %s %s\n' "$name" "$(apache_quote "$value")"
	done
	if [ -f "$1" ]; then
		stack_own "$1"
		printf 'FcgidInitialEnv MDM_CONFIG %s\n' "$(apache_quote "$1")"
	fi
}

# apache_start DIR MODE CGI_BIN HTTPS_PORT HTTP_PORT
# MODE proxy: mod_proxy_fcgi to spawn-fcgi pools; fcgid: mod_fcgid.
# Needs tls_make DIR first.  Sets APACHE_CONF, APACHE_ERROR_LOG.
apache_start() {
	a=$1/apache
	case $2 in
	proxy) mode_define="# mod_proxy_fcgi to spawn-fcgi pools in $1/sock" ;;
	fcgid) mode_define="Define MDM_SITE_FCGID" ;;
	*) stack_die "apache_start: mode must be proxy or fcgid, not $2" ;;
	esac
	[ -x "$APACHE_BIN" ] || stack_die "$APACHE_BIN not found: run 'make deps' as root"
	apache_stop "$1"
	for port in "$4" "$5"; do
		stack_port_busy "$port" && stack_die "port 127.0.0.1:$port is in use"
	done
	mkdir -p "$a/run" "$a/logs" "$a/htdocs" "$a/fcgid" "$1/sock"
	APACHE_CONF=$a/httpd.conf
	APACHE_ERROR_LOG=$a/logs/error.log
	# The site file is read by the stack user: copy it beside the config.
	cp "$STACK_ROOT/apache-conf/mdm-site.conf" "$a/mdm-site.conf"
	apache_fcgid_env "$a/fcgid-long.conf" >"$a/fcgid-env.conf"
	sed -e "s|@APACHE_DIR@|$(sed_rhs "$a")|g" \
		-e "s|@MODULES@|$(sed_rhs "$APACHE_MODULES")|g" \
		-e "s|@MODE_DEFINE@|$(sed_rhs "$mode_define")|g" \
		-e "s|@HTTPS_PORT@|$4|g" -e "s|@HTTP_PORT@|$5|g" \
		-e "s|@CGI_BIN@|$(sed_rhs "$3")|g" \
		-e "s|@SOCK_DIR@|$(sed_rhs "$1/sock")|g" \
		-e "s|@SERVER_CERT@|$(sed_rhs "$SERVER_CERT")|g" \
		-e "s|@SERVER_KEY@|$(sed_rhs "$SERVER_KEY")|g" \
		-e "s|@CA_CERT@|$(sed_rhs "$CA_CERT")|g" \
		-e "s|@SITE_CONF@|$(sed_rhs "$a/mdm-site.conf")|g" \
		"$STACK_ROOT/apache-conf/httpd-standalone.conf.in" >"$APACHE_CONF" ||
		stack_die "cannot write $APACHE_CONF"
	stack_own "$a" "$1/sock"
	if [ "$2" = proxy ]; then
		pools_start "$1" "$3"
	fi
	httpd_start "$1" "$5" Apache
}

# httpd_start DIR PORT WHAT: Apache as the stack user with
# DIR/apache/httpd.conf, listening on 127.0.0.1:PORT within 10 s; dies
# showing its logs (DIR/apache/logs) otherwise.
httpd_start() {
	as_stack "$APACHE_BIN" -f "$1/apache/httpd.conf" -k start \
		>"$1/apache/logs/start.log" 2>&1 && stack_retry 100 stack_port_busy "$2" && return 0
	stack_show_log "$1/apache/logs/start.log"
	stack_show_log "$1/apache/logs/error.log"
	stack_die "$3 does not listen on 127.0.0.1:$2"
}

# apache_stop DIR: stops Apache (and with it mod_fcgid's programs) and the
# spawn-fcgi pools; not an error when nothing runs.
apache_stop() {
	httpd_stop "$1"
	pools_stop "$1"
}

# httpd_stop DIR: stops the Apache whose pid is in DIR/apache/run/httpd.pid.
httpd_stop() {
	STACK_PIDS=
	stack_term "$1/apache/run/httpd.pid" '*apache2*' '*httpd*'
	stack_wait_pids 15
}

# ----------------------------------------------------------------- lighttpd

LIGHTTPD_BIN=${LIGHTTPD_BIN:-/usr/sbin/lighttpd}

# lighttpd_start DIR CGI_BIN HTTPS_PORT HTTP_PORT CLIENT_CA_FILE: lighttpd
# (lighttpd-conf/) to spawn-fcgi pools for the programs in CGI_BIN, the
# same pools as Apache's proxy mode; CLIENT_CA_FILE is its
# ssl.verifyclient.ca-file (`mdmctl ca bundle`).  Needs tls_make DIR
# first.  Sets LIGHTTPD_CONF, LIGHTTPD_ERROR_LOG, LIGHTTPD_PID_FILE.
lighttpd_start() {
	l=$1/lighttpd
	[ -x "$LIGHTTPD_BIN" ] || stack_die "$LIGHTTPD_BIN not found: run 'make deps' as root"
	lighttpd_stop "$1"
	for port in "$3" "$4"; do
		stack_port_busy "$port" && stack_die "port 127.0.0.1:$port is in use"
	done
	[ -s "$5" ] || stack_die "lighttpd_start: no client CA file $5 (mdmctl ca bundle)"
	mkdir -p "$l/run" "$l/logs" "$l/upload" "$1/sock"
	LIGHTTPD_CONF=$l/lighttpd.conf
	LIGHTTPD_ERROR_LOG=$l/logs/error.log
	LIGHTTPD_PID_FILE=$l/run/lighttpd.pid
	cp "$STACK_ROOT/lighttpd-conf/mdm-site.conf" "$l/mdm-site.conf"
	# The certificate with its chain (lighttpd-conf/mdm-site.conf says why).
	cat "$SERVER_CERT" "$TLS_CA_CERT" >"$l/server-chain.pem" ||
		stack_die "cannot write $l/server-chain.pem"
	sed -e "s|@LIGHTTPD_DIR@|$(sed_rhs "$l")|g" \
		-e "s|@HTTPS_PORT@|$3|g" -e "s|@HTTP_PORT@|$4|g" \
		-e "s|@SOCK_DIR@|$(sed_rhs "$1/sock")|g" \
		-e "s|@SERVER_CERT@|$(sed_rhs "$l/server-chain.pem")|g" \
		-e "s|@SERVER_KEY@|$(sed_rhs "$SERVER_KEY")|g" \
		-e "s|@CLIENT_CA_FILE@|$(sed_rhs "$5")|g" \
		-e "s|@SITE_CONF@|$(sed_rhs "$l/mdm-site.conf")|g" \
		"$STACK_ROOT/lighttpd-conf/lighttpd-standalone.conf.in" >"$LIGHTTPD_CONF" ||
		stack_die "cannot write $LIGHTTPD_CONF"
	stack_own "$l" "$1/sock"
	as_stack "$LIGHTTPD_BIN" -tt -f "$LIGHTTPD_CONF" >"$l/logs/start.log" 2>&1 || {
		stack_show_log "$l/logs/start.log"
		stack_die "lighttpd refuses $LIGHTTPD_CONF"
	}
	pools_start "$1" "$2"
	# Without -D lighttpd forks into the background and writes its pid file.
	as_stack "$LIGHTTPD_BIN" -f "$LIGHTTPD_CONF" >>"$l/logs/start.log" 2>&1 &&
		stack_retry 100 stack_port_busy "$3" && return 0
	stack_show_log "$l/logs/start.log"
	stack_show_log "$LIGHTTPD_ERROR_LOG"
	stack_die "lighttpd does not listen on 127.0.0.1:$3"
}

# lighttpd_reload DIR: a graceful restart (SIGUSR1), which reads the
# configuration and the client CA file again; waits for the new process.
lighttpd_reload() {
	lr_pid=$(cat "$1/lighttpd/run/lighttpd.pid" 2>/dev/null) || return 1
	kill -USR1 "$lr_pid" || return 1
	# The same pid goes on (lighttpd re-executes nothing); give it a moment.
	sleep 1
}

# lighttpd_stop DIR: stops lighttpd and the spawn-fcgi pools; not an error
# when nothing runs.
lighttpd_stop() {
	STACK_PIDS=
	stack_term "$1/lighttpd/run/lighttpd.pid" '*lighttpd*'
	stack_wait_pids 15
	pools_stop "$1"
}

# stack_wait_health URL...: waits up to STACK_WAIT seconds (default 30)
# for each URL to answer 200 (over HTTPS trusting TLS_CA_CERT).
stack_wait_health() {
	for url in "$@"; do
		stack_retry $((${STACK_WAIT:-30} * 10)) stack_http_ok "$url" || {
			stack_say "$url answers $code, not 200" >&2
			return 1
		}
	done
}

# stack_http_ok URL: whether URL answers 200 within 5 s; its status in code.
stack_http_ok() {
	code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 5 \
		--cacert "$TLS_CA_CERT" "$1" 2>/dev/null)
	[ "$code" = 200 ]
}
