#!/bin/sh
#
# tests/run.sh BUILD: the whole test suite (`make test`, `make san`).
# Run from anywhere; BUILD is relative to the repository root.
#
#   1. a throw-away PostgreSQL in a fresh temporary directory, migrated
#      with BUILD/bin/mdmctl
#   2. BUILD/tests/check_unit (MDM_TEST_DB, MDM_DB, MDM_VECTORS,
#      MDM_TEST_PGCTL, MDM_TEST_PGDATA in its environment)
#   3. the APNs stand-in (tests/apns) started, and its own checks
#      (tests/apns/apns_test.sh)
#   4. BUILD/tests/check_e2e through a real Apache, once with
#      mod_proxy_fcgi + spawn-fcgi pools and once with mod_fcgid, with
#      the stand-in in E2E_APNS_URL, E2E_APNS_CA (its TLS CA, for
#      MDM_APNS_CA_FILE), E2E_APNS_DIR (requests.tsv, rules: see
#      tests/apns/apns.sh), E2E_PUSH_CERT, E2E_PUSH_KEY, E2E_PUSH_ISSUER,
#      E2E_PUSH_TOPIC (the push certificate imported into the database),
#      E2E_PUSH2_CERT, E2E_PUSH2_KEY, E2E_PUSH2_TOPIC (a second one, not
#      imported: the enroll suite imports and removes it)
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
APNS_STANDIN_BIN=$B/tests/apns_standin

for f in bin/mdmctl tests/check_unit tests/check_e2e tests/apns_standin cgi-bin/scep.fcgi \
	cgi-bin/enroll.fcgi cgi-bin/checkin.fcgi cgi-bin/server.fcgi; do
	[ -x "$B/$f" ] || stack_die "$B/$f missing: build it first (make all BUILD=$BUILD)"
done
stack_init

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mdm-test.XXXXXX") || stack_die "mktemp failed"
chmod 755 "$TMP"
stack_own "$TMP"

cleanup() {
	apns_stop "$TMP/apns"
	apache_stop "$TMP"
	stack_sweep "$TMP/"
	pg_stop "$TMP"
	for fo in "$TMP"/fo-*; do
		[ -d "$fo" ] && sh "$ROOT/tests/failover.sh" stop "$fo" >/dev/null 2>&1
	done
	sh "$ROOT/tests/tlsproxy.sh" stop "$TMP/tlsproxy" >/dev/null 2>&1
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

PASSED=0
FAILED=0

# run_suite NAME LOG CMD...: runs a suite with its output in LOG, shows
# that output and adds its checks to the totals.  The summary is the last
# line that is either check's ("N%: Checks: N, Failures: N, Errors: N")
# or a shell suite's ("NAME: N passed, N failed").  A suite that ends
# without one (crash, sanitizer exit), or exits non-zero with no failed
# check, counts as one failure more.
run_suite() {
	name=$1
	log=$2
	shift 2
	stack_say "running $name"
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	# shellcheck disable=SC2046 # a tag and two or three numbers
	set -- $(sed -n -e 's/^[0-9]*%: Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/check \1 \2 \3/p' \
		-e 's/^[^:]*: \([0-9]*\) passed, \([0-9]*\) failed$/shell \1 \2/p' "$log" | tail -n 1)
	case ${1:-} in
	check) ok=$(($2 - $3 - $4)) bad=$(($3 + $4)) ;;
	shell) ok=$2 bad=$3 ;;
	*)
		stack_say "$name: no summary (exit status $rc)" >&2
		FAILED=$((FAILED + 1))
		return 1
		;;
	esac
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		stack_say "$name: exit status $rc with no failed check" >&2
		FAILED=$((FAILED + 1))
	fi
	[ "$rc" -eq 0 ]
}

# ------------------------------------------------------------ sanitizers

