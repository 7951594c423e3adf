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
STACK_PROGRAMS="scep enroll checkin server"
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
	port=$1
	while [ "$port" -lt 65535 ]; do
		if [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
			echo "$port"
			return 0
		fi
		port=$((port + 1))
	done
	stack_die "no free TCP port above $1"
}

stack_port_busy() {
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# Waits up to $2 seconds for pid $1 to exit; then kills it.
stack_wait_gone() {
	i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt $(($2 * 10)) ]; then
			kill -KILL "$1" 2>/dev/null
			sleep 0.2
			return 1
		fi
		sleep 0.1
	done
	return 0
}

# ---------------------------------------------------------------- PostgreSQL

pg_find_bindir() {
	if [ -n "${PG_BIN:-}" ]; then
		return 0
	fi
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
	if [ "${#PG_SOCK}" -gt 90 ]; then
		stack_die "$PG_SOCK: too long for a unix socket path"
	fi
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
	if ! as_stack "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
		as_stack "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
			start >/dev/null || {
			stack_show_log "$PG_LOG"
			stack_die "PostgreSQL did not start"
		}
	fi
	pg_psql postgres -c "SELECT 1" >/dev/null ||
		stack_die "PostgreSQL does not answer on $PG_SOCK"
	if [ "$(pg_psql postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'mdm'")" != 1 ]; then
		pg_psql postgres -c "CREATE ROLE mdm LOGIN" >/dev/null ||
			stack_die "cannot create role mdm"
	fi
	# The admin SQL API's role (sql/004_commands.sql); mdm, which owns the
	# schema, may hand it out (GRANT mdm_operator TO helpdesk).
	if [ "$(pg_psql postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'mdm_operator'")" != 1 ]; then
		pg_psql postgres -c "CREATE ROLE mdm_operator NOLOGIN" \
			-c "GRANT mdm_operator TO mdm WITH ADMIN OPTION" >/dev/null ||
			stack_die "cannot create role mdm_operator"
	fi
	if [ "$(pg_psql postgres -c "SELECT 1 FROM pg_database WHERE datname = 'mdm'")" != 1 ]; then
		pg_psql postgres -c "CREATE DATABASE mdm OWNER mdm" >/dev/null ||
			stack_die "cannot create database mdm"
	fi
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
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		stack_wait_gone "$pid" 10
	fi
	return 0
}

# ----------------------------------------------------------------------- TLS

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
	cnf=$t/openssl.cnf
	cat >"$cnf" <<'EOF'
