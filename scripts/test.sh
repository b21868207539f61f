#!/usr/bin/env bash
# The project's one test command: `bash scripts/test.sh`.
#
# On a fresh Debian 12 machine (root, CI=true, no stdin) it installs everything the tests need, then runs
#   cargo fmt --check, cargo clippy -D warnings, cargo build,
#   cargo test --workspace (with the keychain tests on) and the real-client suites in tests/clients
# inside one D-Bus session with an unlocked gnome-keyring, then the web UI's browser tests (tests/ui: chromium
# driven by playwright-core against the built gateway; they print where their screenshots go), then the desktop
# app's tests (tests/desktop/run.sh: Xvfb, its own D-Bus session and keyring, WebDriver). Every install step is
# skipped when its result is already in place, so a warm run spends its time on cargo and the tests only.
#
#   bash scripts/test.sh            install (if needed), lint, build, test
#   bash scripts/test.sh --setup    install (if needed) only
#
# Installs outside the clone (override with the environment variables of the same name):
#   LLM_GATEWAY_VENV        Python venv with the pinned SDKs      (default /var/tmp/llm-gateway-venv)
#   LLM_GATEWAY_NPM_PREFIX  npm prefix with the pinned Claude Code (default /var/tmp/llm-gateway-npm)
#   LLM_GATEWAY_NPM_CACHE   npm cache for the UI tests' packages    (default /var/tmp/llm-gateway-npm-cache)
#   UI_TEST_ARTIFACTS       the UI tests' screenshots and logs      (default a new /tmp/llm-gateway-ui-artifacts.*)
#   CARGO_TARGET_DIR        cargo's target dir                     (default /var/tmp/llm-gateway-target)
#   LLM_GATEWAY_DESKTOP_TOOLS  tauri-driver for the desktop tests  (default /var/tmp/llm-gateway-desktop-tools)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

MODE=all
case "${1:-}" in
    "") ;;
    --setup) MODE=setup ;;
    *) echo "usage: bash scripts/test.sh [--setup]" >&2; exit 2 ;;
esac

# Pinned Claude Code CLI (the real client the gateway must serve); bump deliberately.
CLAUDE_CODE_VERSION=2.1.332
# chromium: the browser the web UI tests (tests/ui) drive through playwright-core (its own browser downloads are
# not reachable). The workspace includes the desktop app (src-tauri): building it needs WebKitGTK, the tray library
# and a C toolchain.
APT_PACKAGES=(dbus dbus-x11 gnome-keyring libsecret-tools libdbus-1-dev pkg-config chromium
    libwebkit2gtk-4.1-dev libayatana-appindicator3-dev build-essential)
# The desktop tests' display, window manager, screenshots and WebDriver (one list, in tests/desktop/packages.sh).
# shellcheck source=tests/desktop/packages.sh
source "$REPO_ROOT/tests/desktop/packages.sh"
APT_PACKAGES+=("${DESKTOP_TEST_PACKAGES[@]}")
VENV_DIR=${LLM_GATEWAY_VENV:-/var/tmp/llm-gateway-venv}
NPM_PREFIX=${LLM_GATEWAY_NPM_PREFIX:-/var/tmp/llm-gateway-npm}
NPM_CACHE=${LLM_GATEWAY_NPM_CACHE:-/var/tmp/llm-gateway-npm-cache}
UI_TESTS="$REPO_ROOT/tests/ui"
REQUIREMENTS="$REPO_ROOT/tests/clients/requirements.txt"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/llm-gateway-target}
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

