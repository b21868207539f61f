"""Subscriptions done right (issue #13) with real clients: the real Claude Code CLI on its own claude.ai login passed
through the gateway (never stored, never logged), `subscriptions.own_login: refuse`, the loopback case with no client
keys, and each client's classification — Claude Code, the `anthropic` SDK, the `openai` SDK — including the 503 an
`openai` request gets when only a subscription account (reserved for Claude Code) exists, and `clients: any`."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import anthropic
import openai
import pytest

from conftest import _run_cli, _stop, start_gateway
from test_claude_code import CLI_TIMEOUT_S, MOCK_ANSWER, claude_bin  # noqa: F401 (fixture)

OWN_TOKEN = "sk-ant-oat01-own-login-of-the-cli-user-5f3e2d1c0b9a"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


def _request(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _admin(gw, method: str, path: str, body: dict | None = None) -> dict:
    token = json.loads((gw.config_path.parent / "runtime.json").read_text())["admin_token"]
    status, answer = _request(method, f"{gw.url}/admin/api/v1{path}", token, body)
    assert status == 200, f"{method} {path} -> {status}: {answer}"
    return answer


def _status(gw) -> dict:
    return _admin(gw, "GET", "/status")


def _eventually(what: str, check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        time.sleep(0.1)


def _accept_token(mock, token: str) -> None:
    """The mock accepts `token` as a user's own claude.ai login (and, from then on, only listed ones)."""
    status, _ = _request("POST", f"{mock.url}/_mock/oauth/config", body={"accept_tokens": [token]})
    assert status in (200, 204)


def _claude(claude_bin: str, base_url: str, extra_headers: str = "", **env_extra: str) -> subprocess.CompletedProcess:
    """`claude -p "say hi"` on its own login (CLAUDE_CODE_OAUTH_TOKEN) with only ANTHROPIC_BASE_URL pointing at
    `base_url` and optional extra custom headers (the gateway key)."""
    with tempfile.TemporaryDirectory(prefix="cc-home.") as home, tempfile.TemporaryDirectory(prefix="cc-cwd.") as cwd:
        headers = "x-mock-tools: none" + (f"\n{extra_headers}" if extra_headers else "")
        env = {
            "PATH": f"{Path(claude_bin).parent}:/usr/bin:/bin",
            "HOME": home,
            "ANTHROPIC_BASE_URL": base_url,
            "CLAUDE_CODE_OAUTH_TOKEN": OWN_TOKEN,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "ANTHROPIC_CUSTOM_HEADERS": headers,
            **env_extra,
        }
        try:
            return subprocess.run(
                [claude_bin, "-p", "say hi", "--output-format", "json"],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"claude did not finish in {CLI_TIMEOUT_S}s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")


def _said_hi(res: subprocess.CompletedProcess) -> dict:
    assert res.returncode == 0, f"claude exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    result = json.loads(res.stdout)
    assert result.get("is_error") is False, result
    assert MOCK_ANSWER in result["result"], result
    return result


def _streamed_posts(mock):
    return [r for r in mock.requests_to("POST", "/v1/messages") if r.json().get("stream") is True]


@pytest.fixture
def debug_gateway(mock_upstream, tmp_path, monkeypatch):
    """A gateway of this test's own (one API-key account, one client key) logging at debug level to its stderr."""
    monkeypatch.setenv("RUST_LOG", "debug")
    gw = start_gateway(mock_upstream, tmp_path / "gateway")
    yield gw
    _stop(gw.proc)