# Written by scripts/stack.sh.
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_self]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
EOF
	CA_CERT=$t/device-ca.pem
	CA_KEY=$t/device-ca.key
	TLS_CA_CERT=$t/tls-ca.pem
	SERVER_CERT=$t/server.pem
	SERVER_KEY=$t/server.key
	tls_self_signed "$t/device-ca" "MDM Demo Device CA" v3_ca
	tls_self_signed "$t/tls-ca" "MDM Demo TLS CA" v3_ca
	tls_issue "$t/server" "127.0.0.1" v3_server "$t/tls-ca"
	if [ "${2:-}" = clients ]; then
		CLIENT_CERT=$t/client.pem
		CLIENT_KEY=$t/client.key
		SELF_CERT=$t/self.pem
		SELF_KEY=$t/self.key
		tls_issue "$t/client" "e2e-device" v3_client "$t/device-ca"
		tls_self_signed "$t/self" "e2e-self-signed" v3_self
		CLIENT_FP=$(tls_fingerprint "$CLIENT_CERT")
		SELF_FP=$(tls_fingerprint "$SELF_CERT")
	fi
	chmod 600 "$t"/*.key
	stack_own "$t"
}

tls_self_signed() {
	[ -s "$1.pem" ] && [ -s "$1.key" ] && return 0
	openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
		-config "$cnf" -extensions "$3" -subj "/CN=$2" \
		-keyout "$1.key" -out "$1.pem" 2>"$t/openssl.log" || {
		stack_show_log "$t/openssl.log"
		stack_die "openssl: cannot create $1.pem"
	}
}

# tls_issue BASE CN EXTENSIONS ISSUERBASE
tls_issue() {
	[ -s "$1.pem" ] && [ -s "$1.key" ] && return 0
	if ! openssl req -new -newkey rsa:2048 -nodes -config "$cnf" \
		-subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>"$t/openssl.log" ||
		! openssl x509 -req -sha256 -days 825 -in "$1.csr" \
			-CA "$4.pem" -CAkey "$4.key" \
			-set_serial "0x$(openssl rand -hex 16)" \
			-extfile "$cnf" -extensions "$3" -out "$1.pem" \
			2>"$t/openssl.log"; then
		stack_show_log "$t/openssl.log"
		stack_die "openssl: cannot issue $1.pem"
	fi
	rm -f "$1.csr"
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
	command -v spawn-fcgi >/dev/null 2>&1 ||
		stack_die "spawn-fcgi not found: run 'make deps' as root"
	for p in $STACK_PROGRAMS; do
		[ -x "$2/$p.fcgi" ] || stack_die "$2/$p.fcgi missing: run 'make all'"
		rm -f "$1/sock/$p.sock" "$1/apache/run/pool-$p.pid"
		: >>"$1/apache/logs/pool-$p.log"
		stack_own "$1/apache/logs/pool-$p.log"
		# spawn-fcgi points its children's stderr at /dev/null: a shell
		# in between keeps the programs' log lines, in pool-<prog>.log.
		as_stack spawn-fcgi -s "$1/sock/$p.sock" -M 0600 \
			-F "$STACK_POOL_SIZE" -P "$1/apache/run/pool-$p.pid" \
			-- /bin/sh -c 'exec "$0" 2>>"$1"' "$2/$p.fcgi" \
			"$1/apache/logs/pool-$p.log" >>"$1/apache/logs/pool-$p.log" 2>&1 || {
			stack_show_log "$1/apache/logs/pool-$p.log"
			stack_die "spawn-fcgi could not start $p.fcgi"
		}
	done
}

# pools_stop DIR: not an error when nothing runs.  Signals every pool
# first, then waits, so that the programs wind down together.
pools_stop() {
	pids=
	for p in $STACK_PROGRAMS; do
		f=$1/apache/run/pool-$p.pid
		[ -f "$f" ] || continue
		# spawn-fcgi leaves the last line without a newline.
		while read -r pid || [ -n "$pid" ]; do
			# Only our program: the pid may have been reused.
			case $(ps -o args= -p "$pid" 2>/dev/null) in
			*"$p.fcgi"*)
				kill -TERM "$pid" 2>/dev/null
				pids="$pids $pid"
				;;
			esac
		done <"$f"
	done
	for pid in $pids; do
		stack_wait_gone "$pid" 10
	done
	for p in $STACK_PROGRAMS; do
		rm -f "$1/apache/run/pool-$p.pid" "$1/sock/$p.sock"
	done
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

# FcgidInitialEnv lines for every MDM_* and sanitizer variable, since
# mod_fcgid starts its programs with an environment of its own.
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
	as_stack "$APACHE_BIN" -f "$APACHE_CONF" -k start >"$a/logs/start.log" 2>&1 || {
		stack_show_log "$a/logs/start.log"
		stack_show_log "$APACHE_ERROR_LOG"
		stack_die "Apache did not start"
	}
	i=0
	while :; do
		code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 2 \
			"http://127.0.0.1:$5/" 2>/dev/null)
		[ "$code" != 000 ] && [ -n "$code" ] && break
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			stack_show_log "$APACHE_ERROR_LOG"
			stack_die "Apache does not answer on 127.0.0.1:$5"
		fi
		sleep 0.1
	done
}

# apache_stop DIR: stops Apache (and with it mod_fcgid's programs) and the
# spawn-fcgi pools; not an error when nothing runs.
apache_stop() {
	pidfile=$1/apache/run/httpd.pid
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		case $(ps -o args= -p "$pid" 2>/dev/null) in
		*apache2*|*httpd*)
			kill -TERM "$pid" 2>/dev/null
			stack_wait_gone "$pid" 15
			;;
		esac
		rm -f "$pidfile"
	fi
	pools_stop "$1"
}

# stack_wait_health URL...: waits up to STACK_WAIT seconds (default 30)
# for each URL to answer 200 (over HTTPS trusting TLS_CA_CERT).
stack_wait_health() {
	for url in "$@"; do
		i=0
		while :; do
			code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 5 \
				--cacert "$TLS_CA_CERT" "$url" 2>/dev/null)
			[ "$code" = 200 ] && break
			i=$((i + 1))
			if [ "$i" -gt $((${STACK_WAIT:-30} * 4)) ]; then
				stack_say "$url answers $code, not 200" >&2
				return 1
			fi
			sleep 0.25
		done
	done
	return 0
}
