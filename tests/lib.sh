# shellcheck shell=sh
#
# tests/lib.sh: how tests/run.sh runs suites and counts their checks.
# Sourced by it after scripts/stack.sh, with TMP (the run's directory)
# and B (the build) set; not run.  POSIX sh.
#
#   PASSED, FAILED   the run's totals
#   run_suite NAME LOG CMD...
#   e2e_run NAME LOG [SUITE]     BUILD/tests/check_e2e through the env file
#   e2e_env_write FILE
#   pass_step LOG MESSAGE CMD...
#   isolated NAME CMD...
#   san_init, san_check          sanitizer builds

PASSED=0
FAILED=0

# run_suite NAME LOG CMD...: runs a suite with its output in LOG, shows
# that output and adds its checks to the totals.  The summary is the last
# line that is either check's ("N%: Checks: N, Failures: N, Errors: N")
# or a shell suite's ("NAME: N passed, N failed").  A suite that ends
# without one (crash, sanitizer exit), or exits non-zero with no failed
# check, counts as one failure more.
run_suite() {
	name=$1
	log=$2
	shift 2
	stack_say "running $name"
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	# shellcheck disable=SC2046 # a tag and two or three numbers
	set -- $(sed -n -e 's/^[0-9]*%: Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/check \1 \2 \3/p' \
		-e 's/^[^:]*: \([0-9]*\) passed, \([0-9]*\) failed$/shell \1 \2/p' "$log" | tail -n 1)
	case ${1:-} in
	check) ok=$(($2 - $3 - $4)) bad=$(($3 + $4)) ;;
	shell) ok=$2 bad=$3 ;;
	*)
		stack_say "$name: no summary (exit status $rc)" >&2
		FAILED=$((FAILED + 1))
		return 1
		;;
	esac
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		stack_say "$name: exit status $rc with no failed check" >&2
		FAILED=$((FAILED + 1))
	fi
	[ "$rc" -eq 0 ]
}

# The names e2e_env_write writes: the contract of tests/e2e/ENV.md.
e2e_env_names() {
	env | sed -n -e 's/^\(E2E_[A-Za-z0-9_]*\)=.*/\1/p' -e 's/^\(MDM_[A-Za-z0-9_]*\)=.*/\1/p' \
		-e 's/^\(PKCS11_MODULE_PATH\)=.*/\1/p' -e 's/^\(P11_KIT_SERVER_ADDRESS\)=.*/\1/p' |
		grep -v '^E2E_ENV$' | sort -u
}

# e2e_env_write FILE: the environment file of tests/e2e/ENV.md: every
# variable e2e_env_names lists, a line NAME='value' each (a ' in the
# value written '\''), in name order.
e2e_env_write() {
	{
		echo "# Written by tests/run.sh for one run of check_e2e: tests/e2e/ENV.md."
		for ew_name in $(e2e_env_names); do
			eval "ew_value=\${$ew_name}"
			# shellcheck disable=SC2154 # assigned by eval above
			case $ew_value in
			*"
"*) stack_die "$ew_name holds a newline: it cannot go into $1" ;;
			esac
			printf "%s='%s'\n" "$ew_name" "$(printf '%s' "$ew_value" | sed "s/'/'\\\\''/g")"
		done
	} >"$1"
}

# e2e_run NAME LOG [SUITE]: run_suite NAME LOG with BUILD/tests/check_e2e
# (only its suite SUITE when given, as CK_RUN_SUITE).  Its variables go
# through the file beside LOG (LOG less .out, plus .env) alone: they are
# taken out of its environment and E2E_ENV names the file, so the file is
# all a rerun by hand needs.  With MDM_TEST_HOLD set to that file's name
# less .env (e2e-proxy, say), the run waits before it, the stack up and
# untouched, until Enter is pressed on its terminal.
e2e_run() {
	er_env=${2%.out}.env
	e2e_env_write "$er_env"
	if [ "${MDM_TEST_HOLD:-}" = "$(basename "$er_env" .env)" ]; then
		stack_say "holding before $1: E2E_ENV=$er_env $B/tests/check_e2e runs it; Enter goes on"
		read -r _ </dev/tty
	fi
	# shellcheck disable=SC2046 # one -u NAME a variable
	run_suite "$1" "$2" env $(e2e_env_names | sed 's/^/-u /') E2E_ENV="$er_env" \
		${3:+CK_RUN_SUITE=$3} "$B/tests/check_e2e"
}

