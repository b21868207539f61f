"""`llm-gateway claude-code setup|restore` with the real Claude Code CLI in a temporary HOME: after setup, a plain
`claude -p` (no ANTHROPIC_* variables) reaches the mock through the gateway; restore gives the settings file back
byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ACCOUNT_KEY, _free_port, _http
from test_claude_code import CLI_TIMEOUT_S, MOCK_ANSWER, claude_bin  # noqa: F401 (fixture)

# A user's settings file with what the best-known switcher used to wipe: hooks, enabled plugins, a status line,
# permissions and env keys of its own. Uneven formatting on purpose: restore must give these exact bytes back.
# `x-mock-tools: none` makes the mock answer in plain text (see test_claude_code.py).
ORIGINAL_SETTINGS = """{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "env": {
    "ANTHROPIC_CUSTOM_HEADERS": "x-mock-tools: none",
    "BASH_DEFAULT_TIMEOUT_MS": "60000",
    "MY_TEAM_FLAG":   "on"
  },
  "permissions": { "allow": ["Bash(git status)", "Read(~/notes/**)"], "deny": ["Read(./.env)"] },
  "hooks": {
    "PreToolUse": [
      {"matcher": "Bash", "hooks": [{"type": "command", "command": "true"}]}
    ]
  },
  "enabledPlugins": {"formatter@acme-tools": false},
  "statusLine": {"type": "command", "command": "echo status", "padding": 0},
  "cleanupPeriodDays": 45
}
"""


def _claude_env(home: Path, claude: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(claude).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_MAX_RETRIES": "2",
    }
    env.update(extra)
    return env


def _gateway_cli(gw_bin: str, config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [gw_bin, "--config", str(config), *args],
        env=env,
        cwd=env["HOME"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ok(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res.stdout


def _cli_env(base: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    """The gateway's CLI environment (secrets passphrase etc.) with Claude Code's HOME and no ANTHROPIC_*."""
    env = {k: v for k, v in base.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def _say_hi(claude: str, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="cc-cwd.") as cwd:
        try:
            res = subprocess.run(
                [claude, "-p", "say hi", "--output-format", "json"],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"claude -p did not finish in {CLI_TIMEOUT_S}s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    assert res.returncode == 0, f"claude exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return json.loads(res.stdout)


@pytest.fixture
def cc_home(tmp_path) -> Path:
    home = tmp_path / "cc-home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(ORIGINAL_SETTINGS)
    return home


def _upstream_saw_only_the_account_key(mock, secrets: list[str]) -> None:
    posts = mock.requests_to("POST", "/v1/messages")
    assert posts, "no request reached the mock upstream"
    for req in posts:
        assert req.header_all("x-api-key") == [ACCOUNT_KEY] or req.header_all("authorization") == [
            f"Bearer {ACCOUNT_KEY}"
        ], f"upstream credentials: {req.headers}"
    leaked = [(n, v) for r in mock.requests() for n, v in r.headers for s in secrets if s in v]
    assert not leaked, f"a gateway key or client token reached the upstream: {leaked}"


def test_setup_makes_plain_claude_use_the_gateway_through_api_key_helper_and_restore_is_exact(
    claude_bin, fresh_gateway, mock, cc_home
):
    gw = fresh_gateway
    gw_bin = gw.env["LLM_GATEWAY_BIN"]
    cli_env = _cli_env(gw.env, cc_home)

    report = json.loads(_ok(_gateway_cli(gw_bin, gw.config_path, cli_env, "claude-code", "setup", "--json")))

    assert report["mode"] == "api_key_helper", report
    assert report["status"]["uses_gateway"] is True, report["status"]["findings"]
    settings = json.loads((cc_home / ".claude" / "settings.json").read_text())
    assert settings["env"]["ANTHROPIC_BASE_URL"] == gw.url
    assert settings["apiKeyHelper"].endswith("claude-code api-key")
    for key in ("hooks", "enabledPlugins", "statusLine", "permissions", "cleanupPeriodDays"):
        assert settings[key] == json.loads(ORIGINAL_SETTINGS)[key], key
    dedicated = _ok(_gateway_cli(gw_bin, gw.config_path, cli_env, "claude-code", "api-key")).strip()
    assert dedicated.startswith("lgw-") and dedicated != gw.client_key
    assert dedicated not in (cc_home / ".claude" / "settings.json").read_text(), "no key in the settings file"

    # A new terminal: nothing but HOME (and the gateway's secrets passphrase, which the helper needs to read the
    # key, as the user's shell would have it).
    result = _say_hi(claude_bin, _claude_env(cc_home, claude_bin, LLM_GATEWAY_MASTER_KEY=gw.env["LLM_GATEWAY_MASTER_KEY"]))

    assert result.get("is_error") is False, result
    assert MOCK_ANSWER in result["result"], result
    _upstream_saw_only_the_account_key(mock, [dedicated])

    out = _ok(_gateway_cli(gw_bin, gw.config_path, cli_env, "claude-code", "restore"))
    assert "byte for byte" in out, out
    assert (cc_home / ".claude" / "settings.json").read_text() == ORIGINAL_SETTINGS


def test_setup_with_claude_code_s_own_token_sends_the_dedicated_key_beside_it(claude_bin, fresh_gateway, mock, cc_home):
    gw = fresh_gateway
    gw_bin = gw.env["LLM_GATEWAY_BIN"]
    oauth_token = "sk-ant-oat01-test-own-login-token"
    cli_env = _cli_env(gw.env, cc_home, CLAUDE_CODE_OAUTH_TOKEN=oauth_token)
    # The upstream knows this user's login (the mock accepts only the tokens it is told about once any is listed).
    status, _ = _http("POST", f"{mock.url}/_mock/oauth/config", body=json.dumps({"accept_tokens": [oauth_token]}).encode())
    assert status in (200, 204)

    report = json.loads(_ok(_gateway_cli(gw_bin, gw.config_path, cli_env, "claude-code", "setup", "--json")))

    # The gateway has a general client key, so the dedicated key goes in a custom header beside the login.
    assert report["mode"] == "own_login_with_key", report
    settings = json.loads((cc_home / ".claude" / "settings.json").read_text())
    assert "apiKeyHelper" not in settings
    dedicated = _ok(_gateway_cli(gw_bin, gw.config_path, cli_env, "claude-code", "api-key")).strip()
    assert settings["env"]["ANTHROPIC_CUSTOM_HEADERS"] == f"x-mock-tools: none\nx-llm-gateway-key: {dedicated}"

    result = _say_hi(claude_bin, _claude_env(cc_home, claude_bin, CLAUDE_CODE_OAUTH_TOKEN=oauth_token))

    assert result.get("is_error") is False, result
    assert MOCK_ANSWER in result["result"], result
    # The gateway forwards Claude Code's own login (subscriptions.own_login: forward, issue 13), never its key.
    posts = mock.requests_to("POST", "/v1/messages")
    assert posts and all(r.header_all("authorization") == [f"Bearer {oauth_token}"] for r in posts), posts
    assert all(r.header_all("x-api-key") == [] for r in posts), "no stored account's key beside it"
    leaked = [(n, v) for r in mock.requests() for n, v in r.headers if dedicated in v]
    assert not leaked, f"the gateway key reached the upstream: {leaked}"

    _ok(_gateway_cli(gw_bin, gw.config_path, cli_env, "claude-code", "restore"))
    assert (cc_home / ".claude" / "settings.json").read_text() == ORIGINAL_SETTINGS


def test_a_claude_ai_login_gets_only_the_base_url_until_the_gateway_needs_keys(tmp_path, cc_home):
    gw_bin = os.environ["LLM_GATEWAY_BIN"]
    port = _free_port()
    config = tmp_path / "gateway" / "config.yaml"
    config.parent.mkdir()
    config.write_text(f"server: {{listen: 0.0.0.0:{port}}}\nsecrets: {{backend: file}}\n")
    # Presence only: setup looks at whether the credentials file exists, never inside it.
    (cc_home / ".claude" / ".credentials.json").write_text("not even JSON: never read")
    env = _cli_env({k: v for k, v in os.environ.items() if not k.startswith("LLM_GATEWAY_")}, cc_home)

    report = json.loads(_ok(_gateway_cli(gw_bin, config, env, "claude-code", "setup", "--json")))

    assert report["mode"] == "own_login", report
    assert [c["key"] for c in report["changes"]] == ["env.ANTHROPIC_BASE_URL"]
    settings = json.loads((cc_home / ".claude" / "settings.json").read_text())
    assert settings["env"]["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}", "a wildcard listen maps to loopback"
    assert settings["env"]["ANTHROPIC_CUSTOM_HEADERS"] == "x-mock-tools: none"
    assert "apiKeyHelper" not in settings

    _ok(_gateway_cli(gw_bin, config, env, "add-client-key", "--name", "laptop"))
    report = json.loads(_ok(_gateway_cli(gw_bin, config, env, "claude-code", "setup", "--json")))

    assert report["mode"] == "own_login_with_key", report
    settings = json.loads((cc_home / ".claude" / "settings.json").read_text())
    assert settings["env"]["ANTHROPIC_CUSTOM_HEADERS"].startswith("x-mock-tools: none\nx-llm-gateway-key: lgw-")
    _ok(_gateway_cli(gw_bin, config, env, "claude-code", "restore"))
    assert (cc_home / ".claude" / "settings.json").read_text() == ORIGINAL_SETTINGS
