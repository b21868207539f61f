"""The window driven through WebDriver (tauri-driver + WebKitWebDriver): the window program
(`llm-gateway-desktop-window`), launched by the driver with `--url …` pointed at a running app's UI with a one-time
sign-in code, renders the dashboard signed in, and an account added through its form reaches the app's gateway,
config and keychain."""

from __future__ import annotations

import json

import subprocess

from harness import binary, http, secret_tool_lookup, start_app, stop_app, wait_until
from webdriver import Session, TauriDriver, button_with_text


def test_webdriver_drives_the_window_the_dashboard_renders_and_an_account_is_added(home, mock_upstream, artifacts):
    app = start_app(home, mock_upstream, "--hidden")
    driver = session = None
    try:
        app.wait_log(r"gateway ready on")
        sign_in = app.cli("ui", "--no-browser").strip().splitlines()[-1]
        assert sign_in.startswith(f"{app.url}/ui/#code="), sign_in
        driver = TauriDriver(app.env, artifacts / "tauri-driver.log")
        session = Session(driver.url, {"tauri:options": {
            "application": binary("DESKTOP_WINDOW_BIN"), "args": ["--url", sign_in],
        }})

        # Signed in with the code: the dashboard, not the sign-in form.
        session.wait_text("main h1", "Overview")
        assert session.script("return location.hash") == "#/overview", "the code left the address bar"
        screenshot(app, artifacts / "desktop-dashboard.png")

        # As the app does after a login: a fresh code for the same window, opening on the accounts page.
        on_accounts = app.cli("ui", "--no-browser").strip().splitlines()[-1] + "&page=accounts"
        session.call("POST", "/url", {"url": on_accounts})
        session.wait_text("main h1", "Accounts")
        assert session.script("return location.hash") == "#/accounts"
        session.click(button_with_text(session, "main button.btn.primary", "Add account"))
        session.type_into("#acc-name", "webdriver")
        session.type_into("#acc-key", "sk-ant-api03-webdriver-good")
        session.click(button_with_text(session, "dialog button[type=submit]", "Add account"))

        def listed():
            accounts = json.loads(app.cli("list-accounts", "--json"))
            return next((a for a in accounts if a["name"] == "webdriver"), None)
        account = wait_until("the account in the config", listed)
        assert secret_tool_lookup(f"account:{account['id']}:api_key") == "sk-ant-api03-webdriver-good"
        session.wait_text("main", "webdriver")
        screenshot(app, artifacts / "desktop-accounts.png")

        status, body = http(
            "POST", f"{app.url}/v1/messages",
            body=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 16,
                             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
        )
        assert status == 200 and json.loads(body)["type"] == "message", body
    finally:
        if session:
            session.quit()
        if driver:
            driver.stop()
        stop_app(app)


def screenshot(app, path) -> None:
    """The display as X sees it (WebDriver's own screenshot command stalls WebKitWebDriver under Xvfb: after one,
    later commands can hang)."""
    subprocess.run(["import", "-window", "root", str(path)], env=app.env, check=True, timeout=60)
    colours = subprocess.run(["identify", "-format", "%k", str(path)], capture_output=True, text=True, check=True)
    assert int(colours.stdout) > 16, "the screenshot shows a rendered window, not a blank screen"
