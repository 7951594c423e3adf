#!/bin/sh
#
# scripts/demo.sh start BUILD | stop: a local demo stack (`make demo`,
# `make demo-stop`).  POSIX sh.
#
# start: PostgreSQL, certificates, Apache (mod_proxy_fcgi to spawn-fcgi
# pools of BUILD/cgi-bin; DEMO_MODE=fcgid for mod_fcgid) or, with
# DEMO_WEB=lighttpd, lighttpd (lighttpd-conf/, to the same pools, its
# client CA file var/ca/client-ca.pem kept by mdmctl through
# MDM_TLS_CLIENT_CA_FILE) under ./var, the schema migrated with
# BUILD/bin/mdmctl; waits until every route is healthy, then writes
# var/demo.env.  Running it again restarts Apache and the pools on the new
# build and keeps the database and certificates: one stack, answering.
#
#   https://127.0.0.1:${DEMO_HTTPS_PORT:-8443}  every route
#   http://127.0.0.1:${DEMO_HTTP_PORT:-8080}    /scep only
#
# Every MDM_* variable set when it starts reaches the programs (MDM_DB is
# always the demo's own database).
#
# With MDM_APNS_URL set (and MDM_APNS_CA_FILE for a stand-in), start also
# (re)starts BUILD/bin/mdm-pushd in the background: var/log/mdm-pushd.log,
# pid in var/mdm-pushd.pid.  Without it no push daemon runs: Apple is not
# reachable with the demo's throw-away push certificate.
#
# With MDM_WEBHOOK_URL (and MDM_WEBHOOK_SECRET_FILE) set, start also
# (re)starts BUILD/bin/mdm-eventd the same way (var/log/mdm-eventd.log,
# var/mdm-eventd.pid), which POSTs check-in and command-result events.
#
# stop: stops mdm-pushd, mdm-eventd, Apache or lighttpd, the pools and PostgreSQL; fine when
# nothing runs.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
VAR=$ROOT/var
STACK_ROOT=$ROOT
STACK_PROG=demo
# shellcheck source=scripts/stack.sh
. "$ROOT/scripts/stack.sh"

# NAME='value' with the value quoted for the shell.
env_line() {
	printf "export %s='%s'\n" "$1" "$(printf '%s' "$2" | sed "s/'/'\\\\''/g")"
}

