#!/bin/sh
# certmonger enrolls over SCEP: certmonger.sh DIR SCEP_URL CHALLENGE
# DIR holds ca.pem (the CA as GetCACert served it); cert.pem is written
# there.  certmonger's daemon builds the messages and scep-submit sends
# them; without a system bus it runs on a private session bus, with its
# state in DIR (HOME), so nothing outside DIR is touched.
set -eu
dir=$1
url=$2
challenge=$3
export dir url challenge
HOME=$dir
XDG_CONFIG_HOME=$dir/config
XDG_DATA_HOME=$dir/data
export HOME XDG_CONFIG_HOME XDG_DATA_HOME
mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"

timeout 90 dbus-run-session -- sh -c '
	certmonger -s -n >"$dir/daemon.log" 2>&1 &
	daemon=$!
	trap "kill $daemon 2>/dev/null; wait $daemon 2>/dev/null" EXIT
	i=0
	until getcert list-cas -s >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 50 ] || { echo "certmonger did not start"; exit 1; }
		sleep 0.2
	done
	getcert add-scep-ca -s -c e2e -u "$url" -R "$dir/ca.pem"
	# -w waits until the request is answered either way.
	getcert request -s -c e2e -k "$dir/key.pem" -f "$dir/cert.pem" \
		-N CN=e2e-certmonger -L "$challenge" -w -v || true
	getcert list -s
	test -s "$dir/cert.pem"
'
