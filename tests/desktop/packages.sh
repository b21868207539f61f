# Debian/Ubuntu packages and tools for the desktop app (sourced by tests/desktop/run.sh, bench/desktop.sh,
# scripts/desktop.sh and scripts/test.sh).

# To build llm-gateway-desktop (WebKitGTK, the tray library, D-Bus for the keychain; pkg-config and a C toolchain
# for the -sys crates).
DESKTOP_BUILD_PACKAGES=(libwebkit2gtk-4.1-dev libayatana-appindicator3-dev libdbus-1-dev pkg-config build-essential)
# To run it on a desktop: the keychain (Secret Service) and the link handler's tools.
DESKTOP_RUN_PACKAGES=(gnome-keyring xdg-utils desktop-file-utils)
# To run it headless and test it: display, window manager, D-Bus session, keyring, deep-link registration and
# opening, screenshots, window control, WebDriver for WebKitGTK (WebKitWebDriver, which tauri-driver starts).
DESKTOP_TEST_PACKAGES=(xvfb xauth openbox dbus dbus-x11 gnome-keyring libsecret-tools xdg-utils desktop-file-utils
    libglib2.0-bin imagemagick wmctrl xdotool webkit2gtk-driver)

# tauri-driver: the WebDriver intermediary for Tauri apps (crates.io; 3.x is alpha), installed outside the clone.
TAURI_DRIVER_VERSION=2.1.0
DESKTOP_TOOLS_DIR=${LLM_GATEWAY_DESKTOP_TOOLS:-/var/tmp/llm-gateway-desktop-tools}
export TAURI_DRIVER_BIN=${TAURI_DRIVER_BIN:-$DESKTOP_TOOLS_DIR/bin/tauri-driver}

# install_tauri_driver: `cargo install tauri-driver` into $DESKTOP_TOOLS_DIR unless that version is there (about
# a minute on two cores; built in a scratch target dir that is deleted afterwards).
install_tauri_driver() {
    if [[ -x $TAURI_DRIVER_BIN ]] && grep -qs "\"tauri-driver $TAURI_DRIVER_VERSION " "$DESKTOP_TOOLS_DIR/.crates.toml"; then
        return 0
    fi
    echo "installing tauri-driver $TAURI_DRIVER_VERSION into $DESKTOP_TOOLS_DIR"
    local scratch
    scratch=$(mktemp -d /var/tmp/tauri-driver-build.XXXXXX)
    CARGO_TARGET_DIR=$scratch cargo install --quiet --locked --root "$DESKTOP_TOOLS_DIR" \
        tauri-driver --version "=$TAURI_DRIVER_VERSION"
    rm -rf "$scratch"
}

# install_missing PKG...: apt-get installs the packages that are not installed yet (root or sudo).
install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    echo "installing: ${missing[*]}"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
        sudo=(sudo -n)
    fi
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}
