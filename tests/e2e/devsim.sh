#!/bin/sh
# A device simulator written from Apple's documents, not from our code: it
# speaks only HTTP, CMS and XML plists through tools nobody here wrote
# (curl, openssl, xmllint, micromdm's scepclient or certmonger).
#
#   devsim.sh DIR ENROLL_URL ROOT_PEM TLS_CA UDID AUTH [SCEP_CLIENT]
#
#   DIR          scratch directory (created), the device's state
#   ENROLL_URL   where the enrollment profile is fetched (GET)
#   ROOT_PEM     the root the device trusts for the profile signer
#   TLS_CA       the CA that signed the server's TLS certificate
#   UDID         the device's UDID
#   AUTH         tls: the identity authenticates as TLS client certificate;
#                signature: SignMessage, a detached CMS signature of the
#                body in the Mdm-Signature header, no client certificate
#   SCEP_CLIENT  scepclient (default) or certmonger
#
# Steps, as an iPhone or Mac goes through them (Configuration Profile
# Reference; Mobile Device Management Protocol):
#   1. GET the profile: application/x-apple-aspen-config, CMS SignedData;
#      the signature must verify to ROOT_PEM.
#   2. Read the SCEP payload (URL, Challenge) and the MDM payload
#      (CheckInURL, Topic, IdentityCertificateUUID, which must name the SCEP
#      payload's PayloadUUID).
#   3. Get the identity over SCEP with the profile's URL and challenge.
#   4. PUT Authenticate, then TokenUpdate, to the CheckInURL; each must be
#      answered 200.
# Prints "devsim: ok" at the end; any failure exits non-zero with the step.
set -eu

# shellcheck source=tests/e2e/simlib.sh
. "$(dirname "$0")/simlib.sh"
sim_init devsim "$@"
enroll_url=$url
auth=$6
scep_client=${7:-scepclient}

# ---------------------------------------------------------------- 1 profile
code=$(curl -sS --cacert "$tls_ca" -o profile.der -D profile.hdr -w '%{http_code}' \
	"$enroll_url") || sim_die "GET $enroll_url failed"
[ "$code" = 200 ] || sim_die "GET profile: HTTP $code"
grep -qi '^content-type: application/x-apple-aspen-config' profile.hdr ||
	sim_die "profile Content-Type is not application/x-apple-aspen-config"
openssl cms -verify -inform DER -in profile.der -CAfile "$root" -binary \
	-out profile.plist 2>profile.verify ||
	sim_die "profile signature does not verify to $root: $(cat profile.verify)"

# ---------------------------------------------------------------- 2 payloads
scep_url=$(sim_content profile.plist com.apple.security.scep URL)
challenge=$(sim_content profile.plist com.apple.security.scep Challenge)
scep_uuid=$(sim_payload profile.plist com.apple.security.scep PayloadUUID)
checkin_url=$(sim_payload profile.plist com.apple.mdm CheckInURL)
server_url=$(sim_payload profile.plist com.apple.mdm ServerURL)
topic=$(sim_payload profile.plist com.apple.mdm Topic)
identity_uuid=$(sim_payload profile.plist com.apple.mdm IdentityCertificateUUID)
[ -n "$scep_url" ] || sim_die "the SCEP payload has no URL"
[ -n "$challenge" ] || sim_die "the SCEP payload has no Challenge"
[ -n "$checkin_url" ] && [ -n "$server_url" ] && [ -n "$topic" ] ||
	sim_die "the MDM payload lacks CheckInURL, ServerURL or Topic"
[ -n "$scep_uuid" ] && [ "$identity_uuid" = "$scep_uuid" ] ||
	sim_die "IdentityCertificateUUID ($identity_uuid) is not the SCEP PayloadUUID ($scep_uuid)"
echo "$checkin_url" >checkin_url
echo "$server_url" >server_url
echo "$topic" >topic

# ---------------------------------------------------------------- 3 SCEP
sim_scep "$scep_client" "$scep_url" "$challenge" "devsim $udid"
# The challenge is one-time: spent now.

# ---------------------------------------------------------------- 4 check-in
token=$(openssl rand -base64 32)
magic=$(cat /proc/sys/kernel/random/uuid | tr a-z A-Z)
unlock=$(openssl rand -base64 48 | tr -d '\n')
echo "$magic" >push_magic

sim_plist authenticate.plist <<EOF
	<key>BuildVersion</key>
	<string>21A5326a</string>
	<key>DeviceName</key>
	<string>devsim &lt;$auth&gt;</string>
	<key>MessageType</key>
	<string>Authenticate</string>
	<key>Model</key>
	<string>iPhone15,2</string>
	<key>ModelName</key>
	<string>iPhone</string>
	<key>OSVersion</key>
	<string>17.0</string>
	<key>ProductName</key>
	<string>iPhone15,2</string>
	<key>SerialNumber</key>
	<string>DEVSIM$(printf %s "$udid" | tail -c 6)</string>
	<key>Topic</key>
	<string>$topic</string>
	<key>UDID</key>
	<string>$udid</string>
EOF

sim_plist tokenupdate.plist <<EOF
	<key>AwaitingConfiguration</key>
	<false/>
	<key>MessageType</key>
	<string>TokenUpdate</string>
	<key>PushMagic</key>
	<string>$magic</string>
	<key>Token</key>
	<data>
	$token
	</data>
	<key>Topic</key>
	<string>$topic</string>
	<key>UDID</key>
	<string>$udid</string>
	<key>UnlockToken</key>
	<data>
	$unlock
	</data>
EOF

# PUT one message to the CheckInURL the way the device authenticates.
checkin() {
	body=$1
	if [ "$auth" = signature ]; then
		openssl cms -sign -binary -in "$body" -signer cert.pem -inkey key.pem \
			-outform DER -out "$body.sig" || sim_die "openssl cms -sign failed"
		set -- -H "Mdm-Signature: $(base64 -w0 "$body.sig")"
	else
		set -- --cert cert.pem --key key.pem
	fi
	code=$(curl -sS --cacert "$tls_ca" "$@" -X PUT --data-binary "@$body" \
		-H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
		-o "$body.reply" -w '%{http_code}' "$checkin_url")
	[ "$code" = 200 ] || sim_die "$body: HTTP $code: $(head -c 300 "$body.reply")"
}
checkin authenticate.plist
checkin tokenupdate.plist
echo "devsim: ok ($auth, $scep_client)"
