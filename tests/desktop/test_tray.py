"""The tray menu, clicked and read over D-Bus as a panel does (tray.py): a Claude login started from it (the test
plays the browser on the mock's authorize page), Claude Code set up and restored in the test's HOME, Pause and
Resume keeping the gateway's state, Quit draining a running stream."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import SlowStream, assert_quit_drains, http, http_refused, recording_browser, secret_tool_lookup, start_app, stop_app, wait_until
from tray import Tray


@pytest.fixture
def tray_app(home, mock_upstream):
    """The app in the tray only (`--hidden`, as Start at login launches it), its browser recorded, its menu on
    D-Bus."""
    env, opened = recording_browser(home)
    app = start_app(home, mock_upstream, "--hidden", env=env)
    tray = None
    try:
        app.wait_log(r"gateway ready on")
        tray = Tray(app.proc.pid)
        app.opened = opened
        app.tray = tray
        app.mock = mock_upstream
        yield app
    finally:
        if tray:
            tray.close()
        stop_app(app)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def follow_authorize(url: str) -> str:
    """The browser on the mock's authorize page, which approves at once: returns where it redirects."""
    try:
        urllib.request.build_opener(NoRedirect).open(url, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code in (302, 303), e.code
        return e.headers["Location"]
    raise AssertionError("the authorize page did not redirect")


def log_in_from_the_tray(app) -> str:
    """Log in with Claude from the tray menu, playing the browser; returns the callback page's hand-back link."""
    tray = app.tray
    tray.wait_label("the menu to say there is no account", lambda labels: "No accounts yet" in labels)

    tray.click("Log in with Claude")
    # The account appears at once, waiting for its login (the menu follows the gateway's events).
    tray.wait_label("a line for the new account", lambda labels: "claude · needs login" in labels)
    authorize = wait_until("the browser to be opened", lambda: app.opened.exists() and app.opened.read_text())
    authorize = authorize.strip().splitlines()[-1]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
    assert query["redirect_uri"] == [f"http://localhost:{app.port}/callback"], "the loopback on the gateway's port"

    callback = follow_authorize(authorize)
    assert callback.startswith(f"http://localhost:{app.port}/callback?"), callback
    status, page = http("GET", callback)
    assert status == 200, page
    done = re.search(r'href="(llm-gateway://oauth/done[^"]*)"', page.decode())
    assert done, page
    return done.group(1).replace("&amp;", "&")


def test_login_from_the_tray_opens_the_browser_and_ends_with_the_account_ready_in_the_menu(tray_app):
    app, tray = tray_app, tray_app.tray
    done = log_in_from_the_tray(app)

    labels = tray.wait_label("the account's line to say it is ready", lambda ls: "claude · ready" in ls)
    assert any(label.endswith("1 of 1 account usable") for label in labels), labels
    app.wait_log(r"notification title=\"?Logged in")
    status = json.loads(app.cli("status", "--json"))
    account = next(a for a in status["accounts"] if a["name"] == "claude")
    assert account["state"] == "active" and account.get("email"), account
    assert secret_tool_lookup(f"account:{account['id']}:oauth"), "the token record is in the keychain"
    assert "Claude login needed" not in app.log(), "an account waiting for its first login is not announced"

    # The page's hand-back link brings the window forward on the accounts page.
    before = len(app.log())
    subprocess.run(["gio", "open", done], env=app.env, check=True, timeout=60)
    app.wait_log(r"deep link: oauth/done", after=before)
    app.wait_log(r"window process started.*reason=\"?login done", after=before)


def test_an_account_whose_login_is_refused_shows_needs_login_at_once_with_a_notification(tray_app):
    app, tray = tray_app, tray_app.tray
    log_in_from_the_tray(app)
    tray.wait_label("the account to be ready", lambda labels: "claude · ready" in labels)
    # The upstream expires the access token and refuses the refresh (invalid_grant): the next request finds out.
    assert http("POST", f"{app.mock}/_mock/oauth/expire")[0] == 204
    config = json.dumps({"fail_next_with_status": 400}).encode()
    assert http("POST", f"{app.mock}/_mock/oauth/config", body=config, headers={"content-type": "application/json"})[0] < 300
    before = len(app.log())
    http(
        "POST", f"{app.url}/v1/messages",
        body=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"content-type": "application/json", "anthropic-version": "2023-06-01", "x-app": "cli",
                 "user-agent": "claude-cli/2.1.0 (external, cli)"},
    )
    tray.wait_label("the menu to say the account needs a login", lambda labels: "claude · needs login" in labels)
    app.wait_log(r"notification title=\"?Claude login needed\"? body=\"?The account `claude` needs a new login", after=before)


