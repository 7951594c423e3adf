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

# apns_push_cert DIR BASE ISSUERBASE
apns_push_cert() {
	mkdir -p "$1"
	pki_self_signed "$3" \
		"/CN=Test Apple Application Integration CA ($(basename "$3"))/OU=mdm tests/O=Not Apple/C=US" \
		v3_ca
	pc_uuid=$(tr 'a-f' 'A-F' </proc/sys/kernel/random/uuid)
	APNS_PUSH_TOPIC=com.apple.mgmt.External.$pc_uuid
	# A new certificate (and topic) every time.
	rm -f "$2.pem" "$2.key"
	pki_issue "$2" "/UID=$APNS_PUSH_TOPIC/CN=APSP:$pc_uuid/C=US" v3_push "$3" 365
}

apns_start() {
	[ $# -eq 3 ] || stack_die "usage: apns_start DIR PORT PUSH_ISSUER_PEM"
	a_bin=${APNS_STANDIN_BIN:-$STACK_ROOT/build/tests/apns_standin}
	[ -x "$a_bin" ] || stack_die "$a_bin missing: run 'make all'"
	[ -s "$3" ] || stack_die "apns_start: no push issuer at $3"
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
	stack_spawn "$1/sock/apns.sock" "${APNS_POOL_SIZE:-4}" "$1/apache/run/pool.pid" \
		"$1/apache/logs/standin.log" "$1/apns_standin" "$1"
	httpd_start "$1" "$2" "Apache (APNs stand-in)"
	APNS_URL=https://127.0.0.1:$2
	APNS_CA=$1/tls/tls-ca.pem
	APNS_RECORDS=$1/requests.tsv
	APNS_RULES=$1/rules
}

# apns_stop DIR: not an error when nothing runs.
apns_stop() {
	httpd_stop "$1"
	stack_term "$1/apache/run/pool.pid" '*apns_standin*'
	stack_wait_pids 10
	rm -f "$1/sock/apns.sock"
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
