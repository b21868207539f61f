#!/usr/bin/env bash
# The desktop app's tests, under Xvfb (a virtual display with the openbox window manager) inside one D-Bus session
# with an unlocked gnome-keyring. scripts/test.sh runs it after the other suites; see tests/desktop/README.md.
#
#   bash tests/desktop/run.sh                 install what is missing, build (debug), run every test
#   bash tests/desktop/run.sh -k deep_link    extra arguments go to pytest
#
# Environment: CARGO_TARGET_DIR (default /var/tmp/llm-gateway-target), LLM_GATEWAY_VENV (the Python venv of
# tests/clients, default /var/tmp/llm-gateway-venv; pytest and jeepney are needed), LLM_GATEWAY_DESKTOP_TOOLS
# (where tauri-driver is installed, default /var/tmp/llm-gateway-desktop-tools), ARTIFACTS_DIR (screenshots and
# the WebDriver log; default $CARGO_TARGET_DIR/desktop-artifacts).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=tests/desktop/packages.sh
source tests/desktop/packages.sh

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/llm-gateway-target}
export DEBIAN_FRONTEND=noninteractive
VENV_DIR=${LLM_GATEWAY_VENV:-/var/tmp/llm-gateway-venv}
export ARTIFACTS_DIR=${ARTIFACTS_DIR:-$CARGO_TARGET_DIR/desktop-artifacts}

install_missing "${DESKTOP_BUILD_PACKAGES[@]}" "${DESKTOP_TEST_PACKAGES[@]}"
install_tauri_driver

# pytest, and jeepney (pure-Python D-Bus: the tests read and click the tray menu as a panel does), pinned in
# tests/clients/requirements.txt like the rest of the venv.
if ! "$VENV_DIR/bin/python" -c 'import pytest, jeepney' 2>/dev/null; then
    echo "adding pytest and jeepney to $VENV_DIR (the full venv comes from: bash scripts/test.sh --setup)"
    [[ -x $VENV_DIR/bin/python ]] || python3 -m venv "$VENV_DIR"
    "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check \
        $(grep -iE '^(pytest|jeepney)==' tests/clients/requirements.txt)
fi

cargo build -p llm-gateway -p mock-upstream -p llm-gateway-desktop
export DESKTOP_BIN="$CARGO_TARGET_DIR/debug/llm-gateway-desktop"
export DESKTOP_WINDOW_BIN="$CARGO_TARGET_DIR/debug/llm-gateway-desktop-window"
export LLM_GATEWAY_BIN="$CARGO_TARGET_DIR/debug/llm-gateway"
export MOCK_UPSTREAM_BIN="$CARGO_TARGET_DIR/debug/mock-upstream"
mkdir -p "$ARTIFACTS_DIR"

PYTHONDONTWRITEBYTECODE=1 bash tests/desktop/session.sh \
    "$VENV_DIR/bin/python" -m pytest tests/desktop -p no:cacheprovider -v -rfEs "$@"
