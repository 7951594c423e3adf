#!/bin/sh
#
# scripts/install-deps.sh: installs the Debian packages the build, the
# tests and the demo need (`make deps`).  As root: installs what is
# missing (apt-get update once, only then).  Not root: says what is
# missing and goes on.  Silent when everything is there.
#
# Installing apache2 or postgresql would start Debian's own services;
# the stacks here never use them (they run their own Apache and
# PostgreSQL as an unprivileged user), so a temporary policy-rc.d keeps
# them from starting during the install.

set -u

PACKAGES="
build-essential pkg-config clang clang-format
libfcgi-dev libfcgi-bin libssl-dev openssl libxml2-dev libpq-dev
check libcurl4-openssl-dev libnghttp2-dev valgrind
postgresql postgresql-client
apache2 libapache2-mod-fcgid spawn-fcgi lighttpd
curl ca-certificates libxml2-utils
scep certmonger dbus
softhsm2 libengine-pkcs11-openssl opensc p11-kit p11-kit-modules
haproxy
iproute2 procps passwd util-linux coreutils sed python3 python3-yaml
nghttp2-server linux-perf time libcbor-dev python3-acme
dpkg-dev debhelper fakeroot lintian devscripts git
"

say() {
	printf 'install-deps: %s\n' "$*" >&2
}

# shellcheck disable=SC2086 # the package list is split on purpose
if ! command -v dpkg-query >/dev/null 2>&1; then
	say "not a Debian system: install the equivalents of:" \
		"$(printf '%s ' $PACKAGES)"
	exit 0
fi

missing=
for pkg in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)
	if [ "$status" != installed ]; then
		missing="$missing $pkg"
	fi
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" != 0 ]; then
	say "missing packages:$missing"
	say "run 'make deps' as root (or: sudo apt-get install$missing); going on without them"
	exit 0
fi

log=$(mktemp /tmp/install-deps.XXXXXX) || exit 1
policy=/usr/sbin/policy-rc.d
own_policy=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	if [ -n "$own_policy" ]; then
		rm -f "$policy"
	fi
	rm -f "$log"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# Temporary, from scripts/install-deps.sh.\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi

say "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt_opts="-q -y -o DPkg::Lock::Timeout=300"
# shellcheck disable=SC2086 # word splitting of the option and package lists
if ! apt-get $apt_opts update >"$log" 2>&1 ||
	! apt-get $apt_opts install --no-install-recommends $missing >>"$log" 2>&1; then
	tail -n 30 "$log" >&2
	say "apt-get failed"
	exit 1
fi
exit 0