demo_start() {
	build=${1:-build}
	case $build in
	/*) B=$build ;;
	*) B=$ROOT/$build ;;
	esac
	https_port=${DEMO_HTTPS_PORT:-8443}
	http_port=${DEMO_HTTP_PORT:-8080}
	for f in bin/mdmctl cgi-bin/scep.fcgi cgi-bin/enroll.fcgi \
		cgi-bin/checkin.fcgi cgi-bin/server.fcgi cgi-bin/acme.fcgi; do
		[ -x "$B/$f" ] || stack_die "$B/$f missing: run 'make all' first"
	done
	stack_init
	mkdir -p "$VAR"
	stack_own "$VAR"
	stack_check_access "$ROOT/apache-conf" "$B/cgi-bin" "$VAR"
	for p in $STACK_PROGRAMS; do
		stack_check_access "$B/cgi-bin/$p.fcgi"
	done

	pg_start "$VAR"
	tls_make "$VAR" clients
	if [ -n "${MDM_DB:-}" ] && [ "$MDM_DB" != "$PG_CONNINFO" ]; then
		stack_say "MDM_DB is set; the demo uses its own database instead"
	fi
	MDM_DB=$PG_CONNINFO
	MDM_LOG_LEVEL=${MDM_LOG_LEVEL:-info}
	export MDM_DB MDM_LOG_LEVEL
	"$B/bin/mdmctl" db migrate >"$VAR/log/migrate.log" 2>&1 || {
		cat "$VAR/log/migrate.log" >&2
		stack_die "mdmctl db migrate failed"
	}
	# The device CA behind scep.fcgi, made once; its key stays in var/ca.
	mkdir -p "$VAR/ca"
	if ! "$B/bin/mdmctl" ca cert >"$VAR/ca/ca.pem" 2>/dev/null; then
		"$B/bin/mdmctl" ca init --subject "/CN=MDM Demo Device CA/O=mdm demo" \
			--key-out "$VAR/ca/ca.key" >"$VAR/log/ca.log" 2>&1 || {
			cat "$VAR/log/ca.log" >&2
			stack_die "mdmctl ca init failed"
		}
		"$B/bin/mdmctl" ca cert >"$VAR/ca/ca.pem" ||
			stack_die "mdmctl ca cert failed"
	fi
	# The profile signer (issued by the device CA) and, unless one was
	# imported, a throw-away push certificate shaped like Apple's: profiles
	# are served, but APNs will not accept it (import yours with
	# `mdmctl push-cert import`).
	if [ ! -f "$VAR/ca/signer.pem" ]; then
		"$B/bin/mdmctl" ca server-cert --subject "/CN=MDM Demo Profile Signer/O=mdm demo" \
			--key-out "$VAR/ca/signer.key" --cert-out "$VAR/ca/signer.pem" \
			>>"$VAR/log/ca.log" 2>&1 || {
			cat "$VAR/log/ca.log" >&2
			stack_die "mdmctl ca server-cert failed"
		}
	fi
	if ! "$B/bin/mdmctl" push-cert list 2>/dev/null | grep -q '^com\.apple\.mgmt\.'; then
		push_uuid=$(cat /proc/sys/kernel/random/uuid)
		rm -f "$VAR/ca/push.key" "$VAR/ca/push.pem"
		openssl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout "$VAR/ca/push.key" \
			-out "$VAR/ca/push.pem" \
			-subj "/UID=com.apple.mgmt.External.$push_uuid/CN=APSP:$push_uuid/C=US" \
			>>"$VAR/log/ca.log" 2>&1 &&
			"$B/bin/mdmctl" push-cert import --cert "$VAR/ca/push.pem" \
				--key "$VAR/ca/push.key" >>"$VAR/log/ca.log" 2>&1 || {
			cat "$VAR/log/ca.log" >&2
			stack_die "push certificate import failed"
		}
	fi
	# Apple's public certificates for OTA phase 2 (config ota_trust_file),
	# copied where the stack user can read them.
	cp "$STACK_ROOT/share/apple-ota-trust.pem" "$VAR/ca/apple-ota-trust.pem"
	CA_CERT=$VAR/ca/ca.pem
	MDM_OTA_TRUST_FILE=${MDM_OTA_TRUST_FILE:-$VAR/ca/apple-ota-trust.pem}
	# And Apple's Enterprise Attestation Root CA for ACME device-attest-01
	# (config acme_attest_root_file).
	cp "$STACK_ROOT/share/apple-enterprise-attestation-root.pem" \
		"$VAR/ca/apple-enterprise-attestation-root.pem"
	MDM_ACME_ATTEST_ROOT_FILE=${MDM_ACME_ATTEST_ROOT_FILE:-$VAR/ca/apple-enterprise-attestation-root.pem}
	export MDM_OTA_TRUST_FILE MDM_ACME_ATTEST_ROOT_FILE
	stack_own "$VAR/ca"
	MDM_PROFILE_SIGNER_CERT=${MDM_PROFILE_SIGNER_CERT:-$VAR/ca/signer.pem}
	MDM_PROFILE_SIGNER_KEY=${MDM_PROFILE_SIGNER_KEY:-$VAR/ca/signer.key}
	MDM_PROFILE_SIGNER_CHAIN=${MDM_PROFILE_SIGNER_CHAIN:-$CA_CERT}
	# The demo's TLS CA is private: profiles carry it as a trust anchor
	# payload (docs/CONFIG.md, tls_trust_ca_file); empty turns it off.
	MDM_TLS_TRUST_CA_FILE=${MDM_TLS_TRUST_CA_FILE-$TLS_CA_CERT}
	MDM_PUBLIC_URL=${MDM_PUBLIC_URL:-https://127.0.0.1:$https_port}
	# SCEP over plain HTTP (signed and enveloped messages), as usually deployed.
	MDM_SCEP_URL=${MDM_SCEP_URL:-http://127.0.0.1:$http_port/scep}
	export MDM_PROFILE_SIGNER_CERT MDM_PROFILE_SIGNER_KEY MDM_PROFILE_SIGNER_CHAIN MDM_PUBLIC_URL \
		MDM_SCEP_URL MDM_TLS_TRUST_CA_FILE

	web=${DEMO_WEB:-apache}
	case $web in
	apache)
		lighttpd_stop "$VAR"
		apache_start "$VAR" "${DEMO_MODE:-proxy}" "$B/cgi-bin" "$https_port" "$http_port"
		web_log=$APACHE_ERROR_LOG
		;;
	lighttpd)
		# Every CA a device identity can chain to, for
		# ssl.verifyclient.ca-file; mdmctl rewrites it on each CA change
		# (docs/CONFIG.md, tls_client_ca_file).
		MDM_TLS_CLIENT_CA_FILE=${MDM_TLS_CLIENT_CA_FILE:-$VAR/ca/client-ca.pem}
		export MDM_TLS_CLIENT_CA_FILE
		"$B/bin/mdmctl" ca bundle >>"$VAR/log/ca.log" 2>&1 || {
			cat "$VAR/log/ca.log" >&2
			stack_die "mdmctl ca bundle failed"
		}
		stack_own "$VAR/ca"
		apache_stop "$VAR"
		lighttpd_start "$VAR" "$B/cgi-bin" "$https_port" "$http_port" "$MDM_TLS_CLIENT_CA_FILE"
		web_log=$LIGHTTPD_ERROR_LOG
		;;
	*) stack_die "DEMO_WEB must be apache or lighttpd, not $web" ;;
	esac
	https=https://127.0.0.1:$https_port
	http=http://127.0.0.1:$http_port
	if ! stack_wait_health "$https/scep/health" "$https/enroll/health" \
		"$https/mdm/checkin/health" "$https/mdm/server/health" \
		"$https/acme/health" "$http/scep/health"; then
		for p in $STACK_PROGRAMS; do
			stack_show_log "$VAR/apache/logs/pool-$p.log" 5
		done
		stack_show_log "$web_log" 10
		stack_die "the demo stack is not healthy (logs in $(dirname "$web_log"))"
	fi

	{
		echo "# Written by scripts/demo.sh; source it: . var/demo.env"
		env_line SCEP_URL "$http/scep"
		env_line SCEP_HTTPS_URL "$https/scep"
		env_line ENROLL_URL "$https/enroll"
		env_line OTA_URL "$https/enroll/ota"
		env_line CHECKIN_URL "$https/mdm/checkin"
		env_line SERVER_URL "$https/mdm/server"
		env_line CA_CERT "$CA_CERT"
		env_line TLS_CA_CERT "$TLS_CA_CERT"
		env_line DEMO_BUILD "$B"
		env_line DEMO_WEB "$web"
		env_line DEMO_PGDATA "$PG_DATA"
		for name in $(env | sed -n 's/^\(MDM_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
			eval "value=\${$name}"
			# shellcheck disable=SC2154 # assigned by eval above
			env_line "$name" "$value"
		done
	} >"$VAR/demo.env.tmp" && mv "$VAR/demo.env.tmp" "$VAR/demo.env"

	pushd_stop
	pushd_line="not started (set MDM_APNS_URL to start it)"
	if [ -n "${MDM_APNS_URL:-}" ]; then
		daemon_start mdm-pushd
		pushd_line="$MDM_APNS_URL (log $VAR/log/mdm-pushd.log)"
	fi
	eventd_stop
	eventd_line="not started (set MDM_WEBHOOK_URL and MDM_WEBHOOK_SECRET_FILE to start it)"
	if [ -n "${MDM_WEBHOOK_URL:-}" ]; then
		daemon_start mdm-eventd
		eventd_line="POSTs events (log $VAR/log/mdm-eventd.log)"
	fi

	cat <<EOF
demo: running behind $web, as user $STACK_USER
  SCEP        $http/scep   (also $https/scep)
  enrollment  $https/enroll   (the signed profile: open it on a device, or
              curl --cacert "\$TLS_CA_CERT" -o enroll.mobileconfig $https/enroll)
  OTA         $https/enroll/ota   (over-the-air enrollment: the Profile Service
              profile; devices POST phases 2 and 3 back to it)
  check-in    $https/mdm/checkin
  commands    $https/mdm/server
  ACME        $https/acme/directory   (hardware-attested identities: enroll_identity = acme)
  device CA   $CA_CERT
  trust HTTPS $TLS_CA_CERT
  push daemon $pushd_line
  webhooks    $eventd_line
  database    psql "$PG_CONNINFO"
  logs        $(dirname "$web_log"), $VAR/apache/logs (the pools)
Try:  . var/demo.env && curl --cacert "\$TLS_CA_CERT" "\$CHECKIN_URL/health"
Stop: make demo-stop
EOF
}

# daemon_start NAME: BUILD/bin/NAME in the background as the stack user,
# its log in var/log/NAME.log, its pid in var/NAME.pid.
daemon_start() {
	[ -x "$B/bin/$1" ] || stack_die "$B/bin/$1 missing: run 'make all' first"
	stack_check_access "$B/bin/$1"
	as_stack sh -c 'exec "$0" </dev/null >>"$1" 2>&1 & echo $! >"$2"' \
		"$B/bin/$1" "$VAR/log/$1.log" "$VAR/$1.pid" || stack_die "$1 did not start"
}

# daemon_stop NAME: stops the daemon NAME (mdm-pushd, mdm-eventd) this
# script started, by its recorded pid, if that pid is still one.
daemon_stop() {
	[ -f "$VAR/$1.pid" ] || return 0
	pid=$(cat "$VAR/$1.pid")
	rm -f "$VAR/$1.pid"
	case $pid in
	'' | *[!0-9]*) return 0 ;;
	esac
	if grep -q "$1" "/proc/$pid/cmdline" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		stack_wait_gone "$pid" 40
	fi
	return 0
}
pushd_stop() { daemon_stop mdm-pushd; }
eventd_stop() { daemon_stop mdm-eventd; }

demo_stop() {
	stack_init
	pushd_stop
	eventd_stop
	build=
	if [ -f "$VAR/demo.env" ]; then
		build=$(sed -n "s/^export DEMO_BUILD='\(.*\)'$/\1/p" "$VAR/demo.env")
	fi
	apache_stop "$VAR"
	lighttpd_stop "$VAR"
	if [ -n "$build" ]; then
		stack_sweep "$build/cgi-bin/"
	fi
	if [ -d "$VAR/pgdata" ]; then
		pg_stop "$VAR"
	fi
	# Nothing of ours may be left.
	left=$(ps -u "$STACK_USER" -o pid= -o args= 2>/dev/null | while read -r pid args; do
		case $args in
		*"$VAR/"* | "${build:-$VAR}/cgi-bin/"*) echo "$pid $args" ;;
		esac
	done)
	if [ -n "$left" ]; then
		printf '%s\n' "$left" >&2
		stack_die "processes of the demo are still running"
	fi
	stack_say "stopped"
}

case ${1:-} in
start) demo_start "${2:-build}" ;;
stop) demo_stop ;;
*)
	echo "usage: $0 start BUILD | stop" >&2
	exit 2
	;;
esac
