# shellcheck shell=sh
# shellcheck disable=SC2034 # the functions set variables for the suites
#
# tests/fixtures.sh: the stand-ins for what a real deployment gets from
# Apple and from its own PKI, made fresh for each run of tests/run.sh.
# Sourced by it after scripts/stack.sh and tests/apns/apns.sh, with TMP
# (the run's directory), B (the build) and ROOT set and PostgreSQL
# running; not run.  POSIX sh.
#
# Each fixture_* function makes one stand-in, gives what it made to the
# stack user (stack_own), dies (stack_die) when it cannot, and exports the
# variables named in its comment (tests/e2e/ENV.md: what each holds and
# who reads it).  Their order matters where a comment says so;
# tests/run.sh calls them in this file's order.

# fixture_tls: the HTTPS side (scripts/stack.sh tls_make, in TMP/tls): a
# TLS CA and Apache's server certificate, a device identity issued by a
# device CA Apache trusts for client certificates, and a self-signed
# client certificate.  Sets tls_make's variables (SERVER_CERT, SERVER_KEY,
# TLS_CA_CERT...) and exports E2E_TLS_CA, E2E_CLIENT_CERT,
# E2E_CLIENT_KEY, E2E_CLIENT_FP, E2E_SELF_CERT, E2E_SELF_KEY, E2E_SELF_FP,
# and MDM_TLS_TRUST_CA_FILE (the TLS CA, carried as a trust anchor payload
# in enrollment profiles; docs/CONFIG.md) unless already set (empty: off).
fixture_tls() {
	tls_make "$TMP" clients
	E2E_TLS_CA=$TLS_CA_CERT
	E2E_CLIENT_CERT=$CLIENT_CERT
	E2E_CLIENT_KEY=$CLIENT_KEY
	E2E_CLIENT_FP=$CLIENT_FP
	E2E_SELF_CERT=$SELF_CERT
	E2E_SELF_KEY=$SELF_KEY
	E2E_SELF_FP=$SELF_FP
	MDM_TLS_TRUST_CA_FILE=${MDM_TLS_TRUST_CA_FILE-$TLS_CA_CERT}
	export MDM_TLS_TRUST_CA_FILE
	export E2E_TLS_CA E2E_CLIENT_CERT E2E_CLIENT_KEY E2E_CLIENT_FP E2E_SELF_CERT \
		E2E_SELF_KEY E2E_SELF_FP
}

