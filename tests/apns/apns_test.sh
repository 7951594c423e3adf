#!/bin/sh
#
# tests/apns/apns_test.sh: end-to-end checks of the APNs stand-in itself,
# with curl over HTTP/2 and openssl-made certificates.  tests/run.sh
# starts the stand-in (apns_start) and runs this with E2E_APNS_URL,
# E2E_APNS_CA, E2E_APNS_DIR, E2E_PUSH_CERT, E2E_PUSH_KEY, E2E_PUSH_ISSUER
# and E2E_PUSH_TOPIC set.  Prints "ok"/"FAIL" a check and last
# "apns_test: N passed, N failed"; the exit status is non-zero on any
# failure.  Leaves the rules and records empty.  POSIX sh.

set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
STACK_ROOT=$ROOT
# shellcheck disable=SC2034 # read by stack.sh
STACK_PROG=apns_test
# shellcheck source=scripts/stack.sh
. "$ROOT/scripts/stack.sh"
# shellcheck source=tests/apns/apns.sh
. "$ROOT/tests/apns/apns.sh"

for v in E2E_APNS_URL E2E_APNS_CA E2E_APNS_DIR E2E_PUSH_CERT E2E_PUSH_KEY \
	E2E_PUSH_ISSUER E2E_PUSH_TOPIC; do
	eval "isset=\${$v:+x}"
	# shellcheck disable=SC2154 # assigned by eval above
	[ -n "$isset" ] || stack_die "$v is not set (run through tests/run.sh)"
done

W=$(mktemp -d "${TMPDIR:-/tmp}/apns-test.XXXXXX") || stack_die "mktemp failed"
trap 'rm -rf "$W"' EXIT
PASS=0
FAIL=0
# Requests that got through the TLS handshake, each of which must be recorded.
SENT=0
RECORDS=$E2E_APNS_DIR/requests.tsv

ok() {
	PASS=$((PASS + 1))
	echo "ok - $1"
}

fail() {
	FAIL=$((FAIL + 1))
	echo "FAIL - $1"
}

# check NAME: passes when the command before it succeeded, as in
#     [ "$R_CODE" = 200 ] && [ "$R_VERSION" = 2 ]
#     check "200 over HTTP/2"
check() {
	if [ "$?" -eq 0 ]; then
		ok "$1"
	else
		fail "$1"
	fi
}

