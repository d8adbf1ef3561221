#!/usr/bin/env bash
# Serves every Edge Function in supabase/functions with Deno 2 (from tools/,
# npm `deno`) at http://127.0.0.1:$PORT/functions/v1/<name>, the path hosted
# Supabase uses. Used by dev.sh and by the Rust test harness.
#   env: PORT, plus the functions' own secrets (supabase/functions/.env.example)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/tool-paths.sh"
: "${PORT:?PORT}"
exec "$DENO" run --quiet --no-prompt \
    --allow-net --allow-env --allow-read="$root/supabase/functions" \
    "$root/supabase/functions/_local/serve.ts"
