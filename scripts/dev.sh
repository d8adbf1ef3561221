#!/usr/bin/env bash
# The whole stack locally, in the foreground, on loopback: PostgreSQL 15 with
# pg_cron (data in .callsync/pg), the Supabase bootstrap and every migration,
# demo data, PostgREST, the Edge Functions (Deno), and the worker. Prints the
# URLs and writes them, with the local keys, to .callsync/local.env. Ctrl-C
# stops everything. Running it again reuses the data and applies only new
# migrations; a second copy running at the same time is refused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/tool-paths.sh
state="$root/.callsync"
mkdir -p "$state"

if [ -f "$state/stack.pid" ] && kill -0 "$(cat "$state/stack.pid")" 2>/dev/null; then
    echo "the local stack is already running (pid $(cat "$state/stack.pid")); stop it with Ctrl-C there first" >&2
    exit 1
fi
echo $$ >"$state/stack.pid"

scripts/install-tools.sh
t_tools=$SECONDS
echo "building the worker…"
cargo build --quiet --bins
t_built=$SECONDS

free_port() {  # the preferred port when it is free, else any free one
    node -e "const n=require('net');const t=p=>new Promise(r=>{const s=n.createServer();s.once('error',()=>r(0));s.listen(p,'127.0.0.1',()=>{const a=s.address().port;s.close(()=>r(a))})});(async()=>{console.log((await t($1))||(await t(0)))})()"
}
# The database keeps its port across runs (its data folder is reused).
if [ -f "$state/db.port" ]; then db_port=$(cat "$state/db.port"); else db_port=$(free_port 54322); echo "$db_port" >"$state/db.port"; fi
rest_port=$(free_port 54321)
fn_port=$(free_port 54320)
sim_port=$(free_port 54323)  # callsync simulate: Callyzer + BPMsoft stand-in, and the console

# Secrets are made once and kept, so keys handed out earlier stay valid.
if [ ! -f "$state/secrets.env" ]; then
    umask 077
    {
        echo "JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)"
        echo "CALLYZER_WEBHOOK_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
        echo "ELEVENLABS_WEBHOOK_SECRET=wsec_$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
    } >"$state/secrets.env"
    umask 022
fi
set -a; . "$state/secrets.env"; set +a
# The simulator's history API wants a Bearer token; derived, so it needs no new secret file.
CALLYZER_API_TOKEN=${CALLYZER_API_TOKEN:-sim-$(printf %s "$JWT_SECRET" | sha256sum | cut -c1-32)}
SIMULATOR_URL="http://127.0.0.1:$sim_port"

pids=()
stop_all() {
    trap "" INT TERM PIPE  # a second Ctrl-C, or a closed pipe (| tee), must not cut the clean stop short
    set +e
    trap - EXIT
    echo; echo "stopping…"
    # The worker first (SIGTERM: it drains), then the HTTP side, then Postgres.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    scripts/pg-cluster.sh down "$state/pg"
    rm -f "$state/stack.pid"
    echo "stopped."
    exit 0
}
trap stop_all INT TERM EXIT

scripts/pg-cluster.sh up "$state/pg" "$db_port"
DATABASE_URL="postgres://postgres:postgres@127.0.0.1:$db_port/postgres"
WORKER_DATABASE_URL="postgres://callsync_worker:postgres@127.0.0.1:$db_port/postgres"
DATABASE_URL="$DATABASE_URL" target/debug/callsync migrate
if [ -f supabase/seed.sql ]; then
    psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f supabase/seed.sql
fi

ANON_KEY=$(target/debug/callsync jwt --role anon)
SERVICE_ROLE_KEY=$(target/debug/callsync jwt --role service_role)
POSTGREST_URL="http://127.0.0.1:$rest_port"
FUNCTIONS_URL="http://127.0.0.1:$fn_port/functions/v1"
cat >"$state/local.env" <<ENV
# Written by scripts/dev.sh; local stack only. Source it: set -a; . .callsync/local.env; set +a
DATABASE_URL=$DATABASE_URL
WORKER_DATABASE_URL=$WORKER_DATABASE_URL
POSTGREST_URL=$POSTGREST_URL
FUNCTIONS_URL=$FUNCTIONS_URL
JWT_SECRET=$JWT_SECRET
ANON_KEY=$ANON_KEY
SERVICE_ROLE_KEY=$SERVICE_ROLE_KEY
CALLYZER_WEBHOOK_TOKEN=$CALLYZER_WEBHOOK_TOKEN
ELEVENLABS_WEBHOOK_SECRET=$ELEVENLABS_WEBHOOK_SECRET
SIMULATOR_URL=$SIMULATOR_URL
CONSOLE_URL=$SIMULATOR_URL/
CALLYZER_API_TOKEN=$CALLYZER_API_TOKEN
ENV
chmod 600 "$state/local.env"

