#!/bin/sh
# shellcheck disable=SC2034,SC2317 # STACK_* are stack.sh's; cleanup runs from the trap
#
# tests/deb.sh BUILD: the Debian package (make deb) on this machine.
# Installs BUILD/deb/mdm-server_*.deb (built first when absent) with dpkg,
# enrolls a device through a real Apache using only what the package
# installed (the programs in /usr/lib/mdm/cgi-bin, /usr/bin/mdmctl, the
# site file and standalone template in /usr/share/mdm/apache-conf,
# /etc/mdm/mdm.conf), then purges it and checks that every file it
# installed is gone, with /etc/mdm and /var/lib/mdm; the system user _mdm
# stays, as Debian policy has it.  The client is the device simulator
# (BUILD/tests/applesim), a test tool.  PostgreSQL is a throw-away cluster
# (scripts/stack.sh) run as _mdm, like the Apache and the pools; the
# machine's Apache configuration is not touched.
#
# The package is MDM_TEST_DEB, or built now (make deb BUILD).  Needs
# root and dpkg, and refuses to run when mdm-server is installed already
# (it would purge it).  Last line: "deb: N passed, N failed".
# POSIX sh.

set -u

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cd "$ROOT" || exit 1
case $BUILD in
/*) B=$BUILD ;;
*) B=$ROOT/$BUILD ;;
esac

# The server's configuration comes from the package's /etc/mdm/mdm.conf
# only: nothing of the calling suite's environment.
for name in $(env | sed -n 's/^\(MDM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$name"
done

PASSED=0
FAILED=0
ok() {
	PASSED=$((PASSED + 1))
	echo "deb: ok: $*"
}
bad() {
	FAILED=$((FAILED + 1))
	echo "deb: FAILED: $*" >&2
}
check() {
	what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
	echo "deb: $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null 2>&1; then
	echo "deb: skipped (needs root and dpkg to install the package)"
	echo "deb: 0 passed, 0 failed"
	exit 0
fi
if dpkg-query -W -f='${db:Status-Status}' mdm-server 2>/dev/null | grep -q installed; then
	echo "deb: skipped (mdm-server is installed on this machine; this test would purge it)"
	echo "deb: 0 passed, 0 failed"
	exit 0
fi
[ -x "$B/tests/applesim" ] || {
	bad "$B/tests/applesim missing: make all BUILD=$BUILD"
	finish
}

# MDM_TEST_DEB names a package to test; by default the tree's, built now.
deb=${MDM_TEST_DEB:-}
if [ -z "$deb" ]; then
	make -s deb BUILD="$BUILD" >"$B/deb-build.log" 2>&1 || {
		tail -n 30 "$B/deb-build.log" >&2
		bad "make deb"
		finish
	}
	for deb in "$B"/deb/mdm-server_*.deb; do break; done
fi
ok "package $(basename "$deb")"
if command -v lintian >/dev/null 2>&1; then
	lint=$(lintian "$deb" 2>&1 | grep -v '^running with root privileges')
	if [ -z "$lint" ]; then ok "lintian clean"; else bad "lintian: $lint"; fi
fi

STACK_ROOT=$ROOT
STACK_PROG=deb
# shellcheck source=scripts/stack.sh
. "$ROOT/scripts/stack.sh"
# stack_init makes the test user mdm; this test runs as the package's.
stack_init

TMP=$(mktemp -d /tmp/mdm-deb.XXXXXX) || exit 1
chmod 755 "$TMP"
installed=
cleanup() {
	if [ -n "${STACK_USER:-}" ] && [ "$STACK_USER" = _mdm ]; then
		apache_stop "$TMP"
		pg_stop "$TMP"
	fi
	[ -n "$installed" ] && dpkg --purge mdm-server >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ install
if dpkg -i "$deb" >"$TMP/dpkg-i.log" 2>&1; then
	installed=1
	ok "dpkg -i"
else
	cat "$TMP/dpkg-i.log" >&2
	bad "dpkg -i"
	finish
fi
dpkg -L mdm-server >"$TMP/files"
check "the system user _mdm" id _mdm
for f in /usr/bin/mdmctl /usr/bin/mdm-pushd /usr/bin/mdm-eventd /usr/lib/mdm/cgi-bin/scep.fcgi \
	/usr/lib/mdm/cgi-bin/enroll.fcgi /usr/lib/mdm/cgi-bin/checkin.fcgi \
	/usr/lib/mdm/cgi-bin/server.fcgi /usr/lib/mdm/cgi-bin/acme.fcgi; do
	check "$f executable" test -x "$f"
done
check "migrations in /usr/share/mdm/sql" test -s /usr/share/mdm/sql/001_init.sql
check "Apple's public roots in /usr/share/mdm" test -s /usr/share/mdm/apple-ota-trust.pem -a \
	-s /usr/share/mdm/apple-enterprise-attestation-root.pem
check "units" test -s /lib/systemd/system/mdm-pushd.service -a \
	-s /lib/systemd/system/mdm-eventd.service -a \
	-s "/lib/systemd/system/mdm-fcgi@.service"
check "Apache snippet in conf-available, not enabled" test -s \
	/etc/apache2/conf-available/mdm-server.conf -a ! -e /etc/apache2/conf-enabled/mdm-server.conf
check "the snippet names the package's site file" \
	grep -q '^Include /usr/share/mdm/apache-conf/mdm-site.conf$' \
	/etc/apache2/conf-available/mdm-server.conf
check "the site file's default cgi-bin is the package's" \
	grep -q 'Define MDM_SITE_CGI_BIN /usr/lib/mdm/cgi-bin' /usr/share/mdm/apache-conf/mdm-site.conf
# The conf-available snippet as Debian's Apache would read it: the
# modules a2enmod enables, a throw-away certificate, then the file.
apache_syntax() {
	m=${APACHE_MODULES:-/usr/lib/apache2/modules}
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=deb-test \
		-keyout "$TMP/syntax.key" -out "$TMP/syntax.pem" -days 1 >/dev/null 2>&1 || return 1
	cat >"$TMP/syntax.conf" <<CONF
ServerRoot $TMP
ServerName 127.0.0.1
PidFile $TMP/syntax.pid
ErrorLog $TMP/syntax.log
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule alias_module $m/mod_alias.so
LoadModule socache_shmcb_module $m/mod_socache_shmcb.so
LoadModule ssl_module $m/mod_ssl.so
LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_fcgi_module $m/mod_proxy_fcgi.so
Define MDM_SITE_CERT $TMP/syntax.pem
Define MDM_SITE_KEY $TMP/syntax.key
Include /etc/apache2/conf-available/mdm-server.conf
CONF
	/usr/sbin/apache2 -t -f "$TMP/syntax.conf"
}
check "apache2 -t with the conf-available snippet" apache_syntax
check "/etc/mdm/mdm.conf root:_mdm 0640" \
	test "$(stat -c '%U:%G %a' /etc/mdm/mdm.conf)" = "root:_mdm 640"
check "/var/lib/mdm/keys _mdm 0700" \
	test "$(stat -c '%U:%G %a' /var/lib/mdm/keys)" = "_mdm:_mdm 700"
# shellcheck disable=SC2016 # the script is sh -c's
check "every key of mdmctl config keys is in mdm.conf" sh -c \
	'for k in $(MDM_CONFIG=/etc/mdm/mdm.conf /usr/bin/mdmctl config keys | cut -f1 | cut -d" " -f1); do
		grep -q "^#$k =" /etc/mdm/mdm.conf || { echo "missing $k" >&2; exit 1; }; done'
# The units are checked, not run: systemd need not be this machine's init
# (the pools below are scripts/stack.sh's spawn-fcgi pools of the installed
# programs, as the stack user _mdm, not the unit).
if command -v systemd-analyze >/dev/null 2>&1; then
	check "systemd-analyze verify of the units" sh -c 'cd / && systemd-analyze verify --man=no \
		/lib/systemd/system/mdm-pushd.service /lib/systemd/system/mdm-eventd.service \
		/lib/systemd/system/mdm-fcgi@scep.service'
fi

# ------------------------------------------------------ smoke enrollment
STACK_USER=_mdm
STACK_GROUP=_mdm
pg_start "$TMP" test
tls_make "$TMP"
stack_own "$TMP"
https_port=$(stack_free_port 19443)
http_port=$(stack_free_port 19080)
keys=/var/lib/mdm/keys
mdmctl() {
	as_stack /usr/bin/mdmctl "$@"
}
# The operator's configuration: appended to the package's commented file.
cat >>/etc/mdm/mdm.conf <<CONF

# tests/deb.sh
db = $PG_CONNINFO
log_level = warn
public_url = https://127.0.0.1:$https_port
scep_url = http://127.0.0.1:$http_port/scep
profile_signer_cert = $keys/signer.pem
profile_signer_key = $keys/signer.key
profile_signer_chain = $keys/ca.pem
CONF
push_uuid=$(tr 'a-f' 'A-F' </proc/sys/kernel/random/uuid)
if mdmctl db migrate >"$TMP/setup.log" 2>&1 &&
	mdmctl ca init --subject "/CN=MDM Package Test CA/O=mdm tests" \
		--key-out "$keys/ca.key" --days 30 >>"$TMP/setup.log" 2>&1 &&
	mdmctl ca cert >"$TMP/ca.pem" 2>>"$TMP/setup.log" &&
	install -o _mdm -g _mdm -m 0644 "$TMP/ca.pem" "$keys/ca.pem" &&
	mdmctl ca server-cert --subject "/CN=MDM Package Test Signer/O=mdm tests" \
		--key-out "$keys/signer.key" --cert-out "$keys/signer.pem" >>"$TMP/setup.log" 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$TMP/push.key" \
		-out "$TMP/push.pem" -subj "/UID=com.apple.mgmt.External.$push_uuid/CN=APSP:$push_uuid/C=US" \
		>>"$TMP/setup.log" 2>&1 && stack_own "$TMP" &&
	mdmctl push-cert import --cert "$TMP/push.pem" --key "$TMP/push.key" >>"$TMP/setup.log" 2>&1; then
	ok "installed mdmctl: migrate, ca init, profile signer, push certificate"
else
	cat "$TMP/setup.log" >&2
	bad "installed mdmctl set-up"
	finish
fi
check "the CA key is _mdm's alone" test "$(stat -c '%U %a' "$keys/ca.key")" = "_mdm 600"

# The package's site file and standalone template, not the checkout's.
STACK_ROOT=/usr/share/mdm
apache_start "$TMP" proxy /usr/lib/mdm/cgi-bin "$https_port" "$http_port"
STACK_ROOT=$ROOT
check "Apache runs the installed site file" \
	cmp -s "$TMP/apache/mdm-site.conf" /usr/share/mdm/apache-conf/mdm-site.conf
https=https://127.0.0.1:$https_port
if stack_wait_health "$https/scep/health" "$https/enroll/health" \
	"$https/mdm/checkin/health" "$https/mdm/server/health" "http://127.0.0.1:$http_port/scep/health"; then
	ok "every route healthy"
else
	for p in $STACK_PROGRAMS; do
		stack_show_log "$TMP/apache/logs/pool-$p.log" 5
	done
	stack_show_log "$TMP/apache/logs/error.log" 10
	bad "routes not healthy"
fi
if "$B/tests/applesim" enroll --dir "$TMP/device" --enroll-url "$https/enroll" \
	--trust "$TMP/ca.pem" --tls-ca "$TLS_CA_CERT" >"$TMP/applesim.log" 2>&1; then
	ok "enrollment: profile, SCEP (GetCACert, PKCSReq), Authenticate, TokenUpdate"
else
	tail -n 20 "$TMP/applesim.log" >&2
	stack_show_log "$TMP/apache/logs/error.log" 10
	bad "enrollment through the package"
fi
check "the identity is issued by the package's CA" sh -c \
	"openssl verify -CAfile '$TMP/ca.pem' '$TMP/device/identity.pem' >/dev/null"
check "mdmctl device list shows the device" sh -c \
	"runuser -u _mdm -- /usr/bin/mdmctl device list | grep -q -i iphone"
apache_stop "$TMP"
pg_stop "$TMP"
STACK_USER=

# ------------------------------------------------------------ purge
if dpkg --purge mdm-server >"$TMP/purge.log" 2>&1; then
	installed=
	ok "dpkg --purge"
else
	cat "$TMP/purge.log" >&2
	bad "dpkg --purge"
fi
left=
while read -r f; do
	[ -d "$f" ] && continue # shared directories (/usr/bin...) stay
	[ -e "$f" ] && left="$left $f"
done <"$TMP/files"
check "every installed file removed${left:+ (left:$left)}" test -z "$left"
check "/etc/mdm removed" test ! -e /etc/mdm
check "/var/lib/mdm removed" test ! -e /var/lib/mdm
check "/usr/share/mdm and /usr/lib/mdm removed" test ! -e /usr/share/mdm -a ! -e /usr/lib/mdm
check "no process of _mdm left" test -z "$(ps -u _mdm -o pid= 2>/dev/null)"
echo "deb: the system user _mdm stays (Debian policy: its uid may own files elsewhere)"
finish
