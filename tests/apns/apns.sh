# shellcheck shell=sh
# shellcheck disable=SC2034 # the functions set variables for their callers
# shellcheck disable=SC2016 # sh -c scripts take their arguments as $0, $1...
# shellcheck disable=SC2094 # the log file is an argument, not read
#
# tests/apns/apns.sh: the APNs stand-in for tests (and bench).  Sourced
# after scripts/stack.sh (stack_init done), not run.  POSIX sh.
#
#   apns_push_cert DIR BASE ISSUERBASE
#       an "Apple-like" issuer ISSUERBASE.pem/.key (made once) and a push
#       certificate BASE.pem/.key issued by it, subject
#       UID=com.apple.mgmt.External.<uuid>; sets APNS_PUSH_TOPIC
#   apns_start DIR PORT PUSH_ISSUER_PEM
#       Apache (mod_http2, mod_ssl) on https://127.0.0.1:PORT in front of
#       apns_standin (spawn-fcgi pool, APNS_POOL_SIZE, default 4); only
#       clients with a certificate issued by PUSH_ISSUER_PEM get through
#       the TLS handshake.  Sets APNS_URL, APNS_CA (the stand-in's
#       throw-away TLS CA, for MDM_APNS_CA_FILE), APNS_RECORDS, APNS_RULES.
#       The program is APNS_STANDIN_BIN (default STACK_ROOT/build/tests/
#       apns_standin), copied into DIR for the stack user.
#   apns_stop DIR
#   apns_rule DIR TOKEN STATUS [COUNT] [REASON]
#       appends a rule (see below) under the program's lock
#   apns_reset DIR
#       empties the rules and the records
#
# DIR holds:
#   DIR/requests.tsv  one line per request, written before the answer:
#       time status reason apns-id protocol method token topic push-magic
#       push-type cert-uid cert-serial cert-subject cert-issuer
#       (tab-separated; "-" for empty; protocol is HTTP/2.0 over h2; time
#       is UTC to the microsecond, 2024-05-01T12:00:00.123456Z, taken
#       when the request reached the program)
#   DIR/rules         re-read on every request: "TOKEN STATUS [COUNT]
#       [REASON]" a line, TOKEN hex or "*" for any; the first match
#       answers STATUS (410 Unregistered with a timestamp, 429
#       TooManyRequests, 500 InternalServerError, 403 BadCertificate,
#       503 ServiceUnavailable, 400 BadDeviceToken unless REASON says
#       otherwise) for the next COUNT requests (all when absent), then
#       the request is answered normally.  Truncate or append to it; do
#       not replace it (the program rewrites it in place under flock).
#   DIR/tls/tls-ca.pem, server.pem/.key, push-issuer.pem
#   DIR/apache/httpd.conf, logs/error.log, logs/access.log,
#   logs/standin.log (the program's stderr)

APNS_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}

# apns_push_cert DIR BASE ISSUERBASE (paths under DIR are relative to it)
apns_push_cert() {
	pc_cnf=$1/push-openssl.cnf
	mkdir -p "$1"
	cat >"$pc_cnf" <<'EOF'
# Written by tests/apns/apns.sh.
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_issuer]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_push]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	if ! [ -s "$3.pem" ] || ! [ -s "$3.key" ]; then
		openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
			-config "$pc_cnf" -extensions v3_issuer \
			-subj "/CN=Test Apple Application Integration CA ($(basename "$3"))/OU=mdm tests/O=Not Apple/C=US" \
			-keyout "$3.key" -out "$3.pem" >"$1/push-openssl.log" 2>&1 || {
			stack_show_log "$1/push-openssl.log"
			stack_die "openssl: cannot create $3.pem"
		}
	fi
	pc_uuid=$(tr 'a-f' 'A-F' </proc/sys/kernel/random/uuid)
	APNS_PUSH_TOPIC=com.apple.mgmt.External.$pc_uuid
	if ! openssl req -new -newkey rsa:2048 -nodes -config "$pc_cnf" \
		-subj "/UID=$APNS_PUSH_TOPIC/CN=APSP:$pc_uuid/C=US" \
		-keyout "$2.key" -out "$2.csr" >"$1/push-openssl.log" 2>&1 ||
		! openssl x509 -req -sha256 -days 365 -in "$2.csr" -CA "$3.pem" \
			-CAkey "$3.key" -set_serial "0x$(openssl rand -hex 16)" \
			-extfile "$pc_cnf" -extensions v3_push -out "$2.pem" \
			>>"$1/push-openssl.log" 2>&1; then
		stack_show_log "$1/push-openssl.log"
		stack_die "openssl: cannot issue $2.pem"
	fi
	rm -f "$2.csr"
	chmod 600 "$2.key" "$3.key"
}