SAN=0
# gcc links the runtime dynamically (__asan_init), clang statically.
if grep -E -q '__asan_init|AddressSanitizer' "$B/bin/mdmctl" 2>/dev/null; then
	SAN=1
	mkdir -p "$TMP/san"
	chmod 1777 "$TMP/san"
	# LeakSanitizer needs ptrace-like powers some sandboxes deny.
	leaks=1
	printf 'int main(void) { return 0; }\n' >"$TMP/san/probe.c"
	if ${CC:-cc} -fsanitize=address -o "$TMP/san/probe" "$TMP/san/probe.c" 2>/dev/null; then
		chmod 755 "$TMP/san/probe"
		if ASAN_OPTIONS=detect_leaks=1 as_stack "$TMP/san/probe" 2>&1 |
			grep -q LeakSanitizer; then
			leaks=0
		fi
	fi
	rm -f "$TMP/san/probe" "$TMP/san/probe.c"
	ASAN_OPTIONS="log_path=$TMP/san/asan:detect_leaks=$leaks:abort_on_error=0"
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$TMP/san/ubsan"
	LSAN_OPTIONS=${LSAN_OPTIONS:-}
	export ASAN_OPTIONS UBSAN_OPTIONS
	[ -n "$LSAN_OPTIONS" ] && export LSAN_OPTIONS
	CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
	export CK_TIMEOUT_MULTIPLIER
	stack_say "sanitizer build: reports go to $TMP/san (detect_leaks=$leaks)"
fi