# fixture_programs: what the suites run.  The stack user runs the FastCGI
# programs: it gets copies in TMP/cgi-bin, so that it needs no access to
# the checkout (which may be under /root).  Exports E2E_CGI_BIN (this
# stack's programs, for tests that signal them and only them), E2E_PGCTL,
# E2E_DEVSIM, E2E_OTASIM, E2E_CERTMONGER_SCRIPT, E2E_APPLESIM, E2E_PUSHD,
# E2E_EVENTD, E2E_EVENTS_RECEIVER, E2E_MDMCTL_DIR.
fixture_programs() {
	mkdir -p "$TMP/cgi-bin"
	for p in $STACK_PROGRAMS; do
		cp "$B/cgi-bin/$p.fcgi" "$TMP/cgi-bin/"
	done
	chmod 755 "$TMP/cgi-bin" "$TMP"/cgi-bin/*.fcgi
	stack_own "$TMP/cgi-bin"
	E2E_CGI_BIN=$TMP/cgi-bin
	E2E_PGCTL=$PG_CTL_CMD
	E2E_DEVSIM=$ROOT/tests/e2e/devsim.sh
	E2E_OTASIM=$ROOT/tests/e2e/otasim.sh
	E2E_CERTMONGER_SCRIPT=$ROOT/tests/e2e/certmonger.sh
	E2E_APPLESIM=$B/tests/applesim
	E2E_PUSHD=$B/bin/mdm-pushd
	E2E_EVENTD=$B/bin/mdm-eventd
	E2E_EVENTS_RECEIVER=$ROOT/tests/events/receiver.py
	E2E_MDMCTL_DIR=$B/bin
	export E2E_CGI_BIN E2E_PGCTL E2E_DEVSIM E2E_OTASIM E2E_CERTMONGER_SCRIPT \
		E2E_APPLESIM E2E_PUSHD E2E_EVENTD E2E_EVENTS_RECEIVER E2E_MDMCTL_DIR
}

# fixture_device_ca: the CA behind scep.fcgi (`mdmctl ca init`, its key in
# TMP/ca/ca.key, which only the stack user reads; its certificate in
# TMP/ca/ca.pem) and the profile signer enroll.fcgi signs with, issued by
# it (the CA certificate as its chain).  Exports MDM_PROFILE_SIGNER_CERT,
# MDM_PROFILE_SIGNER_KEY, MDM_PROFILE_SIGNER_CHAIN and E2E_DEVICE_CA (the
# root devsim.sh trusts for the profile signer).
fixture_device_ca() {
	mkdir -p "$TMP/ca"
	{
		"$B/bin/mdmctl" ca init --subject "/CN=MDM Test Device CA/O=mdm tests" \
			--key-out "$TMP/ca/ca.key" --days 3650 &&
			"$B/bin/mdmctl" ca cert >"$TMP/ca/ca.pem" &&
			"$B/bin/mdmctl" ca server-cert --subject "/CN=MDM Test Profile Signer/O=mdm tests" \
				--key-out "$TMP/ca/signer.key" --cert-out "$TMP/ca/signer.pem"
	} >"$TMP/log/ca.log" 2>&1 || {
		cat "$TMP/log/ca.log" >&2
		stack_die "mdmctl could not make the device CA and the profile signer"
	}
	MDM_PROFILE_SIGNER_CERT=$TMP/ca/signer.pem
	MDM_PROFILE_SIGNER_KEY=$TMP/ca/signer.key
	MDM_PROFILE_SIGNER_CHAIN=$TMP/ca/ca.pem
	E2E_DEVICE_CA=$TMP/ca/ca.pem
	stack_own "$TMP/ca"
	export MDM_PROFILE_SIGNER_CERT MDM_PROFILE_SIGNER_KEY MDM_PROFILE_SIGNER_CHAIN \
		E2E_DEVICE_CA
}

# fixture_ra: a SCEP registration authority issued by the device CA
# (after fixture_device_ca; docs/CONFIG.md, ra_cert), TMP/ca/ra.pem/.key.
# It sets no variable: tests/run.sh's scep_ra hands it to the passes that
# run with it.
fixture_ra() {
	pki_issue "$TMP/ca/ra" "/CN=MDM Test SCEP RA/O=mdm tests" v3_ra "$TMP/ca/ca" 365
	stack_own "$TMP/ca"
}

# fixture_push: two throw-away push certificates shaped like Apple's
# (subject UID com.apple.mgmt.External.<uuid>, tests/apns/apns.sh
# apns_push_cert) from one "Apple-like" issuer that the APNs stand-in
# trusts, TMP/ca/push-issuer.pem.  The first is imported into the
# database (after fixture_device_ca, whose log it appends to); the second
# (another topic) is not: the enroll e2e suite imports it for its
# several-topics case and removes it after, so every other suite sees one
# topic.  Exports E2E_PUSH_CERT, E2E_PUSH_KEY, E2E_PUSH_ISSUER,
# E2E_PUSH_TOPIC, E2E_PUSH2_CERT, E2E_PUSH2_KEY, E2E_PUSH2_TOPIC.
fixture_push() {
	apns_push_cert "$TMP/ca" "$TMP/ca/push" "$TMP/ca/push-issuer"
	E2E_PUSH_TOPIC=$APNS_PUSH_TOPIC
	"$B/bin/mdmctl" push-cert import --cert "$TMP/ca/push.pem" --key "$TMP/ca/push.key" \
		>>"$TMP/log/ca.log" 2>&1 || {
		cat "$TMP/log/ca.log" >&2
		stack_die "push certificate import failed"
	}
	apns_push_cert "$TMP/ca" "$TMP/ca/push2" "$TMP/ca/push-issuer"
	E2E_PUSH2_TOPIC=$APNS_PUSH_TOPIC
	E2E_PUSH_CERT=$TMP/ca/push.pem
	E2E_PUSH_KEY=$TMP/ca/push.key
	E2E_PUSH_ISSUER=$TMP/ca/push-issuer.pem
	E2E_PUSH2_CERT=$TMP/ca/push2.pem
	E2E_PUSH2_KEY=$TMP/ca/push2.key
	stack_own "$TMP/ca"
	export E2E_PUSH_CERT E2E_PUSH_KEY E2E_PUSH_ISSUER E2E_PUSH_TOPIC E2E_PUSH2_CERT \
		E2E_PUSH2_KEY E2E_PUSH2_TOPIC
}

# fixture_ota: OTA phase 2 needs a device certificate issued by Apple,
# which no test can have: a stand-in root and "Apple iPhone Device CA"
# below it (TMP/ota), trusted by the programs through ota_trust_file (the
# shipped Apple file is what the unit tests check the real phase-2 message
# against).  otasim.sh issues the device's certificate with the CA's key.
# Exports MDM_OTA_TRUST_FILE, E2E_OTA_DEVCA_CERT, E2E_OTA_DEVCA_KEY.
fixture_ota() {
	mkdir -p "$TMP/ota"
	pki_self_signed "$TMP/ota/root" "/O=mdm tests/CN=Stand-in Apple Root CA" v3_ca
	pki_issue "$TMP/ota/devca" "/O=mdm tests/CN=Stand-in Apple iPhone Device CA" v3_subca \
		"$TMP/ota/root" 3650
	cat "$TMP/ota/root.pem" "$TMP/ota/devca.pem" >"$TMP/ota/trust.pem"
	stack_own "$TMP/ota"
	MDM_OTA_TRUST_FILE=$TMP/ota/trust.pem
	E2E_OTA_DEVCA_CERT=$TMP/ota/devca.pem
	E2E_OTA_DEVCA_KEY=$TMP/ota/devca.key
	export MDM_OTA_TRUST_FILE E2E_OTA_DEVCA_CERT E2E_OTA_DEVCA_KEY
}

# fixture_challenge: a static SCEP challenge (scep_challenge), for the
# clients that use one, and the suites' scratch directory.  Exports
# MDM_SCEP_CHALLENGE, E2E_STATIC_CHALLENGE (the same) and E2E_TMP.
fixture_challenge() {
	MDM_SCEP_CHALLENGE="e2e-static-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
	E2E_STATIC_CHALLENGE=$MDM_SCEP_CHALLENGE
	E2E_TMP=$TMP/e2e
	mkdir -p "$E2E_TMP"
	export MDM_SCEP_CHALLENGE E2E_STATIC_CHALLENGE E2E_TMP
}

# fixture_metrics: the Bearer token of GET /mdm/metrics.  Exports
# MDM_METRICS_TOKEN_FILE, E2E_METRICS_TOKEN (the same token) and
# MDM_METRICS_FLUSH_SECONDS=0 (every request's count in the database at
# once, for the counts metrics_e2e.c checks).
fixture_metrics() {
	E2E_METRICS_TOKEN="e2e-metrics-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
	MDM_METRICS_TOKEN_FILE=$TMP/metrics.token
	printf '%s\n' "$E2E_METRICS_TOKEN" >"$MDM_METRICS_TOKEN_FILE"
	chmod 644 "$MDM_METRICS_TOKEN_FILE"
	MDM_METRICS_FLUSH_SECONDS=0
	export E2E_METRICS_TOKEN MDM_METRICS_TOKEN_FILE MDM_METRICS_FLUSH_SECONDS
}

# fixture_apns: the APNs stand-in (tests/apns/apns.sh), for the whole e2e
# phase, since Apple's push service cannot be reached from here; it
# admits clients with a certificate from the push issuer (after
# fixture_push).  Exports E2E_APNS_URL, E2E_APNS_CA (its TLS CA, for
# MDM_APNS_CA_FILE) and E2E_APNS_DIR (requests.tsv, rules).
fixture_apns() {
	apns_start "$TMP/apns" "$(stack_free_port 19443)" "$TMP/ca/push-issuer.pem"
	E2E_APNS_URL=$APNS_URL
	E2E_APNS_CA=$APNS_CA
	E2E_APNS_DIR=$TMP/apns
	export E2E_APNS_URL E2E_APNS_CA E2E_APNS_DIR
}

# fixture_acme: two stand-in Apple attestation CAs (build/tests/attest_standin,
# since no test can hold Apple's key): acme.fcgi trusts the first
# (MDM_ACME_ATTEST_ROOT_FILE), the second is the "another root" of the
# refusals.  Exports E2E_ATTEST_STANDIN, E2E_ATTEST_DIR,
# E2E_ATTEST_OTHER_DIR and E2E_ACME_CLIENT (tests/acme/client.py, on
# python3-acme, for acme_e2e.c); without the stand-in the suite is skipped,
# and says so.
fixture_acme() {
	if [ ! -x "$B/tests/attest_standin" ]; then
		stack_say "acme-e2e: skipped, $B/tests/attest_standin missing"
		return 0
	fi
	for d in attest attest-other; do
		"$B/tests/attest_standin" init "$TMP/$d" >>"$TMP/log/attest.log" 2>&1 ||
			stack_die "attest_standin init $TMP/$d failed (see $TMP/log/attest.log)"
	done
	stack_own "$TMP/attest" "$TMP/attest-other"
	MDM_ACME_ATTEST_ROOT_FILE=$TMP/attest/root.pem
	E2E_ATTEST_STANDIN=$B/tests/attest_standin
	E2E_ATTEST_DIR=$TMP/attest
	E2E_ATTEST_OTHER_DIR=$TMP/attest-other
	E2E_ACME_CLIENT=$ROOT/tests/acme/client.py
	export MDM_ACME_ATTEST_ROOT_FILE E2E_ATTEST_STANDIN E2E_ATTEST_DIR E2E_ATTEST_OTHER_DIR \
		E2E_ACME_CLIENT
}
