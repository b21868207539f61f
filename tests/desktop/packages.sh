# Debian/Ubuntu packages for the desktop app (sourced by tests/desktop/run.sh and bench/desktop.sh).

# To build llm-gateway-desktop (WebKitGTK, the tray library; pkg-config and a C toolchain for the -sys crates).
DESKTOP_BUILD_PACKAGES=(libwebkit2gtk-4.1-dev libayatana-appindicator3-dev pkg-config build-essential)
# To run it headless and test it: display, window manager, D-Bus session, keyring, deep-link registration and
# opening, screenshots, window control.
DESKTOP_TEST_PACKAGES=(xvfb xauth openbox dbus dbus-x11 gnome-keyring libsecret-tools xdg-utils desktop-file-utils
    libglib2.0-bin imagemagick wmctrl xdotool)

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
