#!/bin/sh
# An over-the-air enrollment simulator written from Apple's "Over-the-Air
# Profile Delivery and Configuration", not from our code: HTTP, CMS and
# plists through curl, openssl and xmllint only (and a third-party SCEP
# client for the identity).
#
#   otasim.sh DIR BASE_URL ROOT_PEM TLS_CA UDID APPLE_CA_CERT APPLE_CA_KEY [SCEP_CLIENT]
#
#   DIR            scratch directory (created), the device's state
#   BASE_URL       https://host:port; phase 1 is GET BASE_URL/enroll/ota
#   ROOT_PEM       the root the device trusts for the profile signer
#   TLS_CA         the CA that signed the server's TLS certificate
#   UDID           the device's UDID
#   APPLE_CA_*     stands in for "Apple iPhone Device CA": the device's
#                  Apple-issued certificate is made under it (the server is
#                  told to trust it through ota_trust_file)
#   SCEP_CLIENT    scepclient (default) or certmonger
#   OTASIM_QUERY   (environment) appended to the phase-1 URL, e.g.
#                  "?topic=com.apple.mgmt.External.<uuid>"
#
# Phases:
#   1. GET the profile service profile; its signature must verify to
#      ROOT_PEM; read the Profile Service payload's URL and Challenge.
#   2. POST (application/pkcs7-signature) the device attributes with that
#      CHALLENGE, signed by the Apple-issued certificate; the answer is a
#      signed profile with a SCEP payload; enroll over SCEP with it.
#   3. POST the attributes again, signed by the new identity; the answer is
#      a signed profile whose EncryptedPayloadContent decrypts with the
#      identity's key (openssl cms -decrypt) to payloads holding the MDM
#      payload (com.apple.mdm).
# Leaves p2.der (the phase-2 message), attrs.plist, apple.pem/.key and
# cert.pem/key.pem (the identity) in DIR.  Prints "otasim: ok" at the end.
set -eu

# shellcheck source=tests/e2e/simlib.sh
. "$(dirname "$0")/simlib.sh"
sim_init otasim "$@"
base=$url
apple_ca=$6
apple_key=$7
scep_client=${8:-scepclient}

# POST a signed message; the answer must be a signed profile (to $2.plist).
post() {
	code=$(curl -sS --cacert "$tls_ca" -X POST --data-binary "@$1" \
		-H 'Content-Type: application/pkcs7-signature' -o "$2.der" -D "$2.hdr" \
		-w '%{http_code}' "$ota_url") || sim_die "POST $ota_url failed"
	[ "$code" = 200 ] || sim_die "$2: HTTP $code: $(head -c 300 "$2.der")"
	grep -qi '^content-type: application/x-apple-aspen-config' "$2.hdr" ||
		sim_die "$2: Content-Type is not application/x-apple-aspen-config"
	openssl cms -verify -inform DER -in "$2.der" -CAfile "$root" -binary \
		-out "$2.plist" 2>"$2.verify" ||
		sim_die "$2: signature does not verify to $root: $(cat "$2.verify")"
}

# ---------------------------------------------------------------- phase 1
p1_url=$base/enroll/ota${OTASIM_QUERY:-}
code=$(curl -sS --cacert "$tls_ca" -o p1.der -w '%{http_code}' "$p1_url") ||
	sim_die "GET $p1_url failed"
[ "$code" = 200 ] || sim_die "phase 1: HTTP $code"
openssl cms -verify -inform DER -in p1.der -CAfile "$root" -binary -out p1.plist \
	2>p1.verify || sim_die "phase 1 profile does not verify: $(cat p1.verify)"
ota_url=$(sim_content p1.plist 'Profile Service' URL)
challenge=$(sim_content p1.plist 'Profile Service' Challenge)
[ -n "$ota_url" ] && [ -n "$challenge" ] || sim_die "Profile Service payload lacks URL or Challenge"
for a in UDID IMEI ICCID VERSION PRODUCT SERIAL MAC_ADDRESS_EN0 DEVICE_NAME; do
	grep -q "<string>$a</string>" p1.plist || sim_die "DeviceAttributes lacks $a"