SCRIPT_START=$SECONDS
section() { printf '\n==== %s ====\n' "$*"; }
step_time() { printf -- '---- %s took %ss\n' "$1" "$(($SECONDS - $2))"; }
die() { printf 'scripts/test.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------------------------------------------
install_apt_packages() {
    section "apt packages"
    local t=$SECONDS missing=() pkg
    local wanted=("${APT_PACKAGES[@]}")
    # The venv needs the interpreter's venv/ensurepip modules (Debian's own python3 ships them separately).
    python3 -c 'import venv, ensurepip' 2>/dev/null || wanted+=(python3-venv)
    command -v npm >/dev/null 2>&1 || wanted+=(nodejs npm)
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        echo "all present: ${wanted[*]}"
    else
        echo "installing: ${missing[*]}"
        local sudo=()
        if [[ $(id -u) -ne 0 ]]; then
            command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
            sudo=(sudo -n)
        fi
        "${sudo[@]}" apt-get update -q
        "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    step_time "apt packages" "$t"
}

# ---------------------------------------------------------------------------------------------------------------
# 2. Python venv with the pinned SDKs (rebuilt only when requirements.txt or the interpreter changes)
# ---------------------------------------------------------------------------------------------------------------
install_python_venv() {
    section "python venv ($VENV_DIR)"
    local t=$SECONDS stamp want
    [[ -f $REQUIREMENTS ]] || die "missing $REQUIREMENTS"
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    stamp="$VENV_DIR/.requirements-stamp"
    if [[ -x $VENV_DIR/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]] \
        && "$VENV_DIR/bin/python" -m pip check -q >/dev/null 2>&1; then
        echo "up to date"
    else
        echo "creating venv and installing $(basename "$REQUIREMENTS")"
        rm -rf "$VENV_DIR"
        python3 -m venv "$VENV_DIR"
        "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQUIREMENTS"
        echo "$want" >"$stamp"
    fi
    "$VENV_DIR/bin/python" - <<'EOF'
from importlib.metadata import version
print(", ".join(f"{name} {version(name)}" for name in ("anthropic", "openai", "pytest")))
EOF
    step_time "python venv" "$t"
}

# ---------------------------------------------------------------------------------------------------------------
# 3. The real Claude Code CLI, pinned, from npm
# ---------------------------------------------------------------------------------------------------------------
claude_version_offline() {
    # Runs the CLI the way the tests do: empty environment, throwaway HOME. Prints e.g. "2.1.332 (Claude Code)".
    local home rc=0
    home=$(mktemp -d)
    env -i PATH="$NPM_PREFIX/bin:/usr/bin:/bin" HOME="$home" DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 timeout 60 "$NPM_PREFIX/bin/claude" --version </dev/null || rc=$?
    rm -rf "$home"
    return "$rc"
}

install_claude_code() {
    section "Claude Code CLI $CLAUDE_CODE_VERSION ($NPM_PREFIX)"
    local t=$SECONDS have=""
    [[ -x $NPM_PREFIX/bin/claude ]] && have=$(claude_version_offline 2>/dev/null || true)
    if [[ $have == "$CLAUDE_CODE_VERSION "* ]]; then
        echo "up to date: $have"
    else
        echo "installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION (found: ${have:-none})"
        # The package's postinstall copies the platform's native binary over bin/claude.exe; npm 11 asks for it to
        # be allowed by name. Its engines field asks for Node 22, but the native binary does not use Node at all.
        npm install --global --prefix "$NPM_PREFIX" --no-audit --no-fund --no-update-notifier --loglevel=error \
            --allow-scripts=@anthropic-ai/claude-code "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
        have=$(claude_version_offline) || die "claude --version fails after install"
        [[ $have == "$CLAUDE_CODE_VERSION "* ]] || die "claude --version says '$have', expected $CLAUDE_CODE_VERSION"
        echo "installed: $have"
    fi
    step_time "Claude Code" "$t"
}

# ---------------------------------------------------------------------------------------------------------------
# 4. The web UI tests' npm packages (playwright-core, axe-core), pinned by tests/ui/package-lock.json
# ---------------------------------------------------------------------------------------------------------------
install_ui_test_packages() {
    section "UI test packages (tests/ui/node_modules)"
    local t=$SECONDS stamp="$UI_TESTS/node_modules/.package-lock-stamp" want
    want=$(sha256sum "$UI_TESTS/package-lock.json" | cut -d' ' -f1)
    if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        echo "up to date"
    else
        (cd "$UI_TESTS" && npm ci --cache "$NPM_CACHE" --no-audit --no-fund --no-update-notifier --loglevel=error)
        echo "$want" >"$stamp"
    fi
    step_time "UI test packages" "$t"
}

# ---------------------------------------------------------------------------------------------------------------
# 5. tauri-driver (WebDriver for the desktop app's window), from crates.io
# ---------------------------------------------------------------------------------------------------------------
install_desktop_tools() {
    section "tauri-driver $TAURI_DRIVER_VERSION ($DESKTOP_TOOLS_DIR)"
    local t=$SECONDS
    install_tauri_driver
    step_time "tauri-driver" "$t"
}

install_apt_packages
install_python_venv
install_claude_code
install_ui_test_packages
install_desktop_tools
[[ $MODE == setup ]] && { echo; echo "setup done in $((SECONDS - SCRIPT_START))s"; exit 0; }

# ---------------------------------------------------------------------------------------------------------------
# 6. Lint and build
# ---------------------------------------------------------------------------------------------------------------
section "cargo fmt --all --check"
t=$SECONDS
cargo fmt --all --check -- --color=never
step_time "fmt" "$t"

section "cargo clippy --workspace --all-targets -- -D warnings"
t=$SECONDS
cargo clippy --workspace --all-targets -- -D warnings
# The desktop tray's Tauri shell (macOS and Windows) is compiled on Linux only with this feature: check it too.
cargo clippy -p llm-gateway-desktop --all-targets --features tauri-tray -- -D warnings
step_time "clippy" "$t"

section "cargo build --workspace"
t=$SECONDS
cargo build --workspace
step_time "build" "$t"

export LLM_GATEWAY_BIN="$CARGO_TARGET_DIR/debug/llm-gateway"
export MOCK_UPSTREAM_BIN="$CARGO_TARGET_DIR/debug/mock-upstream"
export CLAUDE_BIN="$NPM_PREFIX/bin/claude"
export CLIENTS_PYTHON="$VENV_DIR/bin/python"
for bin in "$LLM_GATEWAY_BIN" "$MOCK_UPSTREAM_BIN" "$CLAUDE_BIN" "$CLIENTS_PYTHON"; do
    [[ -x $bin ]] || die "missing executable $bin"
done

# ---------------------------------------------------------------------------------------------------------------
# 7. Tests, inside one D-Bus session with an unlocked keyring; then the desktop app's
# ---------------------------------------------------------------------------------------------------------------
LOG_DIR=$(mktemp -d /tmp/llm-gateway-test.XXXXXX)
export LOG_DIR
trap 'rm -rf "$LOG_DIR"' EXIT

# Both suites run even when the first fails, so one CI run reports everything; the session's exit status is
# non-zero when either failed (dbus-run-session exits with its child's status). The keyring lives in a fresh
# XDG_DATA_HOME, so no keyring left on the machine (with another password) can get in the way.
rc=0
XDG_DATA_HOME="$LOG_DIR/xdg-data" dbus-run-session -- bash -c '
    set -uo pipefail
    echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
        || { echo "scripts/test.sh: error: gnome-keyring-daemon failed to start" >&2; exit 1; }
    rc=0

    printf "\n==== %s ====\n" "cargo test --workspace (LLM_GATEWAY_TEST_KEYCHAIN=1)"
    t=$SECONDS
    LLM_GATEWAY_TEST_KEYCHAIN=1 cargo test --workspace --no-fail-fast 2>&1 | tee "$LOG_DIR/cargo-test.log" || rc=1
    printf -- "---- cargo test took %ss\n" "$((SECONDS - t))"

    printf "\n==== %s ====\n" "pytest tests/clients"
    t=$SECONDS
    PYTHONDONTWRITEBYTECODE=1 "$CLIENTS_PYTHON" -m pytest tests/clients -p no:cacheprovider -v -rfEs \
        --junitxml="$LOG_DIR/pytest.xml" || rc=1
    printf -- "---- pytest took %ss\n" "$((SECONDS - t))"
    exit "$rc"
' || rc=$?

# The web UI in a real browser (tests/ui/README.md). It needs no keyring: the gateway it starts keeps its secrets in
# an encrypted file. Bounded: a hung browser cannot hold CI (the whole run takes well under a minute when healthy).
section "web UI browser tests (tests/ui)"
t=$SECONDS
UI_ARTIFACTS=${UI_TEST_ARTIFACTS:-$(mktemp -d /tmp/llm-gateway-ui-artifacts.XXXXXX)}
echo "artifacts (screenshots, logs): $UI_ARTIFACTS"
UI_TEST_ARTIFACTS="$UI_ARTIFACTS" UI_TEST_JUNIT="$LOG_DIR/ui.xml" LLM_GATEWAY_VENV="$VENV_DIR" \
    LLM_GATEWAY_NPM_CACHE="$NPM_CACHE" timeout --kill-after=30 1800 bash tests/ui/run.sh \
    || { echo "scripts/test.sh: error: the web UI browser tests failed" >&2; rc=1; }
step_time "UI tests" "$t"
echo "UI test artifacts (screenshots, logs): $UI_ARTIFACTS"

section "desktop app tests (tests/desktop/run.sh)"
t=$SECONDS
bash tests/desktop/run.sh --junitxml="$LOG_DIR/desktop.xml" || rc=1
step_time "desktop tests" "$t"

bash bench/run.sh --smoke || { echo "scripts/test.sh: error: bench smoke run (bash bench/run.sh --smoke) failed" >&2; rc=1; }

# ---------------------------------------------------------------------------------------------------------------
# 8. Summary: one plain line over every runner, printed only when each reported its counts
# ---------------------------------------------------------------------------------------------------------------
section "summary"
summary=$("$CLIENTS_PYTHON" - "$LOG_DIR/cargo-test.log" "$LOG_DIR/ui.xml" "$LOG_DIR/pytest.xml" "$LOG_DIR/desktop.xml" <<'EOF' || true
import re, sys, xml.etree.ElementTree as ET
cargo_log, ui_junit, junits = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    text = open(cargo_log, encoding="utf-8", errors="replace").read()
    roots = [ET.parse(junit).getroot() for junit in junits]
    ui_root = ET.parse(ui_junit).getroot()
except (OSError, ET.ParseError):
    sys.exit(1)
# "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
results = re.findall(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", text, re.M)
# Every test binary ("Running ...") and doc-test run ("Doc-tests ...") must have closed with its own result line;
# one that did not compile or crashed has none, and then there is no truthful total.
started = re.findall(r"^\s+(?:Running|Doc-tests) ", text, re.M)
if not results or len(results) != len(started):
    sys.exit(1)
passed = sum(int(p) for p, _, _ in results)
failed = sum(int(f) for _, f, _ in results)
skipped = sum(int(i) for _, _, i in results)
suites = [s for root in roots for s in ([root] if root.tag == "testsuite" else root.iter("testsuite"))]
for s in suites:
    tests, fails, errs, skips = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    passed += tests - fails - errs - skips
    failed += fails + errs
    skipped += skips
# node --test's JUnit report: one <testcase> per test, with a <failure>/<error> or <skipped> child when so.
ui_cases = list(ui_root.iter("testcase"))
if not ui_cases:
    sys.exit(1)
for case in ui_cases:
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
EOF
)
echo "total time $((SECONDS - SCRIPT_START))s"
if [[ -n $summary ]]; then
    echo "$summary"
else
    echo "(no combined count: see the cargo test, pytest and UI test summaries above)"
fi
if ((rc != 0)); then
    echo "scripts/test.sh: FAILED (exit $rc)" >&2
fi
exit "$rc"
