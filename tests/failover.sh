#!/bin/sh
#
# tests/failover.sh: a PostgreSQL primary with a synchronous streaming
# standby, and its failover (issue 13, faults; README "Operations").
# Used by tests/run.sh's failover pass and by the failover-e2e suite
# (tests/e2e/faults_e2e.c).  POSIX sh.
#
#   sh tests/failover.sh start DIR
#       DIR/primary: a cluster made by scripts/stack.sh's pg_start, with
#       synchronous_standby_names = 'standby1' and synchronous_commit = on
#       (a COMMIT returns once the standby has the WAL on disk: what a
#       device is told is on both); DIR/standby: pg_basebackup of it,
#       streaming as standby1.  Waits until the standby is in sync.
#       Writes DIR/env: FAILOVER_CONNINFO (both sockets,
#       target_session_attrs=read-write, as docs/CONFIG.md says) and
#       FAILOVER_PRIMARY_SOCK, FAILOVER_STANDBY_SOCK.
#   sh tests/failover.sh promote DIR
#       the failover: the primary stopped with -m immediate (a crash: its
#       sessions cut, nothing flushed beyond what it had), the standby
#       promoted; returns once the new primary accepts writes.
#   sh tests/failover.sh stop DIR
#       stops whatever of the two still runs.
#
# The clusters run as the stack user (scripts/stack.sh), on unix sockets
# only, on STACK_PG_PORT in two socket directories.

set -u

STACK_ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
STACK_PROG=failover
# shellcheck source=scripts/stack.sh
. "$STACK_ROOT/scripts/stack.sh"
stack_init

[ $# -eq 2 ] || stack_die "usage: failover.sh start|promote|stop DIR"
DIR=$2

standby_psql() {
	"$PG_BIN/psql" -X -q -t -A -h "$DIR/standby/pgsock" -p "$STACK_PG_PORT" -U postgres \
		-d postgres "$@"
}

failover_start() {
	mkdir -p "$DIR"
	chmod 755 "$DIR"
	stack_own "$DIR"
	pg_start "$DIR/primary"
	{
		echo "# Added by tests/failover.sh: a synchronous standby."
		echo "synchronous_standby_names = 'standby1'"
		echo "synchronous_commit = on"
		echo "wal_level = replica"
		echo "max_wal_senders = 4"
		echo "wal_keep_size = '64MB'"
	} >>"$PG_DATA/postgresql.conf"
	as_stack "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 restart >/dev/null || {
		stack_show_log "$PG_LOG"
		stack_die "the primary did not restart"
	}
	psock=$PG_SOCK
	ssock=$DIR/standby/pgsock
	mkdir -p "$DIR/standby/log" "$ssock"
	stack_own "$DIR/standby" "$DIR/standby/log" "$ssock"
	# initdb's pg_hba.conf trusts local replication connections.
	as_stack "$PG_BIN/pg_basebackup" -h "$psock" -p "$STACK_PG_PORT" -U postgres \
		-D "$DIR/standby/pgdata" -X stream -R >"$DIR/standby/log/basebackup.log" 2>&1 || {
		stack_show_log "$DIR/standby/log/basebackup.log"
		stack_die "pg_basebackup failed"
	}
	# Later lines win: its own socket, its name for synchronous_standby_names,
	# and (once promoted, alone) no synchronous standby of its own: the copied
	# postgresql.conf would make every COMMIT wait for one forever.
	{
		echo "synchronous_standby_names = ''"
		echo "unix_socket_directories = '$ssock'"
		echo "primary_conninfo = 'host=$psock port=$STACK_PG_PORT user=postgres application_name=standby1'"
	} >>"$DIR/standby/pgdata/postgresql.auto.conf"
	as_stack "$PG_BIN/pg_ctl" -D "$DIR/standby/pgdata" -l "$DIR/standby/log/postgres.log" \
		-w -t 60 start >/dev/null || {
		stack_show_log "$DIR/standby/log/postgres.log"
		stack_die "the standby did not start"
	}
	n=0
	until [ "$(pg_psql postgres -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'" 2>/dev/null)" = sync ]; do
		[ "$n" -lt 300 ] || stack_die "the standby is not in sync after 30 s"
		sleep 0.1
		n=$((n + 1))
	done
	{
		echo "FAILOVER_CONNINFO='host=$psock,$ssock port=$STACK_PG_PORT,$STACK_PG_PORT dbname=mdm user=mdm target_session_attrs=read-write'"
		echo "FAILOVER_PRIMARY_SOCK='$psock'"
		echo "FAILOVER_STANDBY_SOCK='$ssock'"
	} >"$DIR/env"
	stack_say "primary $psock, synchronous standby $ssock"
}

failover_promote() {
	as_stack "$PG_BIN/pg_ctl" -D "$DIR/primary/pgdata" -m immediate -w -t 30 stop \
		>/dev/null 2>&1 || stack_die "the primary did not stop"
	as_stack "$PG_BIN/pg_ctl" -D "$DIR/standby/pgdata" -w -t 60 promote >/dev/null 2>&1 ||
		stack_die "the standby was not promoted"
	n=0
	until [ "$(standby_psql -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
		[ "$n" -lt 300 ] || stack_die "the promoted standby still in recovery after 30 s"
		sleep 0.1
		n=$((n + 1))
	done
	stack_say "failed over: the primary crashed, the standby promoted"
}

failover_stop() {
	for c in primary standby; do
		[ -f "$DIR/$c/pgdata/postmaster.pid" ] || continue
		as_stack "$PG_BIN/pg_ctl" -D "$DIR/$c/pgdata" -m fast -w -t 30 stop >/dev/null 2>&1
	done
	return 0
}

case $1 in
start) failover_start ;;
promote) failover_promote ;;
stop) failover_stop ;;
*) stack_die "usage: failover.sh start|promote|stop DIR" ;;
esac
