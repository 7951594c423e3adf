#!/bin/sh
# certmonger enrolls over SCEP: certmonger.sh DIR SCEP_URL CHALLENGE [TLS_CA]
# Set up as its users do it: `getcert add-scep-ca -c NAME -u URL`, nothing
# else, so that certmonger discovers the CA itself (GetCACaps, GetCACert)
# and must sort what GetCACert answers into the certificate it encrypts to
# and the CA it trusts for the replies.  cert.pem is written to DIR, and
# cas.txt: what certmonger learnt about the CA.
# TLS_CA (an https URL only) is the CA of the TLS server, given with -R as
# certmonger wants it.  certmonger 0.79's scep-submit uses -R for its first
# request only (GetCACaps, GetCACert) and verifies the PKIOperation
# against the system trust store, so an https SCEP URL needs the TLS CA
# there too: here it is added to the store in a private mount namespace
# (root only; exit status 77 when that cannot be done).
# certmonger's daemon builds the messages and scep-submit sends them;
# without a system bus it runs on a private session bus, with its state in
# DIR (HOME), so nothing outside DIR is touched.
set -eu
dir=$1
url=$2
challenge=$3
tls_ca=${4:-}
export dir url challenge tls_ca
if [ -n "$tls_ca" ] && [ -z "${CERTMONGER_SH_TRUSTED:-}" ]; then
	store=$(curl-config --ca 2>/dev/null || true)
	[ -n "$store" ] && [ -f "$store" ] || store=/etc/ssl/certs/ca-certificates.crt
	cat "$store" "$tls_ca" >"$dir/trust.pem" || exit 77
	unshare -m true 2>/dev/null || exit 77
	CERTMONGER_SH_TRUSTED=1
	export CERTMONGER_SH_TRUSTED store
	exec unshare -m sh -c 'mount --bind "$1/trust.pem" "$store" || exit 77
		exec sh "$0" "$@"' "$0" "$@"
fi
HOME=$dir
CERTMONGER_CONFIG_DIR=$dir/state
CERTMONGER_REQUESTS_DIR=$dir/state/requests
CERTMONGER_CAS_DIR=$dir/state/cas
CERTMONGER_LOCAL_CA_DIR=$dir/state/local
CERTMONGER_TMPDIR=$dir/state/tmp
export HOME CERTMONGER_CONFIG_DIR CERTMONGER_REQUESTS_DIR CERTMONGER_CAS_DIR \
	CERTMONGER_LOCAL_CA_DIR CERTMONGER_TMPDIR
mkdir -p "$CERTMONGER_REQUESTS_DIR" "$CERTMONGER_CAS_DIR" "$CERTMONGER_LOCAL_CA_DIR" \
	"$CERTMONGER_TMPDIR"

# getcert's first call starts the daemon by D-Bus activation, with this
# environment (so its state stays in DIR).
timeout 90 dbus-run-session -- sh -c '
	if [ -n "$tls_ca" ]; then
		getcert add-scep-ca -s -c e2e -u "$url" -R "$tls_ca"
	else
		getcert add-scep-ca -s -c e2e -u "$url"
	fi
	# The daemon fetches GetCACaps and GetCACert in the background; a request
	# submitted before that finished fails ("No RA certificate").  Wait.
	i=0
	until grep -qs "^id=e2e" "$CERTMONGER_CAS_DIR"/* &&
		grep -ls "^id=e2e" "$CERTMONGER_CAS_DIR"/* | xargs grep -qs "^ca_encryption_cert="; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "certmonger did not fetch the CA"; exit 1; }
		sleep 0.1
	done
	# What discovery made of GetCACert: ca_encryption_cert is what requests
	# are encrypted to, ca_encryption_issuer_cert (and the pool) what the
	# replies are verified against.
	grep -ls "^id=e2e" "$CERTMONGER_CAS_DIR"/* | xargs cat >"$dir/cas.txt"
	getcert list-cas -s -c e2e
	# -w waits until the request is answered either way.
	getcert request -s -c e2e -k "$dir/key.pem" -f "$dir/cert.pem" \
		-N CN=e2e-certmonger -L "$challenge" -w -v || true
	getcert list -s
	test -s "$dir/cert.pem"
'
