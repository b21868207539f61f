#!/usr/bin/env bash
# session.sh CMD [ARGS...]: runs CMD under Xvfb (1280x800, openbox as the window manager) inside a fresh D-Bus
# session with an unlocked gnome-keyring, the way the desktop tests and bench/desktop.sh need it. Exits with CMD's
# status.
set -euo pipefail
SESSION_DIR=$(mktemp -d /tmp/llm-gateway-desktop-session.XXXXXX)
trap 'rm -rf "$SESSION_DIR"' EXIT
# The keyring lives in the session's own XDG_DATA_HOME, so no keyring left on the machine gets in the way.
XDG_DATA_HOME="$SESSION_DIR/data" xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c '
    set -uo pipefail
    echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
        || { echo "session.sh: gnome-keyring-daemon failed to start" >&2; exit 1; }
    openbox >/dev/null 2>&1 &
    wm=$!
    "$@"
    rc=$?
    kill "$wm" 2>/dev/null
    exit "$rc"
' session "$@"
