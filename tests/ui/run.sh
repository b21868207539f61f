#!/usr/bin/env bash
# Runs the browser tests of the web UI (see README.md). Installs the pinned npm packages when needed.
#   LLM_GATEWAY_BIN=… MOCK_UPSTREAM_BIN=… bash tests/ui/run.sh [node --test options]
# UI_TEST_JUNIT=FILE also writes a JUnit report there (scripts/test.sh counts it in its summary).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"
NPM_CACHE=${LLM_GATEWAY_NPM_CACHE:-/var/tmp/llm-gateway-npm-cache}
stamp=node_modules/.package-lock-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    npm ci --cache "$NPM_CACHE" --no-audit --no-fund --no-update-notifier --loglevel=error
    echo "$want" >"$stamp"
fi
[[ -x ${CHROMIUM_BIN:-/usr/bin/chromium} ]] || { echo "tests/ui: chromium not found (apt-get install chromium)" >&2; exit 2; }
reporters=(--test-reporter=spec --test-reporter-destination=stdout)
if [[ -n ${UI_TEST_JUNIT:-} ]]; then
    reporters+=(--test-reporter=junit "--test-reporter-destination=$UI_TEST_JUNIT")
fi
# --test-timeout bounds each test and the file as a whole (node --test counts the file as a test): 15 minutes, far
# above a healthy run (under a minute here), so only a hang reaches it. Each wait inside has its own 30 s bound.
exec node --test --test-concurrency=1 --test-timeout=900000 "${reporters[@]}" "$@" ui.test.mjs
