#!/bin/sh
# bench/perf-window.sh start|stop: a bench's timed window under linux-perf.
# bench/run.sh sets BENCH_WINDOW to this script when BENCH_PERF names a
# directory; the bench programs run it with "start" just before their
# clock starts and "stop" just after it stops (ts_bench_window).
#   start  perf record (call graphs by DWARF: libcrypto has no frame
#          pointers; BENCH_PERF_CALLGRAPH=fp for less data) on every process of BENCH_PERF_USER whose command
#          line matches BENCH_PERF_MATCH (the servers only: the client and
#          its set-up are not in the profile)
#   stop   ends the recording and writes BENCH_PERF_OUT.txt: where the
#          servers' time went, by program and library, then by function
set -u
out=$BENCH_PERF_OUT
case ${1:-} in
start)
	pids=$(pgrep -u "$BENCH_PERF_USER" -f "$BENCH_PERF_MATCH" | paste -sd, -)
	[ -n "$pids" ] || { echo "perf-window: no process matches $BENCH_PERF_MATCH" >&2; exit 1; }
	perf record -F 999 --call-graph "${BENCH_PERF_CALLGRAPH:-dwarf,16384}" -o "$out.data" -p "$pids" >"$out.log" 2>&1 &
	echo $! >"$out.pid"
	# perf attaches in well under a second; the window must not open before.
	sleep 1
	;;
stop)
	pid=$(cat "$out.pid")
	kill -TERM "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	{
		echo "# by program and library (self time)"
		perf report -i "$out.data" --stdio --no-children --sort comm,dso -g none \
			--percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$'
		echo "# by function (self time)"
		perf report -i "$out.data" --stdio --no-children --sort comm,dso,sym -g none \
			--percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$'
	} >"$out.txt"
	;;
*)
	echo "usage: perf-window.sh start|stop" >&2
	exit 2
	;;
esac
