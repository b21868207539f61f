"""The desktop app under Xvfb: its gateway, single instance and deep links, the keychain, Quit, the window."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import (
    SlowStream, assert_quit_drains, http, runtime_info, secret_tool_lookup, start_app, stop_app,
    wait_until,
)


def test_app_starts_and_its_gateway_answers(app):
    status, body = http("GET", f"{app.url}/health")
    assert status == 200, body
    info = runtime_info(app)
    assert info["url"] == app.url
    assert info["pid"] == app.proc.pid, "the gateway runs inside the app process"
    app.wait_log(r"window created and shown.*reason=\"?launch")


def test_second_instance_exits_0_and_its_deep_link_reaches_the_first(app):
    before = len(app.log())
    second = app.launch_again("llm-gateway://oauth/done?account=acc_second")
    assert second.returncode == 0, second.stderr
    app.wait_log(r"deep link: oauth/done.*account=\"?acc_second", after=before)
    app.wait_log(r"window shown.*reason=\"?login done", after=before)
    # Still one gateway, still answering.
    assert http("GET", f"{app.url}/health")[0] == 200


def test_plain_second_launch_brings_the_window_forward_and_exits_0(app):
    before = len(app.log())
    second = app.launch_again()
    assert second.returncode == 0, second.stderr
    app.wait_log(r"another launch forwarded its arguments.*links=0", after=before)
    app.wait_log(r"window shown.*reason=\"?second launch", after=before)


def test_gio_open_on_a_deep_link_brings_the_window_forward(app):
    app.wait_log(r"registered the llm-gateway:// link handler")
    handler = app.home / ".local/share/applications/llm-gateway-desktop-handler.desktop"
    assert "x-scheme-handler/llm-gateway" in handler.read_text()
    before = len(app.log())
    opened = subprocess.run(
        ["gio", "open", "llm-gateway://oauth/done?account=acc_gio"], env=app.env, capture_output=True, text=True,
        timeout=60,
    )
    assert opened.returncode == 0, opened.stderr
    app.wait_log(r"deep link: oauth/done.*account=\"?acc_gio", after=before)
    app.wait_log(r"window shown.*reason=\"?login done", after=before)


def authorize_redirect(app) -> str:
    """Adds an OAuth account, starts its login (CLI) and plays the browser on the mock's authorize page, which
    approves at once: returns the account id and the redirect (the gateway's loopback callback with code and state)."""
    account_id = app.cli("add-oauth", "--name", "max").strip().splitlines()[-1]
    authorize = app.cli("oauth-start", "--account-id", account_id, "--no-browser").strip().splitlines()[-1]
    try:
        urllib.request.build_opener(NoRedirect).open(authorize, timeout=10)
        raise AssertionError("the authorize page did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code in (302, 303), e.code
        callback = e.headers["Location"]
    assert callback.startswith(f"{app.url}/oauth/callback?"), callback
    return account_id, callback


def wait_active_with_email(app, account_id: str) -> None:
    def active():
        status = json.loads(app.cli("status", "--json"))
        account = next(a for a in status["accounts"] if a["id"] == account_id)
        return status["source"] == "server" and account["state"] == "active" and account.get("email")
    wait_until("the account to be active in the app's gateway", active)


def test_login_callback_deep_link_completes_the_login_and_the_tokens_are_in_the_keychain(app):
    account_id, callback = authorize_redirect(app)
    query = urllib.parse.urlsplit(callback).query
    before = len(app.log())
    opened = subprocess.run(
        ["gio", "open", f"llm-gateway://oauth/callback?{query}"], env=app.env, capture_output=True, text=True,
        timeout=60,
    )
    assert opened.returncode == 0, opened.stderr
    app.wait_log(rf"login completed account={account_id}", after=before)
    app.wait_log(r"notification title=\"?Logged in", after=before)
    app.wait_log(r"window shown.*reason=\"?login completed", after=before)

    record = secret_tool_lookup(f"account:{account_id}:oauth")
    assert record and "sk-ant-oat01-mock-" in record, "the token record is in the keychain"
    wait_active_with_email(app, account_id)


def test_loopback_login_page_hands_back_to_the_app_through_the_done_link(app):
    account_id, callback = authorize_redirect(app)
    status, page = http("GET", callback)  # the browser follows the redirect to the gateway's own port
    assert status == 200, page
    done = re.search(r'href="(llm-gateway://oauth/done[^"]*)"', page.decode())
    assert done, page
    before = len(app.log())
    subprocess.run(["gio", "open", html.unescape(done.group(1))], env=app.env, check=True, timeout=60)
    app.wait_log(r"deep link: oauth/done", after=before)
    app.wait_log(r"window shown.*reason=\"?login done", after=before)
    assert secret_tool_lookup(f"account:{account_id}:oauth"), "the token record is in the keychain"
    wait_active_with_email(app, account_id)


def test_an_api_key_added_through_the_library_is_in_the_keychain_and_the_app_uses_it(app):
    out = app.cli("add-api-key", "--name", "work", env={"LLM_GATEWAY_API_KEY": "sk-ant-api03-desktop-good"})
    account_id = out.strip().splitlines()[-1]
    assert secret_tool_lookup(f"account:{account_id}:api_key") == "sk-ant-api03-desktop-good"

    def answered():
        status, body = http(
            "POST", f"{app.url}/v1/messages",
            body=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 16,
                             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
        )
        return status == 200 and json.loads(body)["type"] == "message"
    wait_until("a request through the app's gateway to succeed with the new account", answered)


def test_quit_drains_a_running_stream_then_exits_0(home, mock_upstream):
    app = start_app(home, mock_upstream)
    try:
        app.wait_log(r"gateway ready on")
        app.cli("add-api-key", "--name", "k", env={"LLM_GATEWAY_API_KEY": "sk-ant-api03-desktop-drain"})
        wait_until("the account to load", lambda: any_active(app))

        stream = SlowStream(app.url)
        app.signal(signal.SIGTERM)
        assert_quit_drains(app, stream)
    finally:
        stop_app(app)


def test_closed_window_is_hidden_then_its_webview_destroyed_and_recreated_on_open(app, artifacts):
    app.wait_log(r"window created and shown")
    wait_until("the window to be mapped", lambda: window_ids(app))
    time.sleep(1.0)  # let the page paint before the screenshot
    shot = artifacts / "desktop-window.png"
    subprocess.run(["import", "-window", "root", str(shot)], env=app.env, check=True, timeout=60)
    colours = subprocess.run(["identify", "-format", "%k", str(shot)], capture_output=True, text=True, check=True)
    assert int(colours.stdout) > 16, "the screenshot shows a rendered window, not a blank screen"

    before = len(app.log())
    subprocess.run(["wmctrl", "-c", "LLM Gateway"], env=app.env, check=True, timeout=30)
    app.wait_log(r"window hidden", after=before)
    app.wait_log(r"webview destroyed after 2 s hidden", after=before)
    app.wait_log(r"window process exited; its memory is back", after=before)
    assert not [p for p in descendants(app.proc.pid) if p[1].startswith("WebKit")], "no WebKit process is left"
    assert http("GET", f"{app.url}/health")[0] == 200, "closing the window does not stop the gateway"

    before = len(app.log())
    assert app.launch_again("llm-gateway://open").returncode == 0
    app.wait_log(r"window created and shown.*reason=\"?deep link", after=before)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def any_active(app) -> bool:
    status = json.loads(app.cli("status", "--json"))
    return status["source"] == "server" and any(a["state"] == "active" for a in status["accounts"])


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, name) of every process under `pid`."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        try:
            out.append((p, open(f"/proc/{p}/comm").read().strip()))
        except OSError:
            continue
        todo.extend(children.get(p, []))
    return out


def window_ids(app) -> list[str]:
    found = subprocess.run(["xdotool", "search", "--name", "LLM Gateway"], env=app.env, capture_output=True, text=True)
    return found.stdout.split()



def ui_sessions(app) -> int:
    """Browser sessions the gateway opened (one per sign-in code exchanged), from ui-sessions.json."""
    path = app.config.parent / "ui-sessions.json"
    return len(json.loads(path.read_text())["sessions"]) if path.exists() else 0


def test_each_window_process_opens_the_ui_signed_in_with_a_code_of_its_own(app):
    app.wait_log(r"window created and shown")
    wait_until("the window to sign in", lambda: ui_sessions(app) == 1)
    # The code never reaches the log.
    assert "#code=" not in app.log()

    before = len(app.log())
    subprocess.run(["wmctrl", "-c", "LLM Gateway"], env=app.env, check=True, timeout=30)
    app.wait_log(r"window process exited; its memory is back", after=before)
    assert app.launch_again("llm-gateway://open").returncode == 0
    app.wait_log(r"window created and shown.*reason=\"?deep link", after=before)
    wait_until("the new window process to sign in with a new code", lambda: ui_sessions(app) == 2)