def test_claude_code_on_its_own_login_reaches_the_upstream_with_exactly_its_token_and_betas(
    claude_bin, debug_gateway, mock  # noqa: F811
):
    gw = debug_gateway
    _accept_token(mock, OWN_TOKEN)
    # What the CLI sends on its own, straight to the upstream.
    _said_hi(_claude(claude_bin, mock.url))
    [direct] = _streamed_posts(mock)[-1:]
    mock.clear()

    _said_hi(_claude(claude_bin, gw.url, f"x-llm-gateway-key: {gw.client_key}"))

    posts = mock.requests_to("POST", "/v1/messages")
    assert posts, "nothing reached the upstream"
    for req in posts:
        assert req.header_all("authorization") == [f"Bearer {OWN_TOKEN}"], req.headers
        assert req.header_all("x-api-key") == [], "no stored account's key"
        assert req.header_all("x-llm-gateway-key") == [], "the gateway key never leaves"
    [proxied] = _streamed_posts(mock)[-1:]
    assert proxied.header_all("anthropic-beta") == direct.header_all("anthropic-beta"), "exactly the CLI's betas"
    assert "oauth-2025-04-20" in proxied.header("anthropic-beta")
    # The system prompt holds the (random) working directory, so compare its shape: no block added (no identity).
    proxied_system, direct_system = proxied.json()["system"], direct.json()["system"]
    assert len(proxied_system) == len(direct_system), "no identity or anything else added"
    identities = [sum(IDENTITY in b.get("text", "") for b in s) for s in (proxied_system, direct_system)]
    assert identities[0] == identities[1], identities

    status = _status(gw)
    assert status["accounts"][0]["requests"] == 0, "no stored account was used"
    [own] = status["own_logins"]
    assert own["name"].startswith("Claude Code login ·") and own["id"].startswith("own:"), own
    assert own["requests"] == len(posts) and own["state"] == "active", own
    assert status["clients_seen"]["claude_code"] >= len(posts), status["clients_seen"]

    _stop(gw.proc)  # the usage store written, the log complete
    leaks = []
    for path in gw.workdir.rglob("*"):
        if path.is_file() and OWN_TOKEN.encode() in path.read_bytes():
            leaks.append(str(path))
    assert not leaks, f"the token is in {leaks}"
    log = gw.stderr_path.read_text()
    assert "DEBUG" in log, "debug logging was on"
    assert OWN_TOKEN[:24] not in log, "no log line holds the token (or its start)"


def test_claude_code_with_only_the_base_url_works_on_its_login_when_the_gateway_has_no_keys(
    claude_bin, fresh_gateway, mock  # noqa: F811
):
    gw = fresh_gateway
    _accept_token(mock, OWN_TOKEN)
    _run_cli(gw.env["LLM_GATEWAY_BIN"], gw.config_path, gw.env, "remove-client-key", "--name", "tests")
    _eventually("the gateway open on loopback", lambda: _status(gw)["client_keys"] == 0)

    _said_hi(_claude(claude_bin, gw.url))

    posts = mock.requests_to("POST", "/v1/messages")
    assert posts and all(r.header_all("authorization") == [f"Bearer {OWN_TOKEN}"] for r in posts)
    assert _status(gw)["accounts"][0]["requests"] == 0


def test_own_login_refuse_tells_claude_code_how_to_use_a_gateway_key(claude_bin, fresh_gateway, mock):  # noqa: F811
    gw = fresh_gateway
    _admin(gw, "PATCH", "/config", {"subscriptions": {"own_login": "refuse"}})

    res = _claude(claude_bin, gw.url, f"x-llm-gateway-key: {gw.client_key}")

    assert mock.requests_to("POST", "/v1/messages") == [], "nothing forwarded"
    out = res.stdout + res.stderr
    assert "401" in out and "own_login: refuse" in out, out
    assert "llm-gateway claude-code setup" in out, out


# ---- classification and the clients rule, with the SDKs ----