apns_start() {
	[ $# -eq 3 ] || stack_die "usage: apns_start DIR PORT PUSH_ISSUER_PEM"
	a_bin=${APNS_STANDIN_BIN:-$STACK_ROOT/build/tests/apns_standin}
	[ -x "$a_bin" ] || stack_die "$a_bin missing: run 'make all'"
	[ -s "$3" ] || stack_die "apns_start: no push issuer at $3"
	command -v spawn-fcgi >/dev/null 2>&1 ||
		stack_die "spawn-fcgi not found: run 'make deps' as root"
	[ -f "$APNS_MODULES/mod_http2.so" ] ||
		stack_die "$APNS_MODULES/mod_http2.so not found (apache2 package)"
	apns_stop "$1"
	stack_port_busy "$2" && stack_die "port 127.0.0.1:$2 is in use"
	mkdir -p "$1/apache/run" "$1/apache/logs" "$1/sock" "$1/tls"
	# tls_make sets the caller's CA_CERT, SERVER_CERT...: a subshell.
	(tls_make "$1") || stack_die "apns_start: no TLS certificates"
	cp "$3" "$1/tls/push-issuer.pem"
	cp "$a_bin" "$1/apns_standin"
	chmod 755 "$1" "$1/apns_standin"
	: >>"$1/requests.tsv"
	: >>"$1/rules"
	: >>"$1/apache/logs/standin.log"
	# Tests (perhaps root) and the program (the stack user) both write.
	chmod 666 "$1/requests.tsv" "$1/rules"
	sed -e "s|@DIR@|$(sed_rhs "$1")|g" \
		-e "s|@PORT@|$2|g" \
		-e "s|@MODULES@|$(sed_rhs "$APNS_MODULES")|g" \
		-e "s|@SERVER_CERT@|$(sed_rhs "$1/tls/server.pem")|g" \
		-e "s|@SERVER_KEY@|$(sed_rhs "$1/tls/server.key")|g" \
		-e "s|@ISSUER@|$(sed_rhs "$1/tls/push-issuer.pem")|g" \
		"$STACK_ROOT/tests/apns/httpd-apns.conf.in" >"$1/apache/httpd.conf" ||
		stack_die "cannot write $1/apache/httpd.conf"
	stack_own "$1"
	# As in pools_start: a shell in between keeps the program's stderr.
	as_stack spawn-fcgi -s "$1/sock/apns.sock" -M 0600 -F "${APNS_POOL_SIZE:-4}" \
		-P "$1/apache/run/pool.pid" \
		-- /bin/sh -c 'exec "$0" "$1" 2>>"$2"' "$1/apns_standin" "$1" \
		"$1/apache/logs/standin.log" >>"$1/apache/logs/standin.log" 2>&1 || {
		stack_show_log "$1/apache/logs/standin.log"
		stack_die "spawn-fcgi could not start apns_standin"
	}
	as_stack "$APACHE_BIN" -f "$1/apache/httpd.conf" -k start \
		>"$1/apache/logs/start.log" 2>&1 || {
		stack_show_log "$1/apache/logs/start.log"
		stack_show_log "$1/apache/logs/error.log"
		apns_stop "$1"
		stack_die "Apache (APNs stand-in) did not start"
	}
	a_i=0
	until stack_port_busy "$2"; do
		a_i=$((a_i + 1))
		if [ "$a_i" -gt 100 ]; then
			stack_show_log "$1/apache/logs/error.log"
			stack_die "the APNs stand-in does not listen on 127.0.0.1:$2"
		fi
		sleep 0.1
	done
	APNS_URL=https://127.0.0.1:$2
	APNS_CA=$1/tls/tls-ca.pem
	APNS_RECORDS=$1/requests.tsv
	APNS_RULES=$1/rules
}

# apns_stop DIR: not an error when nothing runs.
apns_stop() {
	a_pidfile=$1/apache/run/httpd.pid
	if [ -f "$a_pidfile" ]; then
		a_pid=$(cat "$a_pidfile")
		case $(ps -o args= -p "$a_pid" 2>/dev/null) in
		*apache2*|*httpd*)
			kill -TERM "$a_pid" 2>/dev/null
			stack_wait_gone "$a_pid" 15
			;;
		esac
		rm -f "$a_pidfile"
	fi
	a_pidfile=$1/apache/run/pool.pid
	[ -f "$a_pidfile" ] || return 0
	a_pids=
	# spawn-fcgi leaves the last line without a newline.
	while read -r a_pid || [ -n "$a_pid" ]; do
		case $(ps -o args= -p "$a_pid" 2>/dev/null) in
		*apns_standin*)
			kill -TERM "$a_pid" 2>/dev/null
			a_pids="$a_pids $a_pid"
			;;
		esac
	done <"$a_pidfile"
	for a_pid in $a_pids; do
		stack_wait_gone "$a_pid" 10
	done
	rm -f "$a_pidfile" "$1/sock/apns.sock"
	return 0
}

apns_rule() {
	[ $# -ge 3 ] || stack_die "usage: apns_rule DIR TOKEN STATUS [COUNT] [REASON]"
	a_dir=$1
	shift
	flock "$a_dir/rules" sh -c 'echo "$*" >>"$0"' "$a_dir/rules" "$@"
}

apns_reset() {
	flock "$1/rules" sh -c ': >"$0"' "$1/rules"
	: >"$1/requests.tsv"
}
