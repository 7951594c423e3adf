#!/bin/sh
# shellcheck disable=SC2016 # sh -c scripts take their arguments as $0, $1...
#
# tests/hsm.sh: the CA key in a SoftHSM2 token owned by another user,
# served by `p11-kit server` on a unix socket (issue 13; docs/HSM.md).
# Run as root by tests/run.sh (the token's owner must differ from the
# stack user, which only root can arrange).  POSIX sh.
#
#   sh tests/hsm.sh start DIR CLIENT_USER
#       creates the system user mdm-hsm (once); in DIR/token a SoftHSM2
#       token "mdm-ca" owned by mdm-hsm, mode 0700, holding two RSA-2048
#       keys: "ca1" generated in the token, "ca2" imported from a PEM file
#       that is then deleted; DIR/pin, the user PIN, readable by
#       CLIENT_USER only; `p11-kit server` running as mdm-hsm (CAP_CHOWN
#       only, to hand the socket to CLIENT_USER) on DIR/run/pkcs11.
#       Writes DIR/env: PKCS11_MODULE_PATH (p11-kit-client.so),
#       P11_KIT_SERVER_ADDRESS, HSM_URI1, HSM_URI2, HSM_PID.
#   sh tests/hsm.sh check DIR CLIENT_USER PROGRAM_PATH [KEYLESS_PATH...]
#       checks, as a shell suite ("hsm: N passed, N failed"), that
#       CLIENT_USER cannot open the token's files, that every running
#       process whose command line starts with PROGRAM_PATH runs as
#       CLIENT_USER, never has SoftHSM2 mapped, and (at least one) reaches
#       the key through p11-kit-client.so, that
#       every running process of each KEYLESS_PATH (the programs that parse
#       hostile input and only verify: enroll, checkin, server.fcgi) has
#       neither mapped (it never loaded the CA key), and that through the
#       socket CLIENT_USER can sign but not read the keys.
#   sh tests/hsm.sh stop DIR
#       stops the server (by its pid, only if it is p11-kit's).

set -u

HSM_USER=mdm-hsm
HSM_LABEL=mdm-ca
HSM_SO_PIN=${HSM_SO_PIN:-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}

say() {
	printf 'hsm: %s\n' "$*" >&2
}

die() {
	say "$*"
	exit 1
}

find_first() {
	for f in "$@"; do
		[ -e "$f" ] && {
			echo "$f"
			return 0
		}
	done
	return 1
}

softhsm_module() {
	find_first /usr/lib/softhsm/libsofthsm2.so \
		/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
		/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so
}

client_module() {
	find_first /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so \
		/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so \
		/usr/lib/pkcs11/p11-kit-client.so
}

# as_hsm CMD...: as the token's owner, with its SoftHSM2 configuration.
as_hsm() {
	(cd / && runuser -u "$HSM_USER" -- env SOFTHSM2_CONF="$DIR/softhsm2.conf" "$@")
}

as_client() {
	(cd / && runuser -u "$CLIENT" -- env P11_KIT_SERVER_ADDRESS="unix:path=$DIR/run/pkcs11" "$@")
}

