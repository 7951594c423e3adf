# shellcheck shell=sh
#
# tests/lighttpd.sh: the lighttpd pass of tests/run.sh (issue 16), sourced
# by it after tests/lib.sh and tests/fixtures.sh.  POSIX sh.
#
#   lighttpd_pass: the same programs behind lighttpd 1.4 (lighttpd-conf/:
#       mod_fastcgi to the spawn-fcgi pools, mod_openssl), with the
#       settings of Apache's proxy pass; the whole e2e suite (routing,
#       limits, SCEP interop clients, the Apple simulator's lifecycle, OTA,
#       refusals, faults with a graceful restart under load), then
#       lighttpd_rollover.
#   lighttpd_rollover: a CA re-key and activation on a database of its
#       own, with lighttpd's ssl.verifyclient.ca-file kept by mdmctl
#       (tls_client_ca_file): a device of the old CA and one of the new
#       CA both connect by TLS client certificate alone, and a client CA
#       file without the old CA locks the old device out (so the file is
#       what lets it in).  Prints "lighttpd-rollover: N passed, N failed".

# lr_check NAME CMD...: one check of the rollover, counted in lr_ok/lr_bad.
lr_check() {
	lr_name=$1
	shift
	if "$@" >>"$lr_log" 2>&1; then
		lr_ok=$((lr_ok + 1))
		echo "lighttpd-rollover: ok: $lr_name"
	else
		lr_bad=$((lr_bad + 1))
		echo "lighttpd-rollover: FAILED: $lr_name (log: $lr_log)"
	fi
}

# lr_sim NAME STEP...: applesim for the device in $lr_dir/NAME, through
# lighttpd, authenticating by TLS client certificate only.
lr_sim() {
	lr_dev=$1
	shift
	"$E2E_APPLESIM" "$@" --dir "$lr_dir/$lr_dev" --enroll-url "$E2E_HTTPS_BASE/enroll" \
		--trust "$E2E_DEVICE_CA" --tls-ca "$E2E_TLS_CA" --auth tls
}

# lr_fails CMD...: CMD must fail.
lr_fails() {
	! "$@"
}

# lr_count FILE N: FILE holds N certificates.
lr_count() {
	[ "$(grep -c 'BEGIN CERTIFICATE' "$1")" = "$2" ]
}

# lr_restart BUNDLE: lighttpd (and the pools, for the new MDM_DB) again.
lr_restart() {
	lighttpd_start "$TMP" "$TMP/cgi-bin" "$https_port" "$http_port" "$1" &&
		stack_wait_health "$E2E_HTTPS_BASE/mdm/checkin/health"
}

lighttpd_rollover() {
	lr_dir=$TMP/lighttpd-roll
	lr_log=$TMP/log/lighttpd-rollover.log
	lr_ok=0 lr_bad=0
	rm -rf "$lr_dir"
	mkdir -p "$lr_dir/ca"
	stack_own "$lr_dir"
	pg_psql postgres -c "CREATE DATABASE mdm_lighttpd OWNER mdm" >>"$lr_log" 2>&1
	MDM_DB="host=$PG_SOCK port=$STACK_PG_PORT dbname=mdm_lighttpd user=mdm"
	MDM_TLS_CLIENT_CA_FILE=$lr_dir/client-ca.pem
	export MDM_DB MDM_TLS_CLIENT_CA_FILE
	lr_check "a database with a CA of its own; ca init writes the client CA file" \
		sh -c '"$1" db migrate && "$1" ca init --subject "/CN=MDM Rollover CA/O=mdm tests" \
			--key-out "$2/ca/ca.key" --days 3650 &&
			"$1" push-cert import --cert "$3/ca/push.pem" --key "$3/ca/push.key"' \
		sh "$B/bin/mdmctl" "$lr_dir" "$TMP"
	stack_own "$lr_dir"
	lr_check "the file holds the active CA" lr_count "$MDM_TLS_CLIENT_CA_FILE" 1
	lighttpd_stop "$TMP"
	lr_check "lighttpd on that database" lr_restart "$MDM_TLS_CLIENT_CA_FILE"
	lr_check "device A enrolls and connects under the first CA" \
		lr_sim old enroll commands
	lr_check "ca rekey stages the next CA and adds it to the file" \
		sh -c '"$1" ca rekey --key-out "$2/ca/next.key" --days 3650' sh "$B/bin/mdmctl" "$lr_dir"
	stack_own "$lr_dir"
	lr_check "the file holds the active and the next CA" lr_count "$MDM_TLS_CLIENT_CA_FILE" 2
	# The one reload of the rollover: after rekey, before activate.
	lr_check "lighttpd reads the file again (graceful restart)" lighttpd_reload "$TMP"
	lr_check "device A still connects" lr_sim old commands
	lr_check "ca activate keeps the retired CA in the file" \
		sh -c '"$1" ca activate && grep -q "^# retired CA: " "$2"' sh "$B/bin/mdmctl" \
		"$MDM_TLS_CLIENT_CA_FILE"
	lr_check "device B enrolls under the new CA and connects, without another reload" \
		lr_sim new enroll commands
	lr_check "device A, of the retired CA, still connects" lr_sim old commands
	# Without the retired CA in the file lighttpd exports no certificate
	# for device A: the program sees a request without an identity.
	"$B/bin/mdmctl" ca cert >"$lr_dir/active-only.pem" 2>>"$lr_log"
	stack_own "$lr_dir"
	lighttpd_stop "$TMP"
	lr_check "lighttpd with only the active CA in its file" lr_restart "$lr_dir/active-only.pem"
	lr_check "device A is refused then (the file is what lets it in)" \
		lr_fails lr_sim old commands
	lr_check "device B still connects" lr_sim new commands
	echo "lighttpd-rollover: $lr_ok passed, $lr_bad failed"
	[ "$lr_bad" -eq 0 ]
}

