#!/bin/sh
# certmonger enrolls over SCEP: certmonger.sh DIR SCEP_URL CHALLENGE
# DIR holds ca.pem (the CA as GetCACert served it, given to certmonger with
# -N as the CA that signs replies, since a CA without an RA has no chain
# for its discovery to sort); cert.pem is written
# there.  certmonger's daemon builds the messages and scep-submit sends
# them; without a system bus it runs on a private session bus, with its
# state in DIR (HOME), so nothing outside DIR is touched.
set -eu
dir=$1
url=$2
challenge=$3
export dir url challenge
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
	getcert add-scep-ca -s -c e2e -u "$url" -N "$dir/ca.pem"
	# The daemon fetches GetCACaps and GetCACert in the background; a request
	# submitted before that finished fails ("No RA certificate").  Wait.
	i=0
	until grep -qs "^id=e2e" "$CERTMONGER_CAS_DIR"/* &&
		grep -ls "^id=e2e" "$CERTMONGER_CAS_DIR"/* | xargs grep -qs "^ca_encryption_cert="; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "certmonger did not fetch the CA"; exit 1; }
		sleep 0.1
	done
	# -w waits until the request is answered either way.
	getcert request -s -c e2e -k "$dir/key.pem" -f "$dir/cert.pem" \
		-N CN=e2e-certmonger -L "$challenge" -w -v || true
	getcert list -s
	test -s "$dir/cert.pem"
'