hsm_start() {
	[ "$(id -u)" = 0 ] || die "needs root (the token's owner is another user)"
	for tool in softhsm2-util pkcs11-tool p11-kit setpriv openssl; do
		command -v "$tool" >/dev/null 2>&1 ||
			die "$tool not found: run 'make deps' as root (softhsm2, opensc, p11-kit, util-linux)"
	done
	SOFTHSM=$(softhsm_module) || die "libsofthsm2.so not found (package softhsm2)"
	CLIENT_SO=$(client_module) || die "p11-kit-client.so not found (package p11-kit-modules)"
	if ! id -u "$HSM_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$HSM_USER" || die "cannot create user $HSM_USER"
	fi
	rm -rf "$DIR"
	mkdir -p "$DIR/token" "$DIR/run" "$DIR/import" || die "cannot make $DIR"
	chmod 755 "$DIR"
	printf 'directories.tokendir = %s/token\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
		"$DIR" >"$DIR/softhsm2.conf"
	chmod 644 "$DIR/softhsm2.conf"
	chown "$HSM_USER:" "$DIR/token" "$DIR/run" "$DIR/import"
	chmod 700 "$DIR/token" "$DIR/import"
	chmod 755 "$DIR/run"
	pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	as_hsm softhsm2-util --init-token --free --label "$HSM_LABEL" --so-pin "$HSM_SO_PIN" \
		--pin "$pin" >"$DIR/setup.log" 2>&1 || {
		cat "$DIR/setup.log" >&2
		die "softhsm2-util --init-token failed"
	}
	# ca1: generated inside the token; it never exists anywhere else.
	as_hsm pkcs11-tool --module "$SOFTHSM" --token-label "$HSM_LABEL" --login --pin "$pin" \
		--keypairgen --key-type rsa:2048 --label ca1 --id 01 >>"$DIR/setup.log" 2>&1 || {
		cat "$DIR/setup.log" >&2
		die "pkcs11-tool --keypairgen failed"
	}
	# ca2: an existing PEM key imported (how a file CA key moves into an
	# HSM), then the file deleted.
	as_hsm openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
		-out "$DIR/import/ca2.pem" >>"$DIR/setup.log" 2>&1 &&
		as_hsm softhsm2-util --import "$DIR/import/ca2.pem" --token "$HSM_LABEL" \
			--label ca2 --id 02 --pin "$pin" >>"$DIR/setup.log" 2>&1 || {
		cat "$DIR/setup.log" >&2
		die "importing ca2 failed"
	}
	rm -rf "$DIR/import"
	printf '%s' "$pin" >"$DIR/pin"
	chown "$CLIENT:" "$DIR/pin"
	chmod 600 "$DIR/pin"
	# The server runs as the token's owner.  p11-kit 0.24 drops to
	# --run-as-user before it binds, and then cannot chown the socket to
	# the client (-u): keep CAP_CHOWN, and nothing else, across the drop.
	# Under systemd: User=mdm-hsm, AmbientCapabilities=CAP_CHOWN.
	setsid setpriv --reuid "$HSM_USER" --regid "$HSM_USER" --clear-groups \
		--inh-caps=-all,+chown --ambient-caps=-all,+chown --bounding-set=-all,+chown \
		env SOFTHSM2_CONF="$DIR/softhsm2.conf" \
		p11-kit server -f --provider "$SOFTHSM" -u "$CLIENT" -g "$(id -gn "$CLIENT")" \
		-n "$DIR/run/pkcs11" "pkcs11:token=$HSM_LABEL" \
		</dev/null >"$DIR/server.log" 2>&1 &
	pid=$!
	i=0
	while [ ! -S "$DIR/run/pkcs11" ]; do
		i=$((i + 1))
		if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$DIR/server.log" >&2
			die "p11-kit server did not make its socket"
		fi
		sleep 0.1
	done
	echo "$pid" >"$DIR/server.pid"
	uri="pkcs11:token=$HSM_LABEL;type=private"
	{
		echo "PKCS11_MODULE_PATH=$CLIENT_SO"
		echo "P11_KIT_SERVER_ADDRESS=unix:path=$DIR/run/pkcs11"
		echo "HSM_URI1='$uri;object=ca1?pin-source=file:$DIR/pin'"
		echo "HSM_URI2='$uri;object=ca2?pin-source=file:$DIR/pin'"
		echo "HSM_PID=$pid"
	} >"$DIR/env"
	chmod 644 "$DIR/env"
}

hsm_stop() {
	[ -f "$DIR/server.pid" ] || return 0
	pid=$(cat "$DIR/server.pid")
	case $(ps -o args= -p "$pid" 2>/dev/null) in
	*"$DIR/run/pkcs11"*)
		kill -TERM "$pid" 2>/dev/null
		i=0
		while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
			i=$((i + 1))
			sleep 0.1
		done
		;;
	esac
	rm -f "$DIR/server.pid"
}

PASS=0
FAIL=0
ok() {
	PASS=$((PASS + 1))
	printf 'ok: %s\n' "$*"
}
not_ok() {
	FAIL=$((FAIL + 1))
	printf 'FAILED: %s\n' "$*"
}

