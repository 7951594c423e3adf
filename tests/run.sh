#!/bin/sh
#
# tests/run.sh BUILD: the whole test suite (`make test`, `make san`).
# Run from anywhere; BUILD is relative to the repository root.  The passes,
# in order:
#
#   1. a throw-away PostgreSQL in a fresh temporary directory, migrated
#      with BUILD/bin/mdmctl (twice: the second must change nothing)
#   2. BUILD/tests/check_unit (MDM_TEST_DB, MDM_DB, MDM_VECTORS,
#      MDM_TEST_PGCTL, MDM_TEST_PGDATA in its environment); again with the
#      vectors hidden, and under valgrind
#   3. the stand-in PKI and programs (tests/fixtures.sh), the APNs
#      stand-in started (tests/apns), and its own checks
#      (tests/apns/apns_test.sh)
#   4. BUILD/tests/check_e2e through a real Apache, once with
#      mod_proxy_fcgi + spawn-fcgi pools and once with mod_fcgid, then
#      through lighttpd (tests/lighttpd.sh), with a CA rollover there
#   5. the CA key in a SoftHSM2 token (tests/hsm.sh), both modes
#   6. behind a TLS-terminating proxy (tests/tlsproxy.sh)
#   7. PostgreSQL failover under load (tests/failover.sh), both modes
#   8. the Debian package installed, enrolled through and purged
#      (tests/deb.sh; root with dpkg only)
#
# Every run of check_e2e reads its variables from an environment file
# beside its log (TMP/e2e-proxy.env beside TMP/e2e-proxy.out, and so on):
# tests/e2e/ENV.md says what each variable holds, who sets it and who
# reads it, and how to rerun a suite by hand with that file.
#
# Everything it started is stopped and the directory removed on exit
# (set MDM_TEST_KEEP=1 to keep the directory and its logs).  The last
# line says "N passed, N failed"; the exit status is non-zero on any
# failure.  A sanitizer build (detected from the binaries) also fails on
# any AddressSanitizer or UBSan report, from any process.  POSIX sh.

