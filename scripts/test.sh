#!/usr/bin/env bash
# Every test suite, on real parts, from a clean clone: installs what is missing,
# then formatting and lints, Rust unit and integration tests (each test binary
# starts its own PostgreSQL cluster), pgTAP on a cluster with every migration
# including the pg_cron schedules, the Deno tests of the Edge Functions, and the
# console's browser test in headless Chromium (installed from Debian if missing).
#   scripts/test.sh            everything
#   scripts/test.sh --quick    Rust tests only (while iterating)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/tool-paths.sh
step() { printf '\n== %s\n' "$*"; }

step "tools"
scripts/install-tools.sh --browser  # --browser: Chromium for the console's browser test

if [ "${1:-}" != "--quick" ]; then
    step "cargo fmt --check"
    cargo fmt --check
    step "cargo clippy --all-targets -- -D warnings"
    cargo clippy --quiet --all-targets -- -D warnings
fi

step "Rust unit and integration tests"
cargo build --quiet --bins  # integration tests start the worker binary
cargo test --quiet -- --test-threads "${TEST_THREADS:-4}"

[ "${1:-}" = "--quick" ] && exit 0

step "pgTAP (supabase/tests/database)"
dir="$root/target/pgtap-cluster"
port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
rm -rf "$dir"
trap 'scripts/pg-cluster.sh down "$dir"; rm -rf "$dir"' EXIT
scripts/pg-cluster.sh up "$dir" "$port"
DATABASE_URL="postgres://postgres:postgres@127.0.0.1:$port/postgres" target/debug/callsync migrate >/dev/null
PGPASSWORD=postgres pg_prove --ext .sql -r -h 127.0.0.1 -p "$port" -U postgres -d postgres supabase/tests/database

step "Deno tests (supabase/functions/tests)"
if compgen -G "supabase/functions/tests/*-test.ts" >/dev/null; then
    "$DENO" test --quiet --no-prompt --allow-env --allow-net=127.0.0.1 --allow-read=supabase/functions supabase/functions/tests/*-test.ts
else
    echo "no Deno tests yet"
fi

step "Browser tests (console in Chromium: tests/console_browser.rs, tests/browser/console.mjs)"
# Ignored by the plain cargo test above (it needs Chromium); run here explicitly.
cargo test --quiet --test console_browser -- --ignored --nocapture
