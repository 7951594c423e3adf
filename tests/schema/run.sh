#!/bin/sh
# The schema pass: every profile the server emits and every command each
# SQL builder makes, checked against Apple's schemas by apple_schema.py,
# and deliberately wrong plists that must fail it.
#
#   tests/schema/run.sh MDMCTL SCHEMA_DIR WORKDIR
#
# MDMCTL runs with the caller's environment (MDM_DB: a database with a CA
# and one push topic; MDM_PROFILE_SIGNER_*; MDM_TLS_TRUST_CA_FILE).  The
# commands are queued for a scratch UDID (a device and enrollment row made
# here, removed at the end).  Last line: "schema: N passed, N failed".
set -u
mdmctl=$1
schema=$2
w=$3
here=$(cd "$(dirname "$0")" && pwd)
check="python3 $here/apple_schema.py $schema"
mkdir -p "$w"
pass=0
fail=0
count() { # OUT-FILE: adds its summary to the totals
	p=$(sed -n 's/^schema ([a-z]*): \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$1")
	f=$(sed -n 's/^schema ([a-z]*): \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$1")
	cat "$1"
	pass=$((pass + ${p:-0}))
	fail=$((fail + ${f:-1}))
}

# A scratch enrolled UDID (its commands, its OTA answers), removed at the end.
udid=SCHEMA-CHECK-$$
psql -X -q -v ON_ERROR_STOP=1 "$MDM_DB" >"$w/commands.sql.out" 2>&1 <<EOF
INSERT INTO mdm.device (udid) VALUES ('$udid');
INSERT INTO mdm.enrollment (udid, user_id, active) VALUES ('$udid', NULL, true);
EOF

# Profiles: the enrollment profile as served, with pinning; the OTA phase-2
# and phase-3 answers (mdmctl profile ota-answer: enroll.fcgi's
# ota_answer_profile); an encrypted InstallProfile's Payload (mdmctl profile
# encrypt: server.fcgi's command_profile_seal) of an operator's profile.
# The encrypted ones go to a test device identity, whose key decrypts them
# (openssl cms) for the payloads check.  (OTA phase 1's Profile Service
# profile has no schema among Apple's: not checked.)
run() { # NAME COMMAND...: its output to $w/NAME, its errors shown
	name=$1
	shift
	"$@" >"$w/$name" 2>"$w/$name.err" || {
		echo "FAIL $*: $(cat "$w/$name.err")"
		fail=$((fail + 1))
	}
}
decrypt() { # PLIST OUT: PLIST's EncryptedPayloadContent, decrypted with the device key
	python3 -c 'import plistlib, sys
sys.stdout.buffer.write(plistlib.load(open(sys.argv[1], "rb"))["EncryptedPayloadContent"])' \
		"$1" >"$2.der" &&
		openssl cms -decrypt -inform DER -in "$2.der" -inkey "$w/device.key" \
			-recip "$w/device.pem" -out "$2" || {
		echo "FAIL $1: EncryptedPayloadContent does not decrypt with the device key"
		fail=$((fail + 1))
	}
}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$w/device.key" \
	-out "$w/device.pem" -subj "/CN=$udid" 2>"$w/device.err" || cat "$w/device.err"
run enroll.plist "$mdmctl" profile enroll --unsigned
run enroll-pinned.plist env MDM_MDM_PINNING=yes MDM_MDM_PINNING_REVOCATION_CHECK=yes \
	"$mdmctl" profile enroll --unsigned
# enroll_identity = acme: the identity payload is com.apple.security.acme.
run enroll-acme.plist env MDM_ENROLL_IDENTITY=acme "$mdmctl" profile enroll --unsigned
run ota2.plist "$mdmctl" profile ota-answer --phase 2 --udid "$udid" --unsigned
run ota3.plist "$mdmctl" profile ota-answer --phase 3 --udid "$udid" \
	--encrypt-to "$w/device.pem" --unsigned
decrypt "$w/ota3.plist" "$w/ota3-payloads.plist"
python3 - "$w/device.pem" "$w/install.plist" <<'EOF'
import plistlib, sys
pem = open(sys.argv[1], "rb").read()
def payload(t, suffix, **keys):
    d = {"PayloadType": t, "PayloadVersion": 1, "PayloadIdentifier": "com.example.schema." + suffix,
         "PayloadUUID": "6F1D6F6A-6B36-4C1B-9E4B-0000000000%02d" % len(suffix),
         "PayloadDisplayName": suffix}
    d.update(keys)
    return d
p = {"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "com.example.schema",
     "PayloadUUID": "6F1D6F6A-6B36-4C1B-9E4B-000000000001", "PayloadDisplayName": "Schema check",
     "PayloadContent": [
         payload("com.apple.security.pem", "cert", PayloadContent=pem,
                 PayloadCertificateFileName="device.pem"),
         payload("com.apple.security.scep", "scepid", PayloadContent={
             "URL": "https://mdm.example.com/scep", "Challenge": "s3cret-challenge",
             "Keysize": 2048, "Key Type": "RSA", "Key Usage": 5})]}
with open(sys.argv[2], "wb") as f:
    plistlib.dump(p, f)
EOF
run install.der "$mdmctl" profile encrypt --to "$w/device.pem" --in "$w/install.plist"
openssl cms -verify -noverify -inform DER -in "$w/install.der" -out "$w/install-signed.plist" \
	2>"$w/install.verify" || cat "$w/install.verify"
decrypt "$w/install-signed.plist" "$w/install-payloads.plist"
# What was encrypted is exactly the operator's payloads, and phase 3's holds the MDM payload.
python3 - "$w" <<'EOF' || fail=$((fail + 1))
import plistlib, sys
w = sys.argv[1]
load = lambda n: plistlib.load(open("%s/%s" % (w, n), "rb"))
ok = load("install-payloads.plist") == load("install.plist")["PayloadContent"]
ok &= "com.apple.mdm" in [x["PayloadType"] for x in load("ota3-payloads.plist")]
ok &= "com.apple.mdm" not in [x["PayloadType"] for x in load("ota2.plist")["PayloadContent"]]
print("%s the decrypted payloads are the ones given, phase 3's with and phase 2's without MDM"
      % ("ok" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF
$check profile "$w/enroll.plist" "$w/enroll-pinned.plist" "$w/enroll-acme.plist" \
	"$w/ota2.plist" "$w/ota3.plist" \
	"$w/install.plist" "$w/install-signed.plist" >"$w/profiles.out" 2>&1
count "$w/profiles.out"
$check payloads "$w/ota3-payloads.plist" "$w/install-payloads.plist" >"$w/payloads.out" 2>&1
count "$w/payloads.out"

# Commands: each builder of sql/ once, for the scratch UDID.
n=0
for call in "cmd_certificate_list('$udid')" "cmd_device_information('$udid')" \
	"cmd_device_information('$udid', ARRAY['UDID','OSVersion'])" \
	"cmd_device_lock('$udid')" "cmd_device_lock('$udid', '123456', 'Found me?')" \
	"cmd_erase_device('$udid')" "cmd_erase_device('$udid', '123456')" \
	"cmd_install_profile('$udid', convert_to('<plist><dict/></plist>', 'UTF8'))" \
	"cmd_installed_application_list('$udid')" "cmd_profile_list('$udid')" \
	"cmd_remove_profile('$udid', 'com.example.x')" "cmd_restart_device('$udid')" \
	"cmd_security_info('$udid')"; do
	n=$((n + 1))
	# Two statements: the second sees the row the builder inserted.
	if ! uuid=$(psql -X -q -At -v ON_ERROR_STOP=1 "$MDM_DB" -c "SELECT mdm.$call" \
		2>"$w/command-$n.err") ||
		! psql -X -q -At -v ON_ERROR_STOP=1 "$MDM_DB" -c "SELECT plist FROM mdm.command WHERE
			upper(command_uuid) = upper('$uuid')" >"$w/command-$n.plist" 2>>"$w/command-$n.err"; then
		echo "FAIL mdm.$call: $(cat "$w/command-$n.err")"
		fail=$((fail + 1))
	fi
	echo "$n mdm.$call" >>"$w/commands.list"
done
cat "$w/commands.list"
$check command "$w"/command-*.plist >"$w/commands.out" 2>&1
count "$w/commands.out"
psql -X -q "$MDM_DB" >>"$w/commands.sql.out" 2>&1 <<EOF
DELETE FROM mdm.command_queue WHERE enrollment_id IN (SELECT id FROM mdm.enrollment WHERE udid = '$udid');
DELETE FROM mdm.push_state WHERE enrollment_id IN (SELECT id FROM mdm.enrollment WHERE udid = '$udid');
DELETE FROM mdm.enrollment WHERE udid = '$udid';
DELETE FROM mdm.challenge WHERE udid = '$udid';
DELETE FROM mdm.device WHERE udid = '$udid';
EOF

# The checker must be able to fail: each of these breaks one rule.
python3 - "$w/enroll.plist" "$w" <<'EOF'
import plistlib, sys
src, w = sys.argv[1], sys.argv[2]
def variant(name, change):
    with open(src, "rb") as f:
        p = plistlib.load(f)
    change(p)
    with open("%s/broken-%s.plist" % (w, name), "wb") as f:
        plistlib.dump(p, f)
def scep(p):
    return [x for x in p["PayloadContent"] if x["PayloadType"] == "com.apple.security.scep"][0]
def mdm(p):
    return [x for x in p["PayloadContent"] if x["PayloadType"] == "com.apple.mdm"][0]
variant("unknown-key", lambda p: mdm(p).__setitem__("ServerURLTypo", "x"))
variant("missing-required", lambda p: mdm(p).pop("Topic"))
variant("wrong-type", lambda p: scep(p)["PayloadContent"].__setitem__("Retries", "3"))
variant("rangelist", lambda p: scep(p)["PayloadContent"].__setitem__("Keysize", 3000))
variant("bool-as-int", lambda p: mdm(p).__setitem__("SignMessage", 1))
variant("top-unknown", lambda p: p.__setitem__("PayloadColour", "red"))
variant("nested-item", lambda p: mdm(p).__setitem__("ServerCapabilities", [1]))
variant("unknown-type", lambda p: p["PayloadContent"].append({"PayloadType": "com.example.none"}))
EOF
# One per profile kind added since: each breaks one rule of its own.
python3 - "$w" <<'EOF'
import plistlib, sys
w = sys.argv[1]
def variant(src, name, change):
    with open("%s/%s" % (w, src), "rb") as f:
        p = plistlib.load(f)
    change(p)
    with open("%s/broken-%s.plist" % (w, name), "wb") as f:
        plistlib.dump(p, f)
def of_type(a, t):
    return [x for x in a if x["PayloadType"] == t][0]
variant("enroll-acme.plist", "acme-keytype",
        lambda p: of_type(p["PayloadContent"], "com.apple.security.acme")
        .__setitem__("KeyType", "DSA"))
variant("enroll-acme.plist", "acme-no-client-identifier",
        lambda p: of_type(p["PayloadContent"], "com.apple.security.acme").pop("ClientIdentifier"))
variant("enroll-acme.plist", "acme-keys-nested",
        lambda p: of_type(p["PayloadContent"], "com.apple.security.acme").__setitem__(
            "PayloadContent", {"DirectoryURL": "https://mdm.example.com/acme/directory"}))
variant("ota2.plist", "ota2-no-url",
        lambda p: of_type(p["PayloadContent"], "com.apple.security.scep")["PayloadContent"].pop("URL"))
variant("ota3.plist", "ota3-not-isencrypted", lambda p: p.pop("IsEncrypted"))
variant("ota3-payloads.plist", "ota3-payloads-type",
        lambda p: of_type(p, "com.apple.mdm").__setitem__("AccessRights", "8191"))
variant("install-signed.plist", "install-encrypted-type",
        lambda p: p.__setitem__("EncryptedPayloadContent", "not data"))
variant("install-payloads.plist", "install-payloads-unknown",
        lambda p: of_type(p, "com.apple.security.pem").__setitem__("PayloadPassword", "x"))
EOF
printf '<plist><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string><key>PIN</key><integer>1</integer></dict><key>CommandUUID</key><string>x</string></dict></plist>\n' \
	>"$w/broken-command.plist"
$check broken "$w"/broken-*.plist >"$w/broken.out" 2>&1
count "$w/broken.out"
echo "schema: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
