#!/bin/sh
# bench/plans.sh LOG [OFFSET [DETAIL]]: what PostgreSQL's auto_explain
# logged in LOG from byte OFFSET on, summed up: per FastCGI program (the
# application_name, which bench/run.sh puts in log_line_prefix as app=),
# how many distinct statements were planned and how often, and every scan
# that is not an index scan, with its statement.  A sequential scan of a
# big table on a hot path costs in proportion to the table and is what
# the bench at 1,000,000 rows looks for: it is printed loudly.  Small
# tables (the CA, push certificates, sequences) are read whole by design.
# DETAIL, when given, gets every hot-path statement with each access
# path its plans took.  Exit status 0 either way: the plans are reported,
# the bench does not fail on them.
#
# The log is auto_explain's text format (log_format text, costs on): a
# record per execution, "LOG:  duration: ... plan:", then tab-indented
# lines, "Query Text: ..." and the plan, whose node lines carry "(cost=".
set -u
log=${1:?usage: bench/plans.sh LOG [OFFSET [DETAIL]]}
off=${2:-0}
detail=${3:-/dev/null}
# Tables that bench/scale.sql fills to a row or more per device.
BIG="certificate device enrollment command command_queue command_result identity_binding
checkin challenge scep_transaction push_state"

tail -c +"$((off + 1))" "$log" | awk -v big="$BIG" -v detail="$detail" '
function flush() {
	if (app != "" && query != "") {
		key = app SUBSEP query
		if (!(key in runs)) {
			order[++nkeys] = key
			if (hot[app])
				stmts[app]++
		}
		runs[key]++
		if (hot[app])
			execs[app]++
	}
	app = ""
	query = ""
}
BEGIN {
	n = split(big, b, /[ \n]+/)
	for (i = 1; i <= n; i++)
		isbig[b[i]] = 1
	split("scep.fcgi checkin.fcgi server.fcgi enroll.fcgi", h, " ")
	for (i = 1; i <= 4; i++)
		hot[h[i]] = 1
}
/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / {
	flush()
	if ($0 ~ / LOG:  duration: .* plan:$/ && match($0, / app=[^ ]* /))
		app = substr($0, RSTART + 5, RLENGTH - 6)
	next
}
app == "" { next }
/^\tQuery Text: / {
	query = substr($0, 14)
	gsub(/[ \t]+/, " ", query)
	next
}
query != "" && /\(cost=[0-9.]+\.\.[0-9.]+ rows=/ {
	line = $0
	sub(/^[ \t]*(->  )?/, "", line)
	sub(/  \(cost=.*/, "", line)
	what = ""
	if (match(line, /^(Parallel )?(Seq Scan|Bitmap Heap Scan|Tid Scan|Tid Range Scan|Sample Scan) on [^ ]+/)) {
		what = substr(line, 1, RLENGTH)
		table = what
		sub(/.* on /, "", table)
	} else if (match(line, /^(Parallel )?Index (Only )?Scan (Backward )?using [^ ]+ on [^ ]+/)) {
		what = substr(line, 1, RLENGTH)
		table = ""
	}
	if (what == "")
		next
	key = app SUBSEP query
	if (!((key, what) in seen)) {
		seen[key, what] = 1
		paths[key] = paths[key] (paths[key] == "" ? "" : "; ") what
		if (table != "" && hot[app]) {
			loud = isbig[table] && what ~ /^(Parallel )?Seq Scan/
			note = (loud ? "!!! " : "    ") what " (" app \
				(isbig[table] ? (loud ? ", a big table" : ", a big table, through an index") : ", small table") \
				"): " substr(query, 1, 150)
			if (loud)
				louds[++nloud] = note
			else
				quiet[++nquiet] = note
		}
	}
}
END {
	flush()
	line = ""
	for (i = 1; i <= 4; i++) {
		a = h[i]
		line = line (i > 1 ? "; " : "") a " " stmts[a] + 0 " (" execs[a] + 0 " executions)"
	}
	print "  distinct statements planned, by program: " line
	other = 0
	for (i = 1; i <= nkeys; i++) {
		split(order[i], kq, SUBSEP)
		if (hot[kq[1]]) {
			printf "%s x%d: %s\n    %s\n", kq[1], runs[order[i]], kq[2],
				(paths[order[i]] == "" ? "(no table scanned)" : paths[order[i]]) >detail
		} else {
			other++
		}
	}
	if (nquiet + nloud == 0)
		print "  every table on the hot paths was reached through an index"
	else if (nquiet > 0)
		print "  scans that are not index scans, hot paths:"
	for (i = 1; i <= nquiet; i++)
		print "  " quiet[i]
	if (nloud > 0) {
		print "  !!! SEQUENTIAL SCAN OF A BIG TABLE ON A HOT PATH (" nloud "): cost grows with the table"
		for (i = 1; i <= nloud; i++)
			print "  " louds[i]
	}
	if (other > 0)
		print "  (and " other " statements of the bench itself, command_bench set-up and checks, not counted)"
}'
