# shellcheck shell=sh
# shellcheck disable=SC2034 # STACK_PIDS is stack_term's
#
# tests/tlsproxy.sh: HAProxy as the TLS-terminating load balancer in front
# of Apache, for the TLS proxy pass of tests/run.sh (issue 13, 9;
# docs/CONFIG.md, trusted_proxies).  Sourced after scripts/stack.sh and
# tls_make (its SERVER_CERT, SERVER_KEY, TLS_CA_CERT), not run.  POSIX sh.
#
#   tlsproxy_start DIR PORT BACKEND_PORT DEVICE_CA SOURCE
#       HAProxy on 127.0.0.1:PORT with SERVER_CERT/KEY: asks every client
#       for a certificate (verify optional, issued by DEVICE_CA: the
#       handshake proves the client holds its key), drops any Client-Cert
#       header a client sent (RFC 9440 section 4) and sets its own,
#       ":base64 DER:" (section 2.2), when a certificate was presented;
#       forwards over TLS to Apache on 127.0.0.1:BACKEND_PORT (verified
#       against TLS_CA_CERT) from the address SOURCE.  Logs to
#       DIR/haproxy.log; DIR/haproxy.pid.  Returns 1, with the reason on
#       stderr, when HAProxy does not run.
#   tlsproxy_stop DIR
#       not an error when nothing runs.

tlsproxy_start() {
	command -v haproxy >/dev/null 2>&1 || {
		stack_say "tlsproxy: haproxy not found (make deps installs it)" >&2
		return 1
	}
	mkdir -p "$1"
	cat "$SERVER_CERT" "$SERVER_KEY" >"$1/frontend.pem"
	chmod 600 "$1/frontend.pem"
	cat >"$1/haproxy.cfg" <<CFG
# Written by tests/tlsproxy.sh.
global
	log stderr format short local0 info
	ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
	mode http
	log global
	option httplog
	timeout connect 5s
	timeout client 120s
	timeout server 120s

frontend devices
	bind 127.0.0.1:$2 ssl crt $1/frontend.pem verify optional ca-file $4
	http-request del-header Client-Cert
	http-request del-header Client-Cert-Chain
	http-request set-header Client-Cert ":%[ssl_c_der,base64]:" if { ssl_c_used }
	default_backend apache

backend apache
	server apache 127.0.0.1:$3 ssl verify required ca-file $TLS_CA_CERT verifyhost 127.0.0.1 sni str(127.0.0.1) source $5
CFG
	haproxy -c -f "$1/haproxy.cfg" >"$1/check.log" 2>&1 || {
		cat "$1/check.log" >&2
		stack_say "tlsproxy: haproxy refused its configuration" >&2
		return 1
	}
	haproxy -db -f "$1/haproxy.cfg" >"$1/haproxy.log" 2>&1 &
	echo $! >"$1/haproxy.pid"
	stack_retry 100 stack_port_busy "$2" || {
		cat "$1/haproxy.log" >&2
		stack_say "tlsproxy: haproxy does not listen on $2" >&2
		return 1
	}
}

tlsproxy_stop() {
	STACK_PIDS=
	stack_term "$1/haproxy.pid" '*haproxy*'
	stack_wait_pids 5
}