DB_URI="postgres://authenticator:postgres@127.0.0.1:$db_port/postgres" PORT=$rest_port \
    scripts/run-postgrest.sh &
pids+=($!)
PORT=$fn_port CALLSYNC_REST_URL=$POSTGREST_URL SUPABASE_SERVICE_ROLE_KEY=$SERVICE_ROLE_KEY \
    scripts/run-functions.sh &
pids+=($!)
# The worker's Callyzer API and BPMsoft point at the simulator unless set outside.
DATABASE_URL=$WORKER_DATABASE_URL WORKER_ID=local-worker \
    CALLYZER_API_BASE_URL=${CALLYZER_API_BASE_URL:-$SIMULATOR_URL/api} CALLYZER_API_TOKEN=$CALLYZER_API_TOKEN \
    EXTERNAL_CRM_ENABLED=${EXTERNAL_CRM_ENABLED:-true} EXTERNAL_CRM_DRY_RUN=${EXTERNAL_CRM_DRY_RUN:-false} \
    CRM_SERVICE_URL=${CRM_SERVICE_URL:-$SIMULATOR_URL/0/ServiceModel/GeneratedObjectWebFormService.svc/SaveWebFormObjectData} \
    CRM_LANDING_ID=${CRM_LANDING_ID:-3b0f6c2e-9d41-4a57-8e1c-5f2a7d9b4c10} CRM_TRUSTED_ORIGIN=${CRM_TRUSTED_ORIGIN:-http://localhost/} \
    target/debug/callsync worker &
pids+=($!)
# "Running" means answering: wait (90 s at most) for each HTTP process.
wait_http() {
    local what=$1 url=$2 deadline=$((SECONDS + 90)) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        # any answer below 500 is a process that serves (PostgREST: 503 until its schema cache is loaded)
        if [ "${code:-000}" != 000 ] && [ "$code" -lt 500 ]; then return 0; fi
        if [ $SECONDS -ge $deadline ]; then echo "$what did not answer at $url within 90 s" >&2; return 1; fi
        sleep 0.2
    done
}
wait_http PostgREST "$POSTGREST_URL/"
wait_http "the functions" "$FUNCTIONS_URL/"
# Calls arrive once the webhook path answers (started before that, the
# simulator's first deliveries were refused with 503). The simulator posts
# deliveries (SIM_DROP of them are lost, for reconciliation to recover), serves
# the history API, BPMsoft and the console with its local sign-in (a Supabase
# Auth stand-in for the demo users).
# SIMULATE=0 leaves it out. Local demo: reconcile every minute over a 15-minute
# buffer, and once 2 s after the first lost delivery, so a newcomer sees the
# recovery in the first minute (hosted projects keep the hourly default).
if [ "${SIMULATE:-1}" != 0 ]; then
    psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "update callsync.setting set value = '\"1 minute\"' where key = 'callyzer.reconcile_interval' and value <> '\"1 minute\"'" \
        -c "update callsync.setting set value = '\"15 minutes\"' where key = 'callyzer.reconcile_safety_buffer' and value <> '\"15 minutes\"'"
    DATABASE_URL=$DATABASE_URL FUNCTIONS_URL=$FUNCTIONS_URL POSTGREST_URL=$POSTGREST_URL CALLYZER_API_TOKEN=$CALLYZER_API_TOKEN \
        ANON_KEY=$ANON_KEY JWT_SECRET=$JWT_SECRET \
        target/debug/callsync simulate --listen "127.0.0.1:$sim_port" --local-login \
        --rate "${SIM_RATE:-30}" --drop "${SIM_DROP:-0.2}" --history "${SIM_HISTORY:-400}" \
        --reconcile-after-drop-secs "${SIM_RECONCILE_AFTER_DROP_SECS:-2}" --elevenlabs-every-secs "${SIM_ELEVENLABS_SECS:-90}" &
    pids+=($!)
    wait_http "the console" "$SIMULATOR_URL/config.json"
fi

cat <<MSG

callsync is running (ready $SECONDS s after start: tools $t_tools s, build $((t_built - t_tools)) s, database and services $((SECONDS - t_built)) s; Ctrl-C stops everything):
  Postgres    $DATABASE_URL
  PostgREST   $POSTGREST_URL
  Functions   $FUNCTIONS_URL
  Console     $SIMULATOR_URL/   (sign in: admin@callsync.test, kierownik@callsync.test or doradca@callsync.test,
              password callsync-demo, local only; simulator: SIM_RATE, SIM_DROP, SIMULATE=0)
  keys, URLs and secrets: .callsync/local.env

MSG
# Stay in the foreground; if any process dies, stop the rest.
wait -n "${pids[@]}" || true
echo "a stack process exited; stopping the others" >&2
