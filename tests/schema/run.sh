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

# Profiles: the enrollment profile as served, with pinning, and OTA phase 1.
"$mdmctl" profile enroll --unsigned >"$w/enroll.plist" 2>"$w/enroll.err" || cat "$w/enroll.err"
MDM_MDM_PINNING=yes MDM_MDM_PINNING_REVOCATION_CHECK=yes \
	"$mdmctl" profile enroll --unsigned >"$w/enroll-pinned.plist" 2>"$w/enroll-pinned.err" ||
	cat "$w/enroll-pinned.err"
$check profile "$w/enroll.plist" "$w/enroll-pinned.plist" >"$w/profiles.out" 2>&1
count "$w/profiles.out"

# Commands: each builder of sql/ once, for a scratch enrolled UDID.
udid=SCHEMA-CHECK-$$
psql -X -q -v ON_ERROR_STOP=1 "$MDM_DB" >"$w/commands.sql.out" 2>&1 <<EOF
INSERT INTO mdm.device (udid) VALUES ('$udid');
INSERT INTO mdm.enrollment (udid, user_id, active) VALUES ('$udid', NULL, true);
EOF
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
printf '<plist><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string><key>PIN</key><integer>1</integer></dict><key>CommandUUID</key><string>x</string></dict></plist>\n' \
	>"$w/broken-command.plist"
$check broken "$w"/broken-*.plist >"$w/broken.out" 2>&1
count "$w/broken.out"
echo "schema: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