set -u

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cd "$ROOT" || exit 1
case $BUILD in
/*) B=$BUILD ;;
*) B=$ROOT/$BUILD ;;
esac

STACK_ROOT=$ROOT
STACK_PROG=tests/run.sh
# shellcheck source=scripts/stack.sh
. "$ROOT/scripts/stack.sh"
# shellcheck source=tests/apns/apns.sh
. "$ROOT/tests/apns/apns.sh"
# shellcheck source=tests/tlsproxy.sh
. "$ROOT/tests/tlsproxy.sh"
# shellcheck source=tests/fixtures.sh
. "$ROOT/tests/fixtures.sh"
# shellcheck source=tests/lighttpd.sh
. "$ROOT/tests/lighttpd.sh"
APNS_STANDIN_BIN=$B/tests/apns_standin

for f in bin/mdmctl tests/check_unit tests/check_e2e tests/apns_standin cgi-bin/scep.fcgi \
	cgi-bin/enroll.fcgi cgi-bin/checkin.fcgi cgi-bin/server.fcgi cgi-bin/acme.fcgi; do
	[ -x "$B/$f" ] || stack_die "$B/$f missing: build it first (make all BUILD=$BUILD)"
done
stack_init
# Ports are picked free and bound a moment later: runs started side by side
# (other checkouts) start their search at different ports.
STACK_PORT_OFFSET=$(($$ % 100 * 3))

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mdm-test.XXXXXX") || stack_die "mktemp failed"
chmod 755 "$TMP"
stack_own "$TMP"
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

cleanup() {
	apns_stop "$TMP/apns"
	apache_stop "$TMP"
	lighttpd_stop "$TMP"
	stack_sweep "$TMP/"
	pg_stop "$TMP"
	for fo in "$TMP"/fo-*; do
		[ -d "$fo" ] && sh "$ROOT/tests/failover.sh" stop "$fo" >/dev/null 2>&1
	done
	tlsproxy_stop "$TMP/tlsproxy"
	# --- faults (issue 13): the disk-full case's tmpfs, if a failed
	# check left it mounted (its own teardown unmounts it first).
	for m in "$TMP"/e2e/faults-disk-*; do
		[ -d "$m" ] || continue
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# --- end faults
	if [ "${MDM_TEST_KEEP:-0}" = 1 ]; then
		stack_say "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

san_init

# ------------------------------------------------------------ PostgreSQL

pg_start "$TMP" test
MDM_DB=$PG_CONNINFO
MDM_TEST_DB=$PG_CONNINFO
MDM_TEST_PGCTL=$PG_CTL_CMD
MDM_TEST_PGDATA=$PG_DATA
export MDM_DB MDM_TEST_DB MDM_TEST_PGCTL MDM_TEST_PGDATA
if [ -d "$ROOT/../shared/vectors" ]; then
	MDM_VECTORS=$(cd "$ROOT/../shared/vectors" && pwd)
	export MDM_VECTORS
fi
MDM_LOG_LEVEL=${MDM_LOG_LEVEL:-warn}
export MDM_LOG_LEVEL

# Migrating twice must change nothing.
for time in first second; do
	"$B/bin/mdmctl" db migrate >>"$TMP/log/migrate.log" 2>&1 || {
		cat "$TMP/log/migrate.log" >&2
		stack_die "mdmctl db migrate failed the $time time"
	}
done
stack_say "schema: $("$B/bin/mdmctl" db status 2>&1 | tr '\n' ' ')"

# ------------------------------------------------------------ unit tests

CK_VERBOSITY=normal
export CK_VERBOSITY
run_suite check_unit "$TMP/unit.out" "$B/tests/check_unit"

# A user's clone has no ../shared: every vector case must skip with its
# message, never fail.  The unit suite again with the vectors hidden (an
# empty MDM_VECTORS would fall back to ../shared/vectors).
if [ "$SAN" != 1 ] && [ -n "${MDM_VECTORS:-}" ]; then
	run_suite "check_unit (no vectors)" "$TMP/unit-novectors.out" \
		env MDM_VECTORS=/nonexistent/mdm-vectors "$B/tests/check_unit"
fi

# The same suite under valgrind (the code must be clean under valgrind
# too), in one process so that leaks in the tests' own children are not
# counted twice.  The sanitizer build already has ASan/LSan watching instead.
if [ "$SAN" != 1 ] && command -v valgrind >/dev/null 2>&1; then
	run_suite "check_unit (valgrind)" "$TMP/unit-valgrind.out" \
		env CK_FORK=no CK_TIMEOUT_MULTIPLIER=10 MDM_TEST_EXCLUDE=scep,scep_ops,checkin,ota \
		valgrind -q --error-exitcode=9 \
		--leak-check=full --errors-for-leak-kinds=definite "$B/tests/check_unit"
fi

# The unit tests may have stopped and started PostgreSQL: make sure it
# runs for what follows.
pg_start "$TMP" test

# ------------------------------------------------------------- e2e tests

# The stand-ins, in this order (tests/fixtures.sh).
fixture_tls
fixture_programs
fixture_device_ca
fixture_ra
fixture_push
fixture_ota
fixture_challenge
fixture_metrics
fixture_acme
fixture_apns
run_suite apns_test "$TMP/apns-test.out" sh "$ROOT/tests/apns/apns_test.sh" ||
	stack_show_log "$TMP/apns/apache/logs/error.log" 30

# Apple's schemas (../shared/apple-device-management, python3-yaml): every
# profile mdmctl makes and every SQL command builder's plist, key by key,
# and broken plists that must fail (tests/schema/run.sh).
APPLE_SCHEMAS=${APPLE_SCHEMAS:-$ROOT/../shared/apple-device-management/mdm}
if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" = schema ]; then
	if [ -d "$APPLE_SCHEMAS/profiles" ]; then
		run_suite schema "$TMP/schema.out" env MDM_PUBLIC_URL=https://mdm.example.com \
			sh "$ROOT/tests/schema/run.sh" "$B/bin/mdmctl" "$APPLE_SCHEMAS" "$TMP/schema"
	else
		stack_say "schema: skipped, no Apple schemas at $APPLE_SCHEMAS"
	fi
fi

# ------------------------------------------------- settings of the passes

# micromdm's scepclient 2.1 signs with SHA-1 and encrypts with single DES
# whatever GetCACaps offers; the defaults refuse both (its throw-away
# signer named "SCEP SIGNER" is fine, as Apple's own-key signers are:
# scep_signer_match = none).  The proxy-mode stack allows them, as
# docs/CONFIG.md tells scepclient's users to; the fcgid-mode stack keeps
# the defaults, and there scepclient must be refused while certmonger
# still enrolls (E2E_SCEP_LEGACY tells the interop suite which is which).
scep_legacy() {
	if [ "$1" = proxy ]; then
		MDM_SCEP_ALLOW_SHA1=yes
		MDM_SCEP_ALLOW_DES=yes
		E2E_SCEP_LEGACY=1
		export MDM_SCEP_ALLOW_SHA1 MDM_SCEP_ALLOW_DES
	else
		unset MDM_SCEP_ALLOW_SHA1 MDM_SCEP_ALLOW_DES
		E2E_SCEP_LEGACY=0
	fi
	export E2E_SCEP_LEGACY
}
# The RA (made above) in fcgid mode only: there certmonger, which the
# devices of the e2e suites use in that mode, enrolls through it.
# E2E_RA_CERT tells the interop suite.
scep_ra() {
	if [ "$1" = fcgid ]; then
		MDM_RA_CERT=$TMP/ca/ra.pem
		MDM_RA_KEY=$TMP/ca/ra.key
		E2E_RA_CERT=$TMP/ca/ra.pem
		export MDM_RA_CERT MDM_RA_KEY E2E_RA_CERT
	else
		unset MDM_RA_CERT MDM_RA_KEY E2E_RA_CERT
	fi
}

# pass_apache MODE NAME: Apache in MODE (proxy or fcgid) on two free ports
# for the programs in $TMP/cgi-bin, with the environment they read made
# first (MDM_PUBLIC_URL: the HTTPS host enrollment profiles name, Apache's
# own unless PASS_PUBLIC_URL names one in front of it;
# MDM_SCEP_URL: SCEP over plain HTTP, as it is usually deployed and as the
# third-party SCEP clients expect), then the suites' E2E_MODE (NAME),
# E2E_HTTPS_BASE, E2E_HTTP_BASE, E2E_SCEP_URL.
pass_apache() {
	https_port=$(stack_free_port 18443)
	http_port=$(stack_free_port 18080)
	MDM_PUBLIC_URL=${PASS_PUBLIC_URL:-"https://127.0.0.1:$https_port"}
	MDM_SCEP_URL="http://127.0.0.1:$http_port/scep"
	export MDM_PUBLIC_URL MDM_SCEP_URL
	apache_start "$TMP" "$1" "$TMP/cgi-bin" "$https_port" "$http_port"
	stack_wait_health \
		"https://127.0.0.1:$https_port/scep/health" \
		"https://127.0.0.1:$https_port/enroll/health" \
		"https://127.0.0.1:$https_port/mdm/checkin/health" \
		"https://127.0.0.1:$https_port/mdm/server/health" \
		"https://127.0.0.1:$https_port/acme/health" ||
		stack_say "$2: not every route is healthy yet; the e2e suite will tell" >&2
	E2E_MODE=$2
	E2E_HTTPS_BASE="https://127.0.0.1:$https_port"
	E2E_HTTP_BASE="http://127.0.0.1:$http_port"
	E2E_SCEP_URL="$E2E_HTTP_BASE/scep"
	export E2E_MODE E2E_HTTPS_BASE E2E_HTTP_BASE E2E_SCEP_URL
}

# pass_end NAME: stops that Apache and its programs; its logs go to $TMP/logs-NAME.
pass_end() {
	apache_stop "$TMP"
	stack_sweep "$TMP/cgi-bin/"
	mkdir -p "$TMP/logs-$1"
	mv "$TMP"/apache/logs/*.log "$TMP/logs-$1/" 2>/dev/null
}

STACK_WAIT=20
for mode in proxy fcgid; do
	scep_legacy "$mode"
	scep_ra "$mode"
	pass_apache "$mode" "$mode"
	# --- faults (issue 13): the faults-e2e suite signals this Apache
	# (graceful restart, a child killed): its parent's pid file.
	E2E_APACHE_PID_FILE=$TMP/apache/run/httpd.pid
	export E2E_APACHE_PID_FILE
	# --- end faults
	e2e_run "check_e2e ($mode)" "$TMP/e2e-$mode.out" ||
		stack_show_log "$APACHE_ERROR_LOG" 30

	pass_end "$mode"
	pg_start "$TMP" test
done

# ==== BEGIN lighttpd block (issue 16; lighttpd-conf/, tests/lighttpd.sh) ====
# The third web server pass: the same programs and suites behind
# lighttpd, then a CA rollover with its client CA file kept by mdmctl.
if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" != hsm ]; then
	isolated lighttpd lighttpd_pass
	lighttpd_stop "$TMP"
	pg_start "$TMP" test
fi
# ==== END lighttpd block ====

# ==== BEGIN HSM block (issue 13, tests/hsm.sh; docs/HSM.md) ====
# The CA key out of the parsing process: two more passes, one per Apache
# mode, each on a database of its own whose CA keys exist only in a
# SoftHSM2 token owned by mdm-hsm, served by p11-kit server on a unix
# socket; the programs reach it through p11-kit-client.so (in fcgid mode
# the two variables go through FcgidInitialEnv).  `mdmctl ca init` with
# the key generated in the token, `ca rekey` + `activate` to the imported
# one; scepclient and certmonger (proxy pass) and the Apple simulator
# (both) enroll through it, and tests/hsm.sh check proves scep.fcgi cannot
# open the token's files and that enroll, checkin and server.fcgi never
# load the CA key at all.  Needs root (two users); skipped with a message
# otherwise.

hsm_token() {
	pass_step "$TMP/log/hsm.log" "hsm: token set-up failed" \
		sh "$ROOT/tests/hsm.sh" start "$TMP/hsm" "$STACK_USER" || return 1
	# shellcheck disable=SC1091 # written by tests/hsm.sh start
	. "$TMP/hsm/env"
	export PKCS11_MODULE_PATH P11_KIT_SERVER_ADDRESS
	# As the stack user: p11-kit server admits the socket's user only
	# (and that user alone reads the PIN file).
	mkdir -p "$TMP/hsm-bin"
	cp "$B/bin/mdmctl" "$TMP/hsm-bin/"
	chmod 755 "$TMP/hsm-bin" "$TMP/hsm-bin/mdmctl"
}
# hsm_db MDMCTL: the pass's database with its CA keys in the token.
hsm_db() {
	as_stack "$1" db migrate &&
		as_stack "$1" ca init --subject "/CN=MDM Test HSM CA/O=mdm tests" \
			--key "$HSM_URI1" --days 3650 &&
		as_stack "$1" ca rekey --key "$HSM_URI2" --days 3650 &&
		as_stack "$1" ca activate &&
		as_stack "$1" push-cert import --cert "$TMP/ca/push.pem" --key "$TMP/ca/push.key"
}
hsm_pass() {
	mode=$1
	pg_psql postgres -c "CREATE DATABASE mdm_hsm_$mode OWNER mdm" >/dev/null || return 1
	MDM_DB="host=$PG_SOCK port=$STACK_PG_PORT dbname=mdm_hsm_$mode user=mdm"
	export MDM_DB
	pass_step "$TMP/log/hsm.log" "hsm ($mode): mdmctl with the keys in the token failed" \
		hsm_db "$TMP/hsm-bin/mdmctl" || return 1
	scep_legacy "$mode"
	scep_ra proxy # the test RA is issued by the other stack's CA
	pass_apache "$mode" "hsm-$mode"
	E2E_TMP="$TMP/e2e-hsm-$mode"
	mkdir -p "$E2E_TMP"
	export E2E_TMP
	suites="scep-interop applesim-e2e"
	[ "$mode" = proxy ] || suites=applesim-e2e
	for suite in $suites; do
		e2e_run "check_e2e ($suite, $mode, CA key in the token)" \
			"$TMP/e2e-hsm-$mode-$suite.out" "$suite" ||
			stack_show_log "$APACHE_ERROR_LOG" 30
	done
	run_suite "hsm ($mode)" "$TMP/hsm-check-$mode.out" \
		sh "$ROOT/tests/hsm.sh" check "$TMP/hsm" "$STACK_USER" "$TMP/cgi-bin/scep.fcgi" \
		"$TMP/cgi-bin/enroll.fcgi" "$TMP/cgi-bin/checkin.fcgi" "$TMP/cgi-bin/server.fcgi"
	pass_end "hsm-$mode"
}
hsm_passes() {
	unset CK_RUN_SUITE
	hsm_token || return 1
	for mode in proxy fcgid; do
		hsm_pass "$mode"
	done
}
if [ -n "${CK_RUN_SUITE:-}" ] && [ "$CK_RUN_SUITE" != hsm ] &&
	[ "$CK_RUN_SUITE" != scep-interop ] && [ "$CK_RUN_SUITE" != applesim-e2e ]; then
	:
elif ! stack_is_root; then
	stack_say "hsm: skipped (needs root: the token's owner must be another user)"
else
	isolated hsm hsm_passes
	sh "$ROOT/tests/hsm.sh" stop "$TMP/hsm"
	pg_start "$TMP" test
fi
# ==== END HSM block ====

# ==== BEGIN TLS proxy block (issue 13, 9; tests/tlsproxy.sh) ====
# Behind a load balancer that terminates the devices' TLS: HAProxy in
# front of Apache (proxy mode) passes the device's certificate in an RFC
# 9440 Client-Cert header from 127.0.0.2, the only trusted_proxies
# address, and the programs require a TLS identity (checkin_require_tls):
# the tlsproxy-e2e suite enrolls and serves an iPhone through it and
# forges the header.
TLSPROXY_SOURCE=127.0.0.2
tlsproxy_pass() {
	scep_legacy proxy
	scep_ra proxy
	tport=$(stack_free_port 18543)
	PASS_PUBLIC_URL="https://127.0.0.1:$tport"
	MDM_TRUSTED_PROXIES=$TLSPROXY_SOURCE
	MDM_CHECKIN_REQUIRE_TLS=yes
	export MDM_TRUSTED_PROXIES MDM_CHECKIN_REQUIRE_TLS
	pass_apache proxy tlsproxy
	if tlsproxy_start "$TMP/tlsproxy" "$tport" "$https_port" "$TMP/ca/ca.pem" \
		"$TLSPROXY_SOURCE"; then
		E2E_TLSPROXY_BASE=$PASS_PUBLIC_URL
		E2E_TLSPROXY_SOURCE=$TLSPROXY_SOURCE
		E2E_APACHE_ACCESS_LOG=$TMP/apache/logs/access.log
		export E2E_TLSPROXY_BASE E2E_TLSPROXY_SOURCE E2E_APACHE_ACCESS_LOG
		e2e_run "check_e2e (TLS proxy)" "$TMP/e2e-tlsproxy.out" tlsproxy-e2e || {
			stack_show_log "$APACHE_ERROR_LOG" 30
			stack_show_log "$TMP/tlsproxy/haproxy.log" 30
		}
	else
		FAILED=$((FAILED + 1))
	fi
	tlsproxy_stop "$TMP/tlsproxy"
	pass_end tlsproxy
	cp "$TMP/tlsproxy/haproxy.log" "$TMP/logs-tlsproxy/" 2>/dev/null
}
if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" = tlsproxy-e2e ]; then
	isolated tlsproxy tlsproxy_pass
	tlsproxy_stop "$TMP/tlsproxy"
	pg_start "$TMP" test
fi
# ==== END TLS proxy block ====

# ==== BEGIN failover block (issue 13, faults; tests/failover.sh) ====
# PostgreSQL failover under load, in both Apache modes: each pass on a
# primary with a synchronous streaming standby of its own (the programs
# get both hosts, target_session_attrs=read-write); the failover-e2e suite
# crashes the primary in the middle of enrollments and connects, promotes
# the standby and prints what was lost (nothing).

# failover_db DIR: the pass's database, with a CA of its own in DIR/ca.
failover_db() {
	"$B/bin/mdmctl" db migrate &&
		"$B/bin/mdmctl" ca init --subject "/CN=MDM Test Failover CA/O=mdm tests" \
			--key-out "$1/ca/ca.key" --days 3650 &&
		"$B/bin/mdmctl" push-cert import --cert "$TMP/ca/push.pem" --key "$TMP/ca/push.key"
}
failover_pass() {
	mode=$1
	fo=$TMP/fo-$mode
	flog=$TMP/log/failover-$mode.log
	pass_step "$flog" "failover ($mode): the primary and standby could not be set up" \
		sh "$ROOT/tests/failover.sh" start "$fo" || return 1
	# shellcheck disable=SC1091 # written by tests/failover.sh start
	. "$fo/env"
	MDM_DB=$FAILOVER_CONNINFO
	export MDM_DB
	mkdir -p "$fo/ca"
	pass_step "$flog" "failover ($mode): mdmctl on the new database failed" \
		failover_db "$fo" || return 1
	stack_own "$fo/ca"
	scep_legacy "$mode"
	scep_ra proxy # the test RA is issued by the other stack's CA
	pass_apache "$mode" "$mode"
	E2E_FAILOVER="sh '$ROOT/tests/failover.sh' promote '$fo'"
	export E2E_FAILOVER
	e2e_run "check_e2e (failover, $mode)" "$TMP/e2e-failover-$mode.out" failover-e2e ||
		stack_show_log "$APACHE_ERROR_LOG" 30
	pass_end "failover-$mode"
	sh "$ROOT/tests/failover.sh" stop "$fo" >>"$flog" 2>&1
}
if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" = failover-e2e ]; then
	for mode in proxy fcgid; do
		isolated "failover-$mode" failover_pass "$mode"
		sh "$ROOT/tests/failover.sh" stop "$TMP/fo-$mode" >/dev/null 2>&1
	done
fi
# ==== END failover block ====

# ==== BEGIN deb block (issue 16; tests/deb.sh) ====
# The Debian package: built (make deb), installed with dpkg, a device
# enrolled through Apache with the installed files only, purged.  Skipped
# with its message when not root or without dpkg.
if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" = deb ]; then
	run_suite deb "$TMP/deb.out" sh "$ROOT/tests/deb.sh" "$BUILD"
fi
# ==== END deb block ====

apns_stop "$TMP/apns"
mkdir -p "$TMP/logs-apns"
cp "$TMP"/apns/apache/logs/*.log "$TMP/logs-apns/" 2>/dev/null

san_check

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