hsm_check() {
	CLIENT_SO=$(client_module) || die "p11-kit-client.so not found"
	# 1. The token's files: not even listable by the client.
	if as_client ls "$DIR/token" >/dev/null 2>&1; then
		not_ok "$CLIENT can list $DIR/token"
	else
		ok "$CLIENT cannot list the token directory"
	fi
	n=0
	opened=0
	for f in $(find "$DIR/token" -type f); do
		n=$((n + 1))
		as_client dd if="$f" of=/dev/null count=1 2>/dev/null && opened=$((opened + 1))
	done
	if [ "$n" -gt 0 ] && [ "$opened" -eq 0 ]; then
		ok "$CLIENT can open none of the token's $n files"
	else
		not_ok "$CLIENT opened $opened of the token's $n files"
	fi
	# 2. The running programs: the client user, the p11-kit client module,
	#    no token module.
	procs=0
	keyed=0
	for p in $(ps -u "$CLIENT" -o pid= -o args= | awk -v pre="$PROG" 'index($2, pre) == 1 { print $1 }'); do
		procs=$((procs + 1))
		uid=$(awk '/^Uid:/ { print $2 }' "/proc/$p/status")
		if [ "$uid" != "$(id -u "$CLIENT")" ]; then
			not_ok "process $p runs as uid $uid"
		elif grep -q softhsm "/proc/$p/maps"; then
			not_ok "process $p has SoftHSM2 itself mapped"
		elif grep -q p11-kit-client "/proc/$p/maps"; then
			keyed=$((keyed + 1))
			ok "process $p ($(basename "$(awk '{ print $1 }' "/proc/$p/cmdline" | tr '\0' ' ')")): uid $uid, key through p11-kit-client.so only"
		else
			# mod_fcgid starts a process per busy moment; one that served
			# only GetCACert or /health has not needed the key yet.
			ok "process $p: uid $uid, has not loaded the key yet (no PKCS#11 module at all)"
		fi
		for f in $(find "$DIR/token" -type f); do
			if [ "$(readlink -f "/proc/$p/fd/"* 2>/dev/null | grep -c "^$f$")" != 0 ]; then
				not_ok "process $p holds $f open"
			fi
		done
	done
	[ "$procs" -gt 0 ] || not_ok "no running process under $PROG (did the suites start scep.fcgi?)"
	[ "$procs" -eq 0 ] || [ "$keyed" -gt 0 ] ||
		not_ok "no $PROG process reaches the key through p11-kit-client.so (did it sign anything?)"
	for k in $KEYLESS; do
		procs=0
		for p in $(ps -u "$CLIENT" -o pid= -o args= | awk -v pre="$k" 'index($2, pre) == 1 { print $1 }'); do
			procs=$((procs + 1))
			if grep -q -e p11-kit-client -e softhsm "/proc/$p/maps"; then
				not_ok "process $p ($(basename "$k")) has a PKCS#11 module mapped: it loaded the CA key"
			else
				ok "process $p ($(basename "$k")): no PKCS#11 module mapped, no CA key"
			fi
		done
		[ "$procs" -gt 0 ] || not_ok "no running process under $k"
	done
	# 3. Through the socket: the client signs, but cannot read a private key.
	pin=$(as_client cat "$DIR/pin")
	echo test >"$DIR/msg"
	chmod 644 "$DIR/msg"
	if as_client pkcs11-tool --module "$CLIENT_SO" --login --pin "$pin" --sign \
		--mechanism SHA256-RSA-PKCS --label ca1 --input-file "$DIR/msg" \
		--output-file /dev/null >/dev/null 2>&1; then
		ok "$CLIENT signs with ca1 through the socket"
	else
		not_ok "$CLIENT cannot sign with ca1 through the socket"
	fi
	# PKCS#11 2.40 section 4.9: a sensitive key's value is never revealed,
	# a key that is not extractable cannot be wrapped out of the token.
	# (pkcs11-tool --read-object would refuse by itself: not a test.)
	attrs=$(as_client pkcs11-tool --module "$CLIENT_SO" --login --pin "$pin" -O --type privkey 2>&1)
	for k in ca1 ca2; do
		access=$(printf '%s\n' "$attrs" | awk -v k="$k" '
			/label:/ { cur = $2 }
			/Access:/ && cur == k { sub(/^ *Access: */, ""); print }')
		case ", $access," in
		*", sensitive,"*)
			case ", $access," in
			*", extractable,"*) not_ok "private key $k is extractable ($access)" ;;
			*) ok "private key $k: sensitive, not extractable ($access)" ;;
			esac
			;;
		*) not_ok "private key $k is not sensitive (${access:-not found})" ;;
		esac
	done
	echo "hsm: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

[ $# -ge 2 ] || die "usage: hsm.sh start DIR CLIENT_USER | check DIR CLIENT_USER PROGRAM_PATH [KEYLESS_PATH...] | stop DIR"
CMD=$1
DIR=$2
case $CMD in
start)
	[ $# -eq 3 ] || die "usage: hsm.sh start DIR CLIENT_USER"
	CLIENT=$3
	hsm_start
	;;
check)
	[ $# -ge 4 ] || die "usage: hsm.sh check DIR CLIENT_USER PROGRAM_PATH [KEYLESS_PATH...]"
	CLIENT=$3
	PROG=$4
	shift 4
	KEYLESS=$*
	hsm_check
	;;
stop) hsm_stop ;;
*) die "unknown command $CMD" ;;
esac