lighttpd_pass() {
	scep_legacy proxy
	scep_ra proxy
	https_port=$(stack_free_port 18443)
	http_port=$(stack_free_port 18080)
	MDM_PUBLIC_URL="https://127.0.0.1:$https_port"
	MDM_SCEP_URL="http://127.0.0.1:$http_port/scep"
	export MDM_PUBLIC_URL MDM_SCEP_URL
	# Every CA of the test database (mdmctl), and the stack's own device
	# CA, which issued the e2e suite's E2E_CLIENT_CERT.
	bundle=$TMP/lighttpd-client-ca.pem
	pass_step "$TMP/log/lighttpd.log" "lighttpd: mdmctl ca bundle failed" \
		"$B/bin/mdmctl" ca bundle --out "$bundle.db" || return 1
	cat "$bundle.db" "$CA_CERT" >"$bundle"
	stack_own "$bundle"
	lighttpd_start "$TMP" "$TMP/cgi-bin" "$https_port" "$http_port" "$bundle"
	# faults-e2e's graceful restart under load (SIGUSR1, as for Apache);
	# lighttpd has no children to kill.
	E2E_APACHE_PID_FILE=$LIGHTTPD_PID_FILE
	export E2E_APACHE_PID_FILE
	E2E_MODE=lighttpd
	E2E_HTTPS_BASE="https://127.0.0.1:$https_port"
	E2E_HTTP_BASE="http://127.0.0.1:$http_port"
	E2E_SCEP_URL="$E2E_HTTP_BASE/scep"
	export E2E_MODE E2E_HTTPS_BASE E2E_HTTP_BASE E2E_SCEP_URL
	stack_wait_health "$E2E_HTTPS_BASE/scep/health" "$E2E_HTTPS_BASE/enroll/health" \
		"$E2E_HTTPS_BASE/mdm/checkin/health" "$E2E_HTTPS_BASE/mdm/server/health" ||
		stack_say "lighttpd: not every route is healthy yet; the e2e suite will tell" >&2
	if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" != lighttpd-rollover ]; then
		e2e_run "check_e2e (lighttpd)" "$TMP/e2e-lighttpd.out" ||
			stack_show_log "$LIGHTTPD_ERROR_LOG" 30
	fi
	pg_start "$TMP" test
	if [ -z "${CK_RUN_SUITE:-}" ] || [ "$CK_RUN_SUITE" = lighttpd-rollover ]; then
		run_suite "lighttpd-rollover" "$TMP/lighttpd-rollover.out" lighttpd_rollover ||
			stack_show_log "$LIGHTTPD_ERROR_LOG" 30
	fi
	lighttpd_stop "$TMP"
	stack_sweep "$TMP/cgi-bin/"
	mkdir -p "$TMP/logs-lighttpd"
	mv "$TMP"/lighttpd/logs/*.log "$TMP"/apache/logs/pool-*.log "$TMP/logs-lighttpd/" 2>/dev/null
}
