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

dir=$1
enroll_url=$2
root=$3
tls_ca=$4
udid=$5
auth=$6
scep_client=${7:-scepclient}
here=$(cd "$(dirname "$0")" && pwd)

die() {
	echo "devsim: $*" >&2
	exit 1
}

mkdir -p "$dir"
cd "$dir"

# ---------------------------------------------------------------- 1 profile
code=$(curl -sS --cacert "$tls_ca" -o profile.der -D profile.hdr -w '%{http_code}' \
	"$enroll_url") || die "GET $enroll_url failed"
[ "$code" = 200 ] || die "GET profile: HTTP $code"
grep -qi '^content-type: application/x-apple-aspen-config' profile.hdr ||
	die "profile Content-Type is not application/x-apple-aspen-config"
openssl cms -verify -inform DER -in profile.der -CAfile "$root" -binary \
	-out profile.plist 2>profile.verify ||
	die "profile signature does not verify to $root: $(cat profile.verify)"

# ---------------------------------------------------------------- 2 payloads
# The value after <key>K</key> in the payload dictionary of type T.
payload() {
	xmllint --nonet --xpath "string(//dict[key[.='PayloadType']/following-sibling::*[1][.='$1']]/key[.='$2']/following-sibling::*[1])" profile.plist
}
# The same inside the payload's PayloadContent dictionary (the SCEP payload).
content() {
	xmllint --nonet --xpath "string(//dict[key[.='PayloadType']/following-sibling::*[1][.='$1']]/key[.='PayloadContent']/following-sibling::dict[1]/key[.='$2']/following-sibling::*[1])" profile.plist
}
scep_url=$(content com.apple.security.scep URL)
challenge=$(content com.apple.security.scep Challenge)
scep_uuid=$(payload com.apple.security.scep PayloadUUID)
checkin_url=$(payload com.apple.mdm CheckInURL)
server_url=$(payload com.apple.mdm ServerURL)
topic=$(payload com.apple.mdm Topic)
identity_uuid=$(payload com.apple.mdm IdentityCertificateUUID)
[ -n "$scep_url" ] || die "the SCEP payload has no URL"
[ -n "$challenge" ] || die "the SCEP payload has no Challenge"
[ -n "$checkin_url" ] && [ -n "$server_url" ] && [ -n "$topic" ] ||
	die "the MDM payload lacks CheckInURL, ServerURL or Topic"
[ -n "$scep_uuid" ] && [ "$identity_uuid" = "$scep_uuid" ] ||
	die "IdentityCertificateUUID ($identity_uuid) is not the SCEP PayloadUUID ($scep_uuid)"
echo "$checkin_url" >checkin_url
echo "$server_url" >server_url
echo "$topic" >topic

# ---------------------------------------------------------------- 3 SCEP
case $scep_client in
scepclient)
	openssl genrsa -traditional -out key.pem 2048 2>/dev/null
	scepclient -server-url "$scep_url" -challenge "$challenge" -private-key key.pem \
		-certificate cert.pem -cn "devsim $udid" >scep.log 2>&1 ||
		die "scepclient failed: $(tail -3 scep.log)"
	;;
certmonger)
	sh "$here/certmonger.sh" "$dir" "$scep_url" "$challenge" >scep.log 2>&1 ||
		die "certmonger failed: $(tail -3 scep.log)"
	;;
*)
	die "unknown SCEP client $scep_client"
	;;
esac
[ -s cert.pem ] && [ -s key.pem ] || die "SCEP gave no identity"
# The challenge is one-time: spent now.

# ---------------------------------------------------------------- 4 check-in
token=$(openssl rand -base64 32)
magic=$(cat /proc/sys/kernel/random/uuid | tr a-z A-Z)
unlock=$(openssl rand -base64 48 | tr -d '\n')
echo "$magic" >push_magic

cat >authenticate.plist <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
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
</dict>
</plist>
EOF

cat >tokenupdate.plist <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
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
</dict>
</plist>
EOF

# PUT one message to the CheckInURL the way the device authenticates.
checkin() {
	body=$1
	if [ "$auth" = signature ]; then
		openssl cms -sign -binary -in "$body" -signer cert.pem -inkey key.pem \
			-outform DER -out "$body.sig" || die "openssl cms -sign failed"
		code=$(curl -sS --cacert "$tls_ca" -X PUT --data-binary "@$body" \
			-H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
			-H "Mdm-Signature: $(base64 -w0 "$body.sig")" \
			-o "$body.reply" -w '%{http_code}' "$checkin_url")
	else
		code=$(curl -sS --cacert "$tls_ca" --cert cert.pem --key key.pem -X PUT \
			--data-binary "@$body" \
			-H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
			-o "$body.reply" -w '%{http_code}' "$checkin_url")
	fi
	[ "$code" = 200 ] || die "$body: HTTP $code: $(head -c 300 "$body.reply")"
}
checkin authenticate.plist
checkin tokenupdate.plist
echo "devsim: ok ($auth, $scep_client)"
