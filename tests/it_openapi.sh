#!/usr/bin/env bash
# it_openapi: docs/openapi.yaml is a valid OpenAPI 3.1 document (Redocly's
# linter, with tests/openapi/redocly.yaml's rules); it describes exactly the
# routes of server/http.c, every error code of api/errors.c, every request
# field and every query parameter (tests/openapi/check.js); and the real
# server's answers to every operation match it (tests/openapi/conform.js).
#
#   it_openapi.sh SOURCE_DIR TOOLS_DIR SPAWND_BINARY
#
# The linter comes from the npm registry, at the exact version below, and is
# installed once into TOOLS_DIR (in the build directory, which git ignores).
# Skipped (exit 77) only when npm itself is missing.
set -euo pipefail

REDOCLY_CLI_VERSION=1.34.20

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "SKIP: npm (and node) not found: cannot install @redocly/cli to validate docs/openapi.yaml" \
         "(Debian: apt-get install npm)"
    exit 77
fi

src=$(cd "$1" && pwd)
tools=$(mkdir -p "$2" && cd "$2" && pwd)
spawnd=$3

# ctest -j may run this next to another build's copy: install under a lock.
exec 9>"$tools/.lock"
flock 9
if [ "$(cat "$tools/.installed" 2>/dev/null || true)" != "$REDOCLY_CLI_VERSION" ] ||
   [ ! -x "$tools/node_modules/.bin/redocly" ]; then
    echo "installing @redocly/cli@$REDOCLY_CLI_VERSION into $tools"
    rm -rf "$tools/node_modules" "$tools/.installed"
    npm install --prefix "$tools" --no-save --no-package-lock --no-audit --no-fund \
        --loglevel=error "@redocly/cli@$REDOCLY_CLI_VERSION"
    echo "$REDOCLY_CLI_VERSION" >"$tools/.installed"
fi
flock -u 9

# No telemetry, no update check: nothing but the files is read.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
redocly=$tools/node_modules/.bin/redocly
tmp=$(mktemp -d)
spawnd_pid=
cleanup() {
    if [ -n "$spawnd_pid" ]; then
        kill "$spawnd_pid" 2>/dev/null || true
        wait "$spawnd_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== redocly lint docs/openapi.yaml ($("$redocly" --version))"
"$redocly" lint --config "$src/tests/openapi/redocly.yaml" "$src/docs/openapi.yaml"

echo "== the document against server/http.c, api/errors.c, api/request.c"
if ! "$redocly" bundle --config "$src/tests/openapi/redocly.yaml" --dereferenced --ext json \
        -o "$tmp/openapi.json" "$src/docs/openapi.yaml" >"$tmp/bundle.log" 2>&1; then
    cat "$tmp/bundle.log"
    exit 1
fi
node "$src/tests/openapi/check.js" "$src" "$tmp/openapi.json"

echo "== the real server's answers against the document"
token=it-openapi-$$-$RANDOM
SPAWND_TOKEN=$token "$spawnd" --listen 127.0.0.1:0 --instance-id t0 --max-jobs 6 \
    --max-body-bytes 4096 2>"$tmp/spawnd.log" &
spawnd_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$tmp/spawnd.log")
    [ -n "$port" ] && break
    kill -0 "$spawnd_pid" 2>/dev/null || break
    sleep 0.05
done
if [ -z "$port" ]; then
    echo "spawnd did not start:" >&2
    cat "$tmp/spawnd.log" >&2
    exit 1
fi
node "$src/tests/openapi/conform.js" "$tmp/openapi.json" "http://127.0.0.1:$port" "$token" \
    "$tools" "$src/tests/helpers" || { tail -20 "$tmp/spawnd.log" >&2; exit 1; }
