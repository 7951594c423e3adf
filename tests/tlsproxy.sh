#!/bin/sh
#
# tests/tlsproxy.sh: HAProxy as the TLS-terminating load balancer in front
# of Apache, for the TLS proxy pass of tests/run.sh (issue 13, 9;
# docs/CONFIG.md, trusted_proxies).  POSIX sh.
#
#   sh tests/tlsproxy.sh start DIR PORT BACKEND_PORT SERVER_CERT SERVER_KEY \
#           DEVICE_CA TLS_CA SOURCE
#       HAProxy on 127.0.0.1:PORT with SERVER_CERT/KEY: asks every client
#       for a certificate (verify optional, issued by DEVICE_CA: the
#       handshake proves the client holds its key), drops any Client-Cert
#       header a client sent (RFC 9440 section 4) and sets its own,
#       ":base64 DER:" (section 2.2), when a certificate was presented;
#       forwards over TLS to Apache on 127.0.0.1:BACKEND_PORT (verified
#       against TLS_CA) from the address SOURCE.  Logs to DIR/haproxy.log;
#       DIR/haproxy.pid.
#   sh tests/tlsproxy.sh stop DIR

set -u

die() {
	printf 'tlsproxy: %s\n' "$*" >&2
	exit 1
}

start() {
	command -v haproxy >/dev/null 2>&1 || die "haproxy not found (make deps installs it)"
	mkdir -p "$DIR"
	cat "$CERT" "$KEY" >"$DIR/frontend.pem"
	chmod 600 "$DIR/frontend.pem"
	cat >"$DIR/haproxy.cfg" <<EOF
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
	bind 127.0.0.1:$PORT ssl crt $DIR/frontend.pem verify optional ca-file $DEVICE_CA
	http-request del-header Client-Cert
	http-request del-header Client-Cert-Chain
	http-request set-header Client-Cert ":%[ssl_c_der,base64]:" if { ssl_c_used }
	default_backend apache

backend apache
	server apache 127.0.0.1:$BACKEND ssl verify required ca-file $TLS_CA verifyhost 127.0.0.1 sni str(127.0.0.1) source $SOURCE
EOF
	haproxy -c -f "$DIR/haproxy.cfg" >"$DIR/check.log" 2>&1 || {
		cat "$DIR/check.log" >&2
		die "haproxy refused its configuration"
	}
	haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
	echo $! >"$DIR/haproxy.pid"
	i=0
	while ! ss -ltn "sport = :$PORT" | grep -q LISTEN; do
		i=$((i + 1))
		[ $i -lt 100 ] || {
			cat "$DIR/haproxy.log" >&2
			die "haproxy does not listen on $PORT"
		}
		kill -0 "$(cat "$DIR/haproxy.pid")" 2>/dev/null || {
			cat "$DIR/haproxy.log" >&2
			die "haproxy exited"
		}
		sleep 0.1
	done
}

stop() {
	[ -f "$DIR/haproxy.pid" ] || return 0
	pid=$(cat "$DIR/haproxy.pid")
	case $(cat "/proc/$pid/comm" 2>/dev/null) in
	haproxy)
		kill "$pid"
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
			i=$((i + 1))
			sleep 0.1
		done
		;;
	esac
	rm -f "$DIR/haproxy.pid"
}

[ $# -ge 2 ] || die "usage: tlsproxy.sh start DIR PORT BACKEND_PORT SERVER_CERT SERVER_KEY DEVICE_CA TLS_CA SOURCE | stop DIR"
CMD=$1
DIR=$2
case $CMD in
start)
	[ $# -eq 9 ] || die "usage: tlsproxy.sh start DIR PORT BACKEND_PORT SERVER_CERT SERVER_KEY DEVICE_CA TLS_CA SOURCE"
	PORT=$3
	BACKEND=$4
	CERT=$5
	KEY=$6
	DEVICE_CA=$7
	TLS_CA=$8
	SOURCE=$9
	start
	;;
stop) stop ;;
*) die "unknown command $CMD" ;;
esac
