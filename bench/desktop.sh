#!/usr/bin/env bash
# Desktop app measurements (issue 16's bars): launch to gateway ready (release build) and the resident memory of
# all the app's processes in the tray, with the window open, and with the window closed and its webview destroyed.
#
#   bash bench/desktop.sh      builds release (llm-gateway-desktop with mock-upstream), measures, prints a table and
#                              writes bench/results/desktop.json
#
# Runs under Xvfb with a D-Bus session and an unlocked gnome-keyring (tests/desktop/session.sh). Environment:
# CARGO_TARGET_DIR (default /var/tmp/llm-gateway-target), DESKTOP_BENCH_LAUNCHES (default 7),
# DESKTOP_BENCH_SETTLE_S (seconds to wait before reading memory, default 5).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=tests/desktop/packages.sh
source tests/desktop/packages.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/llm-gateway-target}
export DEBIAN_FRONTEND=noninteractive

install_missing "${DESKTOP_BUILD_PACKAGES[@]}" "${DESKTOP_TEST_PACKAGES[@]}"
cargo build --release -p llm-gateway-desktop -p mock-upstream
export DESKTOP_BIN="$CARGO_TARGET_DIR/release/llm-gateway-desktop"
export MOCK_UPSTREAM_BIN="$CARGO_TARGET_DIR/release/mock-upstream"
export LLM_GATEWAY_BIN="$CARGO_TARGET_DIR/release/llm-gateway"
PYTHONDONTWRITEBYTECODE=1 bash tests/desktop/session.sh python3 tests/desktop/measure.py bench/results/desktop.json
