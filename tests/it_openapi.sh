#!/usr/bin/env bash
# it_openapi: docs/openapi.yaml is a valid OpenAPI 3.1 document (Redocly's
# linter, with tests/openapi/redocly.yaml's rules), and it describes exactly
# the routes of server/http.c, every error code of api/errors.c, every
# request field and every query parameter (tests/openapi/check.js).
#
#   it_openapi.sh SOURCE_DIR TOOLS_DIR
#
# The linter comes from the npm registry, at the exact version below, and is
# installed once into TOOLS_DIR (in the build directory, which git ignores).
# Skipped (exit 77) only when npm itself is missing.
set -euo pipefail

REDOCLY_CLI_VERSION=1.34.20

src=$(cd "$1" && pwd)
tools=$2

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "SKIP: npm (and node) not found: cannot install @redocly/cli to validate docs/openapi.yaml" \
         "(Debian: apt-get install npm)"
    exit 77
fi

mkdir -p "$tools"
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
trap 'rm -rf "$tmp"' EXIT

echo "== redocly lint docs/openapi.yaml ($("$redocly" --version))"
"$redocly" lint --config "$src/tests/openapi/redocly.yaml" "$src/docs/openapi.yaml"

echo "== the document against server/http.c, api/errors.c, api/request.c"
if ! "$redocly" bundle --config "$src/tests/openapi/redocly.yaml" --dereferenced --ext json \
        -o "$tmp/openapi.json" "$src/docs/openapi.yaml" >"$tmp/bundle.log" 2>&1; then
    cat "$tmp/bundle.log"
    exit 1
fi
node "$src/tests/openapi/check.js" "$src" "$tmp/openapi.json"
