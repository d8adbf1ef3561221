#!/usr/bin/env bash
# A throwaway or local PostgreSQL 15 cluster shaped like a Supabase database:
# pg_cron preloaded, the bootstrap of sql/bootstrap applied. One place that knows
# how, used by the local stack (dev.sh), the pgTAP run (test.sh) and the Rust
# test harness (tests/common), so the three never drift apart.
#
#   pg-cluster.sh up DIR PORT [OWNER_PID]   init if needed, start, bootstrap; with OWNER_PID
#                                           the cluster stops and DIR is removed when that
#                                           process exits (test clusters)
#   pg-cluster.sh down DIR                  fast shutdown
#   pg-cluster.sh url DIR PORT ROLE [DB]    print a connection URL
#
# PostgreSQL refuses to run as root; as root we run the server as the `postgres`
# system user that Debian's package creates.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bin/initdb" ] || bin=/usr/lib/postgresql/15/bin

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:?usage: pg-cluster.sh up|down|url ...}
dir=${2:?data directory}

case "$cmd" in
up)
    port=${3:?port}
    owner=${4:-}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        # the local password is `postgres` for every login role (local stacks only)
        echo postgres >"$dir/.pwfile"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/.pwfile"
        as_owner "$bin/initdb" -D "$dir/data" -U supabase_admin --auth-local=trust \
            --auth-host=scram-sha-256 --pwfile="$dir/.pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        rm -f "$dir/.pwfile"
        cat >>"$dir/data/postgresql.conf" <<CONF
# callsync: shaped like a Supabase database (reference/supabase.md §2.5, §2.8)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 32
max_connections = 300
timezone = 'UTC'
log_timezone = 'UTC'
CONF
        # Benchmarks' statement breakdown (BENCH_STATEMENTS=1): every statement,
        # nested ones too, timed by pg_stat_statements; not for the test runs.
        if [ "${CALLSYNC_PG_STAT_STATEMENTS:-0}" = 1 ]; then
            printf "shared_preload_libraries = 'pg_cron,pg_stat_statements'\npg_stat_statements.track = all\n" \
                >>"$dir/data/postgresql.conf"
        fi
    fi
    # An unclean stop (kill -9, a reboot) leaves a pid file: pg_ctl copes with it.
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/server.log" -w -t 60 start >/dev/null \
            || { tail -20 "$dir/server.log" >&2; exit 1; }
    fi
    psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U supabase_admin "$@"; }
    psql_admin -d postgres -f "$root/sql/bootstrap/01_cluster_roles.sql" >/dev/null
    psql_admin -d postgres -f "$root/sql/bootstrap/02_database.sql" >/dev/null
    psql_admin -d postgres -f "$root/sql/bootstrap/03_cron.sql" >/dev/null
    if [ -n "$owner" ]; then
        # The watchdog outlives this script; it stops the cluster when the owner exits.
        setsid bash -c "while kill -0 $owner 2>/dev/null; do sleep 1; done; \
            $(declare -f as_owner); as_owner '$bin/pg_ctl' -D '$dir/data' -m immediate stop >/dev/null 2>&1; \
            rm -rf '$dir'" </dev/null >/dev/null 2>&1 &
    fi
    ;;
down)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
url)
    port=${3:?port}
    role=${4:?role}
    db=${5:-postgres}
    echo "postgres://$role:postgres@127.0.0.1:$port/$db"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