def test_the_anthropic_and_openai_sdks_are_told_apart_from_claude_code(fresh_gateway, mock):
    gw = fresh_gateway
    anthropic.Anthropic(base_url=gw.url, api_key=gw.client_key, max_retries=0).messages.create(
        model="claude-sonnet-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.client_key, max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    seen = _status(gw)["clients_seen"]
    assert seen == {"claude_code": 0, "anthropic_sdk": 1, "openai": 2, "other": 0}, seen

    def logged():
        page = _admin(gw, "GET", "/requests?limit=10")["requests"]
        return page if len(page) == 3 else None

    kinds = sorted(r["client_kind"] for r in _eventually("3 requests recorded", logged))
    assert kinds == ["anthropic_sdk", "openai", "openai"], kinds


def _only_a_subscription_account(gw, mock) -> str:
    """Replaces the gateway's API-key account with a subscription account `max` logged in through the mock."""
    gw_bin, env = gw.env["LLM_GATEWAY_BIN"], gw.env
    _admin(gw, "PATCH", "/config", {"oauth": {"token_url": f"{mock.url}/v1/oauth/token",
                                                "authorize_url": f"{mock.url}/oauth/authorize"}})
    _run_cli(gw_bin, gw.config_path, env, "remove-account", "--account-id", gw.account_id)
    account = _run_cli(gw_bin, gw.config_path, env, "add-oauth", "--name", "max")
    # The login through the running gateway (in force when it answers), approved on the mock's authorize page.
    url = _admin(gw, "POST", f"/accounts/{account}/login", {"redirect": "manual"})["url"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    approval = {k: query[k] for k in ("client_id", "code_challenge", "redirect_uri", "state")}
    status, issued = _request("POST", f"{mock.url}/_mock/oauth/authorize", body=approval)
    assert status == 200, issued
    _admin(gw, "POST", f"/accounts/{account}/login/complete", {"code": f"{issued['code']}#{query['state']}"})
    assert [a["state"] for a in _status(gw)["accounts"]] == ["active"]
    return account


def test_an_openai_request_with_only_a_subscription_account_gets_the_explanatory_503_until_clients_any(
    fresh_gateway, mock
):
    gw = fresh_gateway
    account = _only_a_subscription_account(gw, mock)
    mock.clear()
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.client_key, max_retries=0)

    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
        )
    assert refused.value.status_code == 503
    message = refused.value.body["message"] if isinstance(refused.value.body, dict) else str(refused.value.body)
    assert "serves Claude Code only" in message and "`clients: any`" in message, message
    assert "Anthropic's terms" in message, message
    assert mock.requests_to("POST", "/v1/messages") == [], "the subscription was not used"

    _admin(gw, "PATCH", f"/accounts/{account}", {"clients": "any"})
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    )

    assert answer.choices[0].message.content == MOCK_ANSWER
    [sent] = mock.requests_to("POST", "/v1/messages")
    system = sent.json()["system"]
    assert [b["text"] for b in system].count(IDENTITY) == 1, system
    assert system[0]["text"] == IDENTITY and system[1]["text"] == "Be brief.", system
    assert sent.header("authorization").startswith("Bearer sk-ant-oat01-mock-")
    assert _status(gw)["clients_seen"]["openai"] == 2


# ---- the plan limit with the real CLI: no endless retries, no silent extra usage, spill-over when allowed ----


def test_claude_code_at_its_plans_limit_stops_at_once_and_spills_over_to_an_api_key_when_allowed(
    claude_bin, debug_gateway, mock  # noqa: F811
):
    gw = debug_gateway
    _accept_token(mock, OWN_TOKEN)
    reset = int(time.time()) + 3600
    status, _ = _request(
        "POST", f"{mock.url}/_mock/plan", body={"token": OWN_TOKEN, "mode": "exhausted", "five_hour_reset": reset}
    )
    assert status in (200, 204)
    key_header = f"x-llm-gateway-key: {gw.client_key}"

    def own_login_posts():
        return [r for r in mock.requests_to("POST", "/v1/messages") if r.header("authorization") == f"Bearer {OWN_TOKEN}"]

    # With the CLI's default retries: the 429 says not to retry (the reset is an hour away), so it stops at once.
    started = time.monotonic()
    res = _claude(claude_bin, gw.url, key_header, CLAUDE_CODE_MAX_RETRIES="10")
    took = time.monotonic() - started
    assert res.returncode != 0, res.stdout
    assert took < 60, f"claude took {took:.0f}s: it kept retrying"
    sent = len(own_login_posts())
    assert sent >= 1
    [own] = _status(gw)["own_logins"]
    assert own["state"] == "cooling_down", own

    # While the login is benched nothing more goes upstream with it.
    res = _claude(claude_bin, gw.url, key_header, CLAUDE_CODE_MAX_RETRIES="10")
    assert res.returncode != 0
    assert len(own_login_posts()) == sent, "the benched login was sent again"
    assert mock.requests_to("POST", "/v1/messages")[-1].header("x-api-key") is None, "no API key stood in"

    # routing.spillover: api_keys — the gateway's API-key account answers, without the user's login.
    _admin(gw, "PATCH", "/config", {"routing": {"spillover": "api_keys"}})
    mock.clear()
    _said_hi(_claude(claude_bin, gw.url, key_header))
    posts = mock.requests_to("POST", "/v1/messages")
    assert posts and all(r.header("authorization") is None and r.header("x-api-key") for r in posts), [
        r.headers for r in posts
    ]
    assert all("oauth-2025-04-20" not in (r.header("anthropic-beta") or "") for r in posts)
    assert _status(gw)["accounts"][0]["requests"] == len(posts)