def test_claude_code_is_set_up_and_restored_from_the_tray_in_the_users_home(tray_app):
    app, tray = tray_app, tray_app.tray
    settings = app.home / ".claude/settings.json"
    settings.parent.mkdir()
    original = '{\n    "theme":   "dark",\n  "env": {"FOO": "bar"}\n}\n'
    settings.write_text(original)
    tray.wait_label("the running gateway's menu", lambda labels: "No accounts yet" in labels)

    before = len(app.log())
    tray.click("Set up Claude Code")
    app.wait_log(r"notification title=\"?Claude Code set up\"? body=\"?Changed .*apiKeyHelper", after=before)
    text = settings.read_text()
    assert '    "theme":   "dark",' in text, "the user's keys stay, spacing included"
    config = json.loads(text)
    assert config["env"]["ANTHROPIC_BASE_URL"] == app.url
    assert config["env"]["FOO"] == "bar"
    helper = subprocess.run(["sh", "-c", config["apiKeyHelper"]], env=app.env, capture_output=True, text=True,
                            timeout=60)
    assert helper.returncode == 0, helper.stderr
    key = helper.stdout.strip()
    assert key.startswith("lgw-"), "apiKeyHelper prints the dedicated gateway key"
    # With a general key the gateway is no longer open: the dedicated key must be one it knows.
    app.cli("add-client-key", "--name", "general")

    def answer(gateway_key: str) -> int:
        return http(
            "POST", f"{app.url}/v1/messages",
            body=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 8,
                             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": gateway_key},
        )[0]
    wait_until("the general key to be in force", lambda: answer("lgw-not-a-key") == 401)
    assert answer(key) == 503, "the dedicated key is accepted (then no account can serve)"

    before = len(app.log())
    tray.click("Restore Claude Code settings")
    app.wait_log(r"notification title=\"?Claude Code settings restored\"? body=\"?.*back as it was", after=before)
    assert settings.read_text() == original, "restored byte for byte"


def test_pause_from_the_tray_frees_the_port_keeps_a_cooldown_and_resume_serves_again(tray_app):
    app, tray = tray_app, tray_app.tray
    app.cli("add-api-key", "--name", "limited", env={"LLM_GATEWAY_API_KEY": "sk-ant-ratelimited-desktop"})
    tray.wait_label("the account to load", lambda labels: "limited · ready" in labels)
    send = lambda: http(  # noqa: E731
        "POST", f"{app.url}/v1/messages",
        body=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
    )
    assert send()[0] == 429
    cooling = tray.wait_label("the cooldown in the menu", lambda ls: any(l.startswith("limited · cooling down") for l in ls))

    tray.click("Pause")
    tray.wait_label("the menu to offer Resume", lambda labels: "Resume" in labels)
    assert http_refused(app.url), "a paused gateway does not listen"

    tray.click("Resume")
    labels = tray.wait_label("the menu to offer Pause again", lambda ls: "Pause" in ls and any(l.startswith("Serving") for l in ls))
    assert http("GET", f"{app.url}/health")[0] == 200
    assert any(l.startswith("limited · cooling down") for l in labels), f"the cooldown survived: {labels} (was {cooling})"
    status, body = send()
    assert status == 503, f"the benched account is not tried again: {status} {body[:200]!r}"


def test_quit_from_the_tray_drains_a_running_stream_then_exits_0(tray_app):
    app, tray = tray_app, tray_app.tray
    app.cli("add-api-key", "--name", "k", env={"LLM_GATEWAY_API_KEY": "sk-ant-api03-desktop-drain"})
    tray.wait_label("the account to load", lambda labels: "k · ready" in labels)
    status, _ = http(
        "POST", f"{app.url}/v1/messages",
        body=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
    )
    assert status == 200
    tray.wait_label("the counts line to count it (the usage store's day count)", lambda labels: "1 request today" in labels)

    stream = SlowStream(app.url)
    tray.click("Quit")
    assert_quit_drains(app, stream)


def test_start_at_login_from_the_tray_writes_and_removes_the_autostart_entry(tray_app):
    app, tray = tray_app, tray_app.tray
    entry = app.home / ".config/autostart/LLM Gateway.desktop"
    assert not entry.exists()
    # Once the menu shows the running gateway (a click on a menu that is being replaced is lost, as on a panel).
    tray.wait_label("the running gateway's menu", lambda labels: "No accounts yet" in labels)
    tray.click("Start at login")
    wait_until("the autostart entry", entry.exists)
    text = entry.read_text()
    assert "--hidden" in text and "llm-gateway-desktop" in text, text
    tray.wait_label("the menu to show it on", lambda labels: "Start at login" in labels)
    assert tray.checked("Start at login"), "the menu shows Start at login checked"

    tray.click("Start at login")
    wait_until("the autostart entry to go", lambda: not entry.exists())
    wait_until("the menu to show it off", lambda: not tray.checked("Start at login"))
