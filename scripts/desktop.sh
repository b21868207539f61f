#!/usr/bin/env bash
# The desktop tray app, from a fresh clone: `bash scripts/desktop.sh`.
#
# On Debian/Ubuntu it installs the packages the app needs to build and run when they are missing (apt, as root or
# through sudo), builds both of its programs in release (the tray app and its window) and starts the tray app.
# Arguments go to the app (`--hidden`: tray only). Elsewhere it builds and starts it (see README.md for the
# prerequisites on macOS and Windows). Needs Rust (https://rustup.rs).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=tests/desktop/packages.sh
source tests/desktop/packages.sh

if [[ $(uname -s) == Linux ]] && command -v apt-get >/dev/null 2>&1; then
    install_missing "${DESKTOP_BUILD_PACKAGES[@]}" "${DESKTOP_RUN_PACKAGES[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/desktop.sh: Rust is needed: install it from https://rustup.rs, then run this again" >&2
    exit 1
fi
# Both programs: `cargo run` would build only the tray app, and the window is the other one.
cargo build --release -p llm-gateway-desktop --bins
exec "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/llm-gateway-desktop" "$@"