# Fails the run if any sanitizer report appeared in the files or logs.
check_sanitizers() {
	[ "$SAN" = 1 ] || return 0
	found=0
	shown=0
	for f in "$TMP"/san/asan.* "$TMP"/san/ubsan.*; do
		[ -f "$f" ] || continue
		found=1
		shown=$((shown + 1))
		# The first few in full; the rest are usually the same bug.
		if [ "$shown" -le 3 ]; then
			stack_say "sanitizer report $(basename "$f"):" >&2
			head -n 40 "$f" >&2
		else
			stack_say "sanitizer report $(basename "$f"): $(grep -m 1 SUMMARY "$f")" >&2
		fi
	done
	for f in "$TMP"/logs-*/*.log; do
		[ -f "$f" ] || continue
		if grep -E -q 'AddressSanitizer|LeakSanitizer|runtime error:' "$f"; then
			stack_say "sanitizer report in $f:" >&2
			grep -E -A 20 'AddressSanitizer|LeakSanitizer|runtime error:' "$f" | head -n 60 >&2
			found=1
		fi
	done
	if [ "$found" = 1 ]; then
		FAILED=$((FAILED + 1))
		return 1
	fi
	return 0
}

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

"$B/bin/mdmctl" db migrate >"$TMP/log/migrate.log" 2>&1 || {
	cat "$TMP/log/migrate.log" >&2
	stack_die "mdmctl db migrate failed"
}
# Migrating twice must change nothing.
"$B/bin/mdmctl" db migrate >>"$TMP/log/migrate.log" 2>&1 || {
	cat "$TMP/log/migrate.log" >&2
	stack_die "mdmctl db migrate failed the second time (not idempotent)"
}
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

tls_make "$TMP" clients
# The stack user runs the programs: give it copies, so that it needs no
# access to the checkout (which may be under /root).
mkdir -p "$TMP/cgi-bin"
for p in $STACK_PROGRAMS; do
	cp "$B/cgi-bin/$p.fcgi" "$TMP/cgi-bin/"
done
chmod 755 "$TMP/cgi-bin" "$TMP"/cgi-bin/*.fcgi
stack_own "$TMP/cgi-bin"
# This stack's programs, for tests that signal them (and only them).
E2E_CGI_BIN=$TMP/cgi-bin
export E2E_CGI_BIN
E2E_TLS_CA=$TLS_CA_CERT
E2E_CLIENT_CERT=$CLIENT_CERT
E2E_CLIENT_KEY=$CLIENT_KEY
E2E_CLIENT_FP=$CLIENT_FP
E2E_SELF_CERT=$SELF_CERT
E2E_SELF_KEY=$SELF_KEY
E2E_SELF_FP=$SELF_FP
E2E_PGCTL=$PG_CTL_CMD
export E2E_TLS_CA E2E_CLIENT_CERT E2E_CLIENT_KEY E2E_CLIENT_FP E2E_SELF_CERT \
	E2E_SELF_KEY E2E_SELF_FP E2E_PGCTL

# The CA behind scep.fcgi: its key in a file only the stack user reads.
mkdir -p "$TMP/ca"
"$B/bin/mdmctl" ca init --subject "/CN=MDM Test Device CA/O=mdm tests" \
	--key-out "$TMP/ca/ca.key" --days 3650 >"$TMP/log/ca.log" 2>&1 || {
	cat "$TMP/log/ca.log" >&2
	stack_die "mdmctl ca init failed"
}
# What enroll.fcgi needs: a profile signer issued by the CA (the CA
# certificate carried as its chain), and a throw-away push certificate
# shaped like Apple's (subject UID com.apple.mgmt.External.<uuid>),
# issued by an "Apple-like" throw-away issuer that the APNs stand-in
# trusts.
"$B/bin/mdmctl" ca cert >"$TMP/ca/ca.pem" 2>>"$TMP/log/ca.log" &&
	"$B/bin/mdmctl" ca server-cert --subject "/CN=MDM Test Profile Signer/O=mdm tests" \
		--key-out "$TMP/ca/signer.key" --cert-out "$TMP/ca/signer.pem" \
	>>"$TMP/log/ca.log" 2>&1 || {
	cat "$TMP/log/ca.log" >&2
	stack_die "mdmctl ca server-cert failed"
}
# A SCEP registration authority issued by that CA (docs/CONFIG.md, ra_cert):
# the fcgid-mode stack runs with it, the proxy-mode stack without.
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' \
	>"$TMP/ca/ra.ext" &&
	openssl req -new -newkey rsa:2048 -nodes -keyout "$TMP/ca/ra.key" -out "$TMP/ca/ra.csr" \
		-subj "/CN=MDM Test SCEP RA/O=mdm tests" >>"$TMP/log/ca.log" 2>&1 &&
	openssl x509 -req -in "$TMP/ca/ra.csr" -CA "$TMP/ca/ca.pem" -CAkey "$TMP/ca/ca.key" \
		-CAcreateserial -days 365 -extfile "$TMP/ca/ra.ext" -out "$TMP/ca/ra.pem" \
		>>"$TMP/log/ca.log" 2>&1 || {
	cat "$TMP/log/ca.log" >&2
	stack_die "the SCEP RA certificate could not be made"
}
apns_push_cert "$TMP/ca" "$TMP/ca/push" "$TMP/ca/push-issuer"
"$B/bin/mdmctl" push-cert import --cert "$TMP/ca/push.pem" --key "$TMP/ca/push.key" \
	>>"$TMP/log/ca.log" 2>&1 || {
	cat "$TMP/log/ca.log" >&2
	stack_die "push certificate import failed"
}
# A second push certificate (another topic, same issuer), not imported
# here: the enroll e2e suite imports it for its several-topics case and
# removes it after, so every other suite sees one topic.
push_topic1=$APNS_PUSH_TOPIC
apns_push_cert "$TMP/ca" "$TMP/ca/push2" "$TMP/ca/push-issuer"
E2E_PUSH2_CERT=$TMP/ca/push2.pem
E2E_PUSH2_KEY=$TMP/ca/push2.key
E2E_PUSH2_TOPIC=$APNS_PUSH_TOPIC
APNS_PUSH_TOPIC=$push_topic1
export E2E_PUSH2_CERT E2E_PUSH2_KEY E2E_PUSH2_TOPIC
# OTA phase 2 needs a device certificate issued by Apple, which no test can
# have: a stand-in root and "Apple iPhone Device CA" below it, trusted by
# the programs through ota_trust_file (the shipped Apple file is what the
# unit tests check the real phase-2 message against).
mkdir -p "$TMP/ota"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$TMP/ota/root.key" \
	-out "$TMP/ota/root.pem" -subj "/O=mdm tests/CN=Stand-in Apple Root CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	>>"$TMP/log/ca.log" 2>&1 &&
	openssl req -new -newkey rsa:2048 -nodes -keyout "$TMP/ota/devca.key" \
		-out "$TMP/ota/devca.csr" -subj "/O=mdm tests/CN=Stand-in Apple iPhone Device CA" \
		>>"$TMP/log/ca.log" 2>&1 &&
	printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' \
		>"$TMP/ota/devca.ext" &&
	openssl x509 -req -in "$TMP/ota/devca.csr" -CA "$TMP/ota/root.pem" \
		-CAkey "$TMP/ota/root.key" -CAcreateserial -days 3650 -extfile "$TMP/ota/devca.ext" \
		-out "$TMP/ota/devca.pem" >>"$TMP/log/ca.log" 2>&1 &&
	cat "$TMP/ota/root.pem" "$TMP/ota/devca.pem" >"$TMP/ota/trust.pem" || {
	cat "$TMP/log/ca.log" >&2
	stack_die "the stand-in Apple device CA could not be made"
}
MDM_OTA_TRUST_FILE=$TMP/ota/trust.pem
E2E_OTA_DEVCA_CERT=$TMP/ota/devca.pem
E2E_OTA_DEVCA_KEY=$TMP/ota/devca.key
E2E_OTASIM="$ROOT/tests/e2e/otasim.sh"
export MDM_OTA_TRUST_FILE E2E_OTA_DEVCA_CERT E2E_OTA_DEVCA_KEY E2E_OTASIM
stack_own "$TMP/ca"
stack_own "$TMP/ota"
MDM_PROFILE_SIGNER_CERT=$TMP/ca/signer.pem
MDM_PROFILE_SIGNER_KEY=$TMP/ca/signer.key
MDM_PROFILE_SIGNER_CHAIN=$TMP/ca/ca.pem
E2E_DEVICE_CA=$TMP/ca/ca.pem
export MDM_PROFILE_SIGNER_CERT MDM_PROFILE_SIGNER_KEY MDM_PROFILE_SIGNER_CHAIN E2E_DEVICE_CA
# The simulator (tests/e2e/devsim.sh) trusts that CA for the profile signer.
E2E_DEVSIM="$ROOT/tests/e2e/devsim.sh"
export E2E_DEVSIM
# The Apple device simulator (tests/sim/applesim: an iPhone and a Mac).
E2E_APPLESIM=$B/tests/applesim
export E2E_APPLESIM
# A static challenge too (scep_challenge), for the clients that use one.
MDM_SCEP_CHALLENGE="e2e-static-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
E2E_STATIC_CHALLENGE=$MDM_SCEP_CHALLENGE
E2E_TMP="$TMP/e2e"
E2E_CERTMONGER_SCRIPT="$ROOT/tests/e2e/certmonger.sh"
mkdir -p "$E2E_TMP"
export MDM_SCEP_CHALLENGE E2E_STATIC_CHALLENGE E2E_TMP E2E_CERTMONGER_SCRIPT
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

# The APNs stand-in, for the whole e2e phase: Apple's push service
# cannot be reached from here.
apns_start "$TMP/apns" "$(stack_free_port 19443)" "$TMP/ca/push-issuer.pem"
E2E_APNS_URL=$APNS_URL
E2E_APNS_CA=$APNS_CA
E2E_APNS_DIR=$TMP/apns
E2E_PUSH_CERT=$TMP/ca/push.pem
E2E_PUSH_KEY=$TMP/ca/push.key
E2E_PUSH_ISSUER=$TMP/ca/push-issuer.pem
E2E_PUSH_TOPIC=$APNS_PUSH_TOPIC
export E2E_APNS_URL E2E_APNS_CA E2E_APNS_DIR E2E_PUSH_CERT E2E_PUSH_KEY E2E_PUSH_ISSUER \
	E2E_PUSH_TOPIC
# The push daemon under test (tests/e2e/push_e2e.c runs it against the stand-in).
E2E_PUSHD=$B/bin/mdm-pushd
E2E_MDMCTL_DIR=$B/bin
export E2E_PUSHD E2E_MDMCTL_DIR
run_suite apns_test "$TMP/apns-test.out" sh "$ROOT/tests/apns/apns_test.sh" ||
	stack_show_log "$TMP/apns/apache/logs/error.log" 30

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
		"https://127.0.0.1:$https_port/mdm/server/health" ||
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

# isolated NAME CMD...: runs CMD in a subshell (what it exports stays
# there), its output in $TMP/NAME.out, then takes over its counts.
isolated() {
	iso=$1
	shift
	(
		"$@"
		echo "$iso-totals $PASSED $FAILED"
	) >"$TMP/$iso.out" 2>&1
	cat "$TMP/$iso.out"
	set -- $(sed -n "s/^$iso-totals \([0-9]*\) \([0-9]*\)\$/\1 \2/p" "$TMP/$iso.out")
	if [ $# -eq 2 ]; then
		PASSED=$1
		FAILED=$2
	else
		FAILED=$((FAILED + 1))
	fi
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
	run_suite "check_e2e ($mode)" "$TMP/e2e-$mode.out" "$B/tests/check_e2e" ||
		stack_show_log "$APACHE_ERROR_LOG" 30

	pass_end "$mode"
	pg_start "$TMP" test
done

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
	sh "$ROOT/tests/hsm.sh" start "$TMP/hsm" "$STACK_USER" >"$TMP/log/hsm.log" 2>&1 || {
		cat "$TMP/log/hsm.log" >&2
		stack_say "hsm: token set-up failed" >&2
		FAILED=$((FAILED + 1))
		return 1
	}
	# shellcheck disable=SC1091 # written by tests/hsm.sh start
	. "$TMP/hsm/env"
	export PKCS11_MODULE_PATH P11_KIT_SERVER_ADDRESS
	# As the stack user: p11-kit server admits the socket's user only
	# (and that user alone reads the PIN file).
	mkdir -p "$TMP/hsm-bin"
	cp "$B/bin/mdmctl" "$TMP/hsm-bin/"
	chmod 755 "$TMP/hsm-bin" "$TMP/hsm-bin/mdmctl"
}
hsm_pass() {
	mode=$1
	ctl=$TMP/hsm-bin/mdmctl
	pg_psql postgres -c "CREATE DATABASE mdm_hsm_$mode OWNER mdm" >/dev/null || return 1
	MDM_DB="host=$PG_SOCK port=$STACK_PG_PORT dbname=mdm_hsm_$mode user=mdm"
	export MDM_DB
	{
		as_stack "$ctl" db migrate &&
			as_stack "$ctl" ca init --subject "/CN=MDM Test HSM CA/O=mdm tests" \
				--key "$HSM_URI1" --days 3650 &&
			as_stack "$ctl" ca rekey --key "$HSM_URI2" --days 3650 &&
			as_stack "$ctl" ca activate &&
			as_stack "$ctl" push-cert import --cert "$TMP/ca/push.pem" \
				--key "$TMP/ca/push.key"
	} >>"$TMP/log/hsm.log" 2>&1 || {
		cat "$TMP/log/hsm.log" >&2
		stack_say "hsm ($mode): mdmctl with the keys in the token failed" >&2
		FAILED=$((FAILED + 1))
		return 1
	}
	scep_legacy "$mode"
	scep_ra proxy # the test RA is issued by the other stack's CA
	pass_apache "$mode" "hsm-$mode"
	E2E_TMP="$TMP/e2e-hsm-$mode"
	mkdir -p "$E2E_TMP"
	export E2E_TMP
	suites="scep-interop applesim-e2e"
	[ "$mode" = proxy ] || suites=applesim-e2e
	for suite in $suites; do
		run_suite "check_e2e ($suite, $mode, CA key in the token)" \
			"$TMP/e2e-hsm-$mode-$suite.out" \
			env CK_RUN_SUITE=$suite "$B/tests/check_e2e" ||
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
	if sh "$ROOT/tests/tlsproxy.sh" start "$TMP/tlsproxy" "$tport" "$https_port" \
		"$SERVER_CERT" "$SERVER_KEY" "$TMP/ca/ca.pem" "$TLS_CA_CERT" "$TLSPROXY_SOURCE"; then
		E2E_TLSPROXY_BASE=$PASS_PUBLIC_URL
		E2E_TLSPROXY_SOURCE=$TLSPROXY_SOURCE
		E2E_APACHE_ACCESS_LOG=$TMP/apache/logs/access.log
		export E2E_TLSPROXY_BASE E2E_TLSPROXY_SOURCE E2E_APACHE_ACCESS_LOG
		run_suite "check_e2e (TLS proxy)" "$TMP/e2e-tlsproxy.out" \
			env CK_RUN_SUITE=tlsproxy-e2e "$B/tests/check_e2e" || {
			stack_show_log "$APACHE_ERROR_LOG" 30
			stack_show_log "$TMP/tlsproxy/haproxy.log" 30
		}
	else
		FAILED=$((FAILED + 1))
	fi
	sh "$ROOT/tests/tlsproxy.sh" stop "$TMP/tlsproxy"
	pass_end tlsproxy
	cp "$TMP/tlsproxy/haproxy.log" "$TMP/logs-tlsproxy/" 2>/dev/null
}
if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" = tlsproxy-e2e ]; then
	isolated tlsproxy tlsproxy_pass
	sh "$ROOT/tests/tlsproxy.sh" stop "$TMP/tlsproxy" 2>/dev/null
	pg_start "$TMP" test
fi
# ==== END TLS proxy block ====

# ==== BEGIN failover block (issue 13, faults; tests/failover.sh) ====
# PostgreSQL failover under load, in both Apache modes: each pass on a
# primary with a synchronous streaming standby of its own (the programs
# get both hosts, target_session_attrs=read-write); the failover-e2e suite
# crashes the primary in the middle of enrollments and connects, promotes
# the standby and prints what was lost (nothing).
failover_pass() {
	mode=$1
	fo=$TMP/fo-$mode
	flog=$TMP/log/failover-$mode.log
	sh "$ROOT/tests/failover.sh" start "$fo" >"$flog" 2>&1 || {
		cat "$flog" >&2
		stack_say "failover ($mode): the primary and standby could not be set up" >&2
		FAILED=$((FAILED + 1))
		return 1
	}
	# shellcheck disable=SC1091 # written by tests/failover.sh start
	. "$fo/env"
	MDM_DB=$FAILOVER_CONNINFO
	export MDM_DB
	mkdir -p "$fo/ca"
	{
		"$B/bin/mdmctl" db migrate &&
			"$B/bin/mdmctl" ca init --subject "/CN=MDM Test Failover CA/O=mdm tests" \
				--key-out "$fo/ca/ca.key" --days 3650 &&
			"$B/bin/mdmctl" push-cert import --cert "$TMP/ca/push.pem" \
				--key "$TMP/ca/push.key"
	} >>"$flog" 2>&1 || {
		cat "$flog" >&2
		stack_say "failover ($mode): mdmctl on the new database failed" >&2
		FAILED=$((FAILED + 1))
		return 1
	}
	stack_own "$fo/ca"
	scep_legacy "$mode"
	scep_ra proxy # the test RA is issued by the other stack's CA
	pass_apache "$mode" "$mode"
	E2E_FAILOVER="sh '$ROOT/tests/failover.sh' promote '$fo'"
	export E2E_FAILOVER
	run_suite "check_e2e (failover, $mode)" "$TMP/e2e-failover-$mode.out" \
		env CK_RUN_SUITE=failover-e2e "$B/tests/check_e2e" ||
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

apns_stop "$TMP/apns"
mkdir -p "$TMP/logs-apns"
cp "$TMP"/apns/apache/logs/*.log "$TMP/logs-apns/" 2>/dev/null

check_sanitizers

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