# push [CURL ARGS...]: one request; R_CODE, R_VERSION, R_BODY, R_ID.
# The defaults are a correct MDM push; later arguments add to them.
push() {
	R_CODE=000
	R_VERSION=
	out=$(curl -sS --noproxy '*' --max-time 10 --cacert "$E2E_APNS_CA" \
		-D "$W/headers" -o "$W/body" -w '%{http_code} %{http_version}' "$@" \
		2>"$W/curl.err")
	R_RC=$?
	R_CODE=${out% *}
	R_VERSION=${out#* }
	[ "$R_CODE" != 000 ] && SENT=$((SENT + 1))
	R_BODY=$(cat "$W/body" 2>/dev/null)
	R_ID=$(sed -n 's/^apns-id: *\([^[:space:]]*\).*/\1/ip' "$W/headers" 2>/dev/null)
}

# good_push TOKEN [CURL ARGS...]
good_push() {
	tok=$1
	shift
	push --http2 --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" \
		-H "apns-topic: $E2E_PUSH_TOPIC" -H "apns-push-type: mdm" \
		-H "apns-priority: 10" -d "{\"mdm\":\"$MAGIC\"}" "$@" \
		"$E2E_APNS_URL/3/device/$tok"
}

records() {
	wc -l <"$RECORDS" | tr -d ' '
}

# field N of the last record
last_field() {
	tail -n 1 "$RECORDS" | cut -f "$1"
}

is_uuid() {
	printf '%s' "$1" | grep -E -q '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
}

answered() {
	[ "$R_CODE" = "$1" ] && [ "$R_BODY" = "$2" ]
}

apns_reset "$E2E_APNS_DIR"
TOKEN=$(openssl rand -hex 32)
MAGIC=$(cat /proc/sys/kernel/random/uuid)

# ------------------------------------------------------------- success

good_push "$TOKEN"
[ "$R_CODE" = 200 ] && [ "$R_VERSION" = 2 ] && [ -z "$R_BODY" ]
check "200 over HTTP/2"
is_uuid "$R_ID"
check "apns-id is a fresh UUID"
first_id=$R_ID
[ "$(records)" = 1 ]
check "one record"
[ "$(tail -n 1 "$RECORDS" | cut -f 2,4,5,6)" = "$(printf '200\t%s\tHTTP/2.0\tPOST' "$first_id")" ]
check "record: status, apns-id, HTTP/2.0, POST"
[ "$(tail -n 1 "$RECORDS" | cut -f 7-10)" = "$(printf '%s\t%s\t%s\tmdm' "$TOKEN" "$E2E_PUSH_TOPIC" "$MAGIC")" ]
check "record: token, topic, push magic, push type"
serial=$(openssl x509 -in "$E2E_PUSH_CERT" -noout -serial | sed 's/^serial=//')
[ "$(last_field 11)" = "$E2E_PUSH_TOPIC" ] && [ "$(last_field 12)" = "$serial" ]
check "record: client certificate UID and serial"
sh -c 'case "$1" in *"CN=APSP:"*) ;; *) exit 1 ;; esac; [ "$2" != - ]' _ \
	"$(last_field 13)" "$(last_field 14)"
check "record: client certificate subject and issuer"
last_field 1 | grep -E -q '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$'
check "record: the time in UTC to the microsecond"
good_push "$TOKEN"
is_uuid "$R_ID" && [ "$R_ID" != "$first_id" ]
check "a second push gets another apns-id"
good_push "$TOKEN" -H "apns-id: 11111111-2222-4333-8444-555555555555"
[ "$R_ID" = 11111111-2222-4333-8444-555555555555 ]
check "a client's apns-id is echoed"
push --http2 --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" -H "apns-topic: $E2E_PUSH_TOPIC" \
	-d "$(printf ' {\n\t"mdm" : "%s" }\n' "$MAGIC")" "$E2E_APNS_URL/3/device/$TOKEN"
[ "$R_CODE" = 200 ]
check "whitespace in the body, no push type: 200"
[ "$(last_field 9)" = "$MAGIC" ]
check "push magic recorded from a spaced body"

# ----------------------------------------------------------- refusals

good_push "$TOKEN" -H "apns-topic: com.apple.mgmt.External.00000000-0000-0000-0000-000000000000"
answered 400 '{"reason":"BadTopic"}'
check "wrong topic: 400 BadTopic"
push --http2 --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" -d "{\"mdm\":\"$MAGIC\"}" \
	"$E2E_APNS_URL/3/device/$TOKEN"
answered 400 '{"reason":"MissingTopic"}'
check "no topic: 400 MissingTopic"
good_push "abc"
answered 400 '{"reason":"BadDeviceToken"}'
check "odd-length token: 400 BadDeviceToken"
good_push "$(printf 'zz%062d' 0)"
answered 400 '{"reason":"BadDeviceToken"}'
check "non-hex token: 400 BadDeviceToken"
good_push "$(printf '%0202d' 0)"
answered 400 '{"reason":"BadDeviceToken"}'
check "token over 200 digits: 400 BadDeviceToken"
good_push ""
answered 400 '{"reason":"MissingDeviceToken"}'
check "no token: 400 MissingDeviceToken"
push --http2 --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" -H "apns-topic: $E2E_PUSH_TOPIC" \
	"$E2E_APNS_URL/3/device/$TOKEN"
answered 405 '{"reason":"MethodNotAllowed"}'
check "GET: 405 MethodNotAllowed"
push --http2 --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" -H "apns-topic: $E2E_PUSH_TOPIC" \
	-d '{"mdm":"x"}' "$E2E_APNS_URL/2/device/$TOKEN"
answered 404 '{"reason":"BadPath"}'
check "other path: 404 BadPath"
good_push "$TOKEN" -H "apns-push-type: alert"
answered 400 '{"reason":"InvalidPushType"}'
check "push type alert: 400 InvalidPushType"
big=$(head -c 4200 /dev/zero | tr '\0' 'a')
good_push "$TOKEN" -d "{\"mdm\":\"$big\"}"
answered 413 '{"reason":"PayloadTooLarge"}'
check "body over 4096 bytes: 413 PayloadTooLarge"
push --http2 --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" -H "apns-topic: $E2E_PUSH_TOPIC" \
	-X POST "$E2E_APNS_URL/3/device/$TOKEN"
answered 400 '{"reason":"PayloadEmpty"}'
check "empty body: 400 PayloadEmpty"
for body in '{"aps":{}}' '{"mdm":"a","x":1}' '{"mdm":"a\"b"}' '{"mdm":""}' '{"mdm":"a"} x'; do
	push --http2 --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" \
		-H "apns-topic: $E2E_PUSH_TOPIC" -d "$body" "$E2E_APNS_URL/3/device/$TOKEN"
	answered 400 '{"reason":"BadPayload"}'
	check "body $body: 400 BadPayload"
done
good_push "$TOKEN" --http1.1
[ "$R_CODE" = 505 ] && [ "$(last_field 5)" = HTTP/1.1 ]
check "HTTP/1.1: refused (505)"

# ------------------------------------------------------ TLS client auth

before=$(records)
apns_push_cert "$W" "$W/foreign" "$W/foreign-issuer"
good_push "$TOKEN" --cert "$W/foreign.pem" --key "$W/foreign.key"
[ "$R_RC" != 0 ] && [ "$R_CODE" = 000 ]
check "push certificate from another issuer: TLS fails"
push --http2 -H "apns-topic: $E2E_PUSH_TOPIC" -d "{\"mdm\":\"$MAGIC\"}" \
	"$E2E_APNS_URL/3/device/$TOKEN"
[ "$R_RC" != 0 ] && [ "$R_CODE" = 000 ]
check "no client certificate: TLS fails"
[ "$(records)" = "$before" ]
check "no record for refused handshakes"

# --------------------------------------------------------------- rules

T410=$(openssl rand -hex 32)
T429=$(openssl rand -hex 32)
apns_rule "$E2E_APNS_DIR" "$T410" 410
apns_rule "$E2E_APNS_DIR" "$T429" 429 2
good_push "$T410"
[ "$R_CODE" = 410 ] &&
	printf '%s' "$R_BODY" | grep -E -q '^\{"reason":"Unregistered","timestamp":[0-9]{13}\}$'
check "rule 410: Unregistered with a timestamp"
[ "$(last_field 2)$(last_field 3)" = 410Unregistered ]
check "rule 410 recorded"
good_push "$T410"
[ "$R_CODE" = 410 ]
check "rule 410 without count stays"
good_push "$T429"
c1=$R_CODE
good_push "$T429"
c2=$R_CODE
good_push "$T429"
[ "$c1 $c2 $R_CODE" = "429 429 200" ]
check "rule 429 x2: 429, 429, then 200"
[ "$(tail -n 2 "$RECORDS" | head -n 1 | cut -f 3)" = TooManyRequests ]
check "429 answers TooManyRequests"
[ "$(grep -c "$T429" "$E2E_APNS_DIR/rules")" = 0 ]
check "used-up rule removed from the file"
good_push "$TOKEN"
[ "$R_CODE" = 200 ]
check "other token: 200"

[ "$(records)" = "$SENT" ]
check "every request recorded ($SENT)"

apns_reset "$E2E_APNS_DIR"
apns_rule "$E2E_APNS_DIR" '*' 500 1
apns_rule "$E2E_APNS_DIR" '*' 403 1
good_push "$TOKEN"
answered 500 '{"reason":"InternalServerError"}'
check "rule * 500: InternalServerError"
good_push "$TOKEN"
answered 403 '{"reason":"BadCertificate"}'
check "then rule * 403: BadCertificate"
good_push "$TOKEN"
[ "$R_CODE" = 200 ]
check "then 200"
apns_rule "$E2E_APNS_DIR" "$TOKEN" 400 1 DeviceTokenNotForTopic
good_push "$TOKEN"
answered 400 '{"reason":"DeviceTokenNotForTopic"}'
check "rule with a reason"
good_push "$TOKEN"
[ "$R_CODE" = 200 ]
check "rule with a reason used up"

# Many streams on one connection; a counted rule is used exactly COUNT
# times even when the pool's processes race for it.
apns_reset "$E2E_APNS_DIR"
T=$(openssl rand -hex 32)
apns_rule "$E2E_APNS_DIR" "$T" 429 7
i=0
: >"$W/urls"
while [ "$i" -lt 20 ]; do
	echo "url = \"$E2E_APNS_URL/3/device/$T\"" >>"$W/urls"
	echo "output = \"$W/par.$i\"" >>"$W/urls"
	i=$((i + 1))
done
curl -sS --noproxy '*' --max-time 30 --http2 --parallel --parallel-max 20 \
	--cacert "$E2E_APNS_CA" --cert "$E2E_PUSH_CERT" --key "$E2E_PUSH_KEY" \
	-H "apns-topic: $E2E_PUSH_TOPIC" -d "{\"mdm\":\"$MAGIC\"}" -w '%{http_code}\n' \
	-K "$W/urls" >"$W/par.codes" 2>"$W/curl.err"
[ "$(grep -c '^429$' "$W/par.codes") $(grep -c '^200$' "$W/par.codes")" = "7 13" ]
check "20 parallel pushes: 7 answered 429, 13 answered 200"
[ "$(cut -f 5 "$RECORDS" | grep -c '^HTTP/2.0$')" = 20 ]
check "20 parallel pushes: 20 records, all HTTP/2.0"
[ "$(cut -f 4 "$RECORDS" | sort -u | wc -l)" = 20 ]
check "20 parallel pushes: 20 distinct apns-ids"

apns_reset "$E2E_APNS_DIR"
echo "apns_test: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
