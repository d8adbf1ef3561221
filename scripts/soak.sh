#!/usr/bin/env bash
# The longer proof suite (issue 9), too long for CI: the full-size fault
# injection run (50,000 webhooks, 20 kill -9s, 2 Postgres restarts, a 503-ing
# and stalling Callyzer API, a flapping BPMsoft), 5 minutes of 500 deliveries/s
# through the Edge Function, and the parser fuzzing at 50,000 cases per
# property. Each prints its figures; the JSON and the load plot land in
# target/proof/. Runs one suite at a time: they share the 2 cores.
#   scripts/soak.sh              everything (about 40 min on the 2-core machine)
#   scripts/soak.sh fault|load|fuzz   one of them
#   SOAK_PROFILE=release scripts/soak.sh   with an optimised worker and harness
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/tool-paths.sh
profile=()
[ "${SOAK_PROFILE:-debug}" = release ] && profile=(--release)
what=${1:-all}
run() { printf '\n== %s\n' "$*"; "$@"; }

cargo build --quiet "${profile[@]}" --bins
if [ "$what" = all ] || [ "$what" = fault ]; then
    run cargo test --quiet "${profile[@]}" --test fault_injection -- --ignored --nocapture
fi
if [ "$what" = all ] || [ "$what" = load ]; then
    run cargo test --quiet "${profile[@]}" --test load_sustained -- --ignored --nocapture
fi
if [ "$what" = all ] || [ "$what" = fuzz ]; then
    FUZZ_CASES=50000 run cargo test --quiet "${profile[@]}" --test fuzz_parsers -- --nocapture
    FUZZ_CASES=50000 run "$DENO" test --quiet --no-prompt --allow-env --allow-net=127.0.0.1 \
        --allow-read=supabase/functions supabase/functions/tests/webhook-fuzz-test.ts
fi
echo "figures: target/proof/"