# pass_step LOG MESSAGE CMD...: a step a pass cannot go on without: CMD
# with its output appended to LOG; when it fails, shows LOG, says MESSAGE,
# counts one failure and fails.
pass_step() {
	ps_log=$1
	ps_msg=$2
	shift 2
	"$@" >>"$ps_log" 2>&1 && return 0
	cat "$ps_log" >&2
	stack_say "$ps_msg" >&2
	FAILED=$((FAILED + 1))
	return 1
}

# isolated NAME CMD...: runs CMD in a subshell (what it exports stays
# there), its output in TMP/NAME.out, then takes over its counts.
isolated() {
	iso=$1
	shift
	(
		"$@"
		echo "$iso-totals $PASSED $FAILED"
	) >"$TMP/$iso.out" 2>&1
	cat "$TMP/$iso.out"
	# shellcheck disable=SC2046 # two numbers
	set -- $(sed -n "s/^$iso-totals \([0-9]*\) \([0-9]*\)\$/\1 \2/p" "$TMP/$iso.out")
	if [ $# -eq 2 ]; then
		PASSED=$1
		FAILED=$2
	else
		FAILED=$((FAILED + 1))
	fi
}

# san_init: SAN=1 for a sanitizer build (detected from the binaries), with
# ASAN_OPTIONS and UBSAN_OPTIONS exported to write every report into
# TMP/san, from any process; SAN=0 otherwise.
san_init() {
	SAN=0
	# gcc links the runtime dynamically (__asan_init), clang statically.
	grep -E -q '__asan_init|AddressSanitizer' "$B/bin/mdmctl" 2>/dev/null || return 0
	SAN=1
	mkdir -p "$TMP/san"
	chmod 1777 "$TMP/san"
	# LeakSanitizer needs ptrace-like powers some sandboxes deny.
	leaks=1
	printf 'int main(void) { return 0; }\n' >"$TMP/san/probe.c"
	if ${CC:-cc} -fsanitize=address -o "$TMP/san/probe" "$TMP/san/probe.c" 2>/dev/null; then
		chmod 755 "$TMP/san/probe"
		if ASAN_OPTIONS=detect_leaks=1 as_stack "$TMP/san/probe" 2>&1 |
			grep -q LeakSanitizer; then
			leaks=0
		fi
	fi
	rm -f "$TMP/san/probe" "$TMP/san/probe.c"
	ASAN_OPTIONS="log_path=$TMP/san/asan:detect_leaks=$leaks:abort_on_error=0"
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$TMP/san/ubsan"
	LSAN_OPTIONS=${LSAN_OPTIONS:-}
	export ASAN_OPTIONS UBSAN_OPTIONS
	[ -n "$LSAN_OPTIONS" ] && export LSAN_OPTIONS
	CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
	export CK_TIMEOUT_MULTIPLIER
	stack_say "sanitizer build: reports go to $TMP/san (detect_leaks=$leaks)"
}

# san_check: fails the run (one failure more) if any sanitizer report
# appeared in TMP/san or in the logs of the passes (TMP/logs-*).
san_check() {
	[ "$SAN" = 1 ] || return 0
	found=0
	shown=0
	for f in "$TMP"/san/asan.* "$TMP"/san/ubsan.*; do
		[ -f "$f" ] || continue
		found=1
		shown=$((shown + 1))
		# The first few in full; the rest are usually the same bug.
		if [ "$shown" -le 3 ]; then
			stack_say "sanitizer report $(basename "$f"):" >&2
			head -n 40 "$f" >&2
		else
			stack_say "sanitizer report $(basename "$f"): $(grep -m 1 SUMMARY "$f")" >&2
		fi
	done
	for f in "$TMP"/logs-*/*.log; do
		[ -f "$f" ] || continue
		if grep -E -q 'AddressSanitizer|LeakSanitizer|runtime error:' "$f"; then
			stack_say "sanitizer report in $f:" >&2
			grep -E -A 20 'AddressSanitizer|LeakSanitizer|runtime error:' "$f" | head -n 60 >&2
			found=1
		fi
	done
	if [ "$found" = 1 ]; then
		FAILED=$((FAILED + 1))
		return 1
	fi
	return 0
}

