#!/usr/bin/env bash
# A private PostgreSQL server for tests and benchmarks: start | stop | status | url | psql [ARGS].
#
# It is its own cluster (initdb), not Debian's default one: loopback only, a private port and
# socket directory, trust auth, fsync on. PostgreSQL refuses to run as root, so as root the
# cluster belongs to the `postgres` system user and lives where that user can reach it
# (/var/tmp, not the repository); as any other user it is that user's own. `start` is idempotent.
#
# Environment: CONVEYOR_PG_PORT (54329), CONVEYOR_PG_DIR (/var/tmp/conveyor-pg[-USER]).
set -euo pipefail

PORT=${CONVEYOR_PG_PORT:-54329}
DATABASE=conveyor_test
SUPERUSER=postgres

if [ "$(id -u)" -eq 0 ]; then
    OWNER=postgres
    ROOT=${CONVEYOR_PG_DIR:-/var/tmp/conveyor-pg}
else
    OWNER=$(id -un)
    ROOT=${CONVEYOR_PG_DIR:-/var/tmp/conveyor-pg-$OWNER}
fi
DATA=$ROOT/data
SOCKETS=$ROOT/run
LOG=$ROOT/postgres.log
URL="postgresql://$SUPERUSER@127.0.0.1:$PORT/$DATABASE"

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

find_bin() {
    local initdb
    initdb=$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$initdb" ] || die "PostgreSQL is not installed: run scripts/setup.sh (or make test)"
    BIN=$(dirname "$initdb")
    MAJOR=$(basename "$(dirname "$BIN")")
}

# Run a command as the cluster's owner, from a directory that user can enter.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$OWNER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# Running means: the pid in postmaster.pid is a live postgres process. (pg_ctl status trusts any
# live pid, and after a reboot a stale lock file's pid may belong to something else.)
is_running() {
    local pid
    pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]
}

wait_ready() {
    local i
    for i in $(seq 1 60); do
        "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && return 0
        sleep 0.5
    done
    die "PostgreSQL at 127.0.0.1:$PORT does not accept connections (log: $LOG)"
}

init_cluster() {
    if [ -d "$DATA" ] && [ "$(cat "$DATA/PG_VERSION" 2>/dev/null || true)" != "$MAJOR" ]; then
        # Half-initialised, or made by another major version: test data is disposable.
        echo "postgres.sh: re-creating $DATA for PostgreSQL $MAJOR"
        rm -rf "$DATA"
    fi
    mkdir -p "$ROOT" "$SOCKETS"
    chmod 755 "$ROOT"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$OWNER:" "$ROOT" "$SOCKETS"
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        as_owner "$BIN/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust --encoding=UTF8 \
            --no-locale >"$ROOT/initdb.log" 2>&1 \
            || { cat "$ROOT/initdb.log" >&2; die "initdb failed"; }
        echo "include_if_exists = 'conveyor.conf'" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
    fi
    # Rewritten on every start, so a change here reaches clusters made earlier.
    as_owner tee "$DATA/conveyor.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKETS'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 1GB
log_min_messages = warning
log_checkpoints = off
log_line_prefix = '%m [%p] %d '
EOF
}

# Two `make test` at once must not both start a server: start and stop take a lock first.
lock() {
    exec 9>>"$ROOT.lock"
    flock -w 120 9 || die "timed out waiting for $ROOT.lock"
}

start() {
    find_bin
    lock
    if is_running; then
        wait_ready
        echo "postgres.sh: already running at $URL"
    else
        init_cluster
        # Lock files left by a server that is gone (a reboot, a kill): their pids may now belong
        # to other processes, and PostgreSQL would then refuse to start.
        rm -f "$DATA/postmaster.pid" "$SOCKETS"/.s.PGSQL.*
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 9>&- \
            || { tail -n 30 "$LOG" >&2; die "could not start PostgreSQL (log: $LOG)"; }
        echo "postgres.sh: started PostgreSQL $MAJOR at $URL (data: $DATA, log: $LOG)"
    fi
    local exists
    exists=$(run_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")
    if [ "$exists" != "1" ]; then
        run_psql -d postgres -qc "CREATE DATABASE $DATABASE"
    fi
}

stop() {
    find_bin
    lock
    if is_running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        echo "postgres.sh: stopped"
    else
        echo "postgres.sh: not running"
    fi
}

run_psql() {
    "$BIN/psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" "$@"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        find_bin
        if is_running; then echo "running at $URL"; else echo "not running"; exit 3; fi
        ;;
    url) echo "$URL" ;;
    psql)
        shift
        find_bin
        run_psql -d "$DATABASE" "$@"
        ;;
    *)
        echo "usage: $0 start|stop|status|url|psql [ARGS]" >&2
        exit 2
        ;;
esac