done

# ---------------------------------------------------------------- phase 2
# The device's Apple-issued identity (RSA, as Apple's).
openssl req -new -newkey rsa:2048 -nodes -keyout apple.key -out apple.csr \
	-subj "/CN=$(cat /proc/sys/kernel/random/uuid | tr a-z A-Z)" 2>/dev/null
openssl x509 -req -in apple.csr -CA "$apple_ca" -CAkey "$apple_key" -CAcreateserial \
	-days 30 -out apple.pem 2>/dev/null || sim_die "cannot make the Apple-issued certificate"

sim_plist attrs.plist <<EOF
	<key>CHALLENGE</key>
	<string>$challenge</string>
	<key>DEVICE_NAME</key>
	<string>otasim &amp; co</string>
	<key>IMEI</key>
	<string>35 123456 789012 3</string>
	<key>PRODUCT</key>
	<string>iPhone15,2</string>
	<key>SERIAL</key>
	<string>OTASIM$(printf %s "$udid" | tail -c 6)</string>
	<key>UDID</key>
	<string>$udid</string>
	<key>VERSION</key>
	<string>21A329</string>
EOF
openssl cms -sign -nodetach -binary -md sha256 -in attrs.plist -signer apple.pem \
	-inkey apple.key -outform DER -out p2.der || sim_die "openssl cms -sign (phase 2) failed"
post p2.der p2
scep_url=$(sim_content p2.plist com.apple.security.scep URL)
scep_challenge=$(sim_content p2.plist com.apple.security.scep Challenge)
[ -n "$scep_url" ] && [ -n "$scep_challenge" ] || sim_die "phase 2 answer has no SCEP URL/Challenge"
! grep -q '<string>com.apple.mdm</string>' p2.plist || sim_die "phase 2 answer carries MDM"

sim_scep "$scep_client" "$scep_url" "$scep_challenge" "otasim $udid"

# ---------------------------------------------------------------- phase 3
openssl cms -sign -nodetach -binary -md sha256 -in attrs.plist -signer cert.pem \
	-inkey key.pem -outform DER -out p3.der || sim_die "openssl cms -sign (phase 3) failed"
post p3.der p3
! grep -q '<string>com.apple.mdm</string>' p3.plist || sim_die "phase 3 payloads are in clear"
xmllint --nonet --xpath "string(/plist/dict/key[.='EncryptedPayloadContent']/following-sibling::data[1])" \
	p3.plist | tr -d ' \t\n' | base64 -d >p3.enc
[ -s p3.enc ] || sim_die "phase 3 answer has no EncryptedPayloadContent"
openssl cms -decrypt -inform DER -in p3.enc -inkey key.pem -recip cert.pem -out p3.clear \
	2>p3.decrypt || sim_die "EncryptedPayloadContent does not decrypt: $(cat p3.decrypt)"
grep -q '<string>com.apple.mdm</string>' p3.clear || sim_die "no MDM payload in the decrypted content"
grep -q '<key>CheckInURL</key>' p3.clear || sim_die "the MDM payload has no CheckInURL"
# The stack's TLS CA (tls_trust_ca_file) rides along as a root payload.
if [ -n "${MDM_TLS_TRUST_CA_FILE:-}" ]; then
	xmllint --nonet --xpath "string(//dict[key[.='PayloadType']/following-sibling::*[1][.='com.apple.security.root']]/key[.='PayloadContent']/following-sibling::data[1])" \
		p3.clear | tr -d ' \t\n' | base64 -d >p3.anchor.der
	openssl x509 -in "$MDM_TLS_TRUST_CA_FILE" -outform DER -out p3.tlsca.der ||
		sim_die "cannot read MDM_TLS_TRUST_CA_FILE"
	cmp -s p3.anchor.der p3.tlsca.der ||
		sim_die "phase 3 carries no com.apple.security.root payload of tls_trust_ca_file"
fi
echo "otasim: ok ($udid, $scep_client)"
