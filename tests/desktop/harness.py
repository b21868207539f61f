"""Running llm-gateway-desktop in tests and benchmarks: a fresh HOME per app, a config pointing the gateway and
its OAuth endpoints at the mock upstream, log lines to wait for, the CLI on the same config and keychain.

Binaries come from the environment (tests/desktop/run.sh and bench/desktop.sh set them): DESKTOP_BIN,
LLM_GATEWAY_BIN, MOCK_UPSTREAM_BIN.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEADLINE_S = 30.0


def binary(name: str) -> str:
    path = os.environ.get(name)
    if not path or not os.access(path, os.X_OK):
        raise SystemExit(f"{name} is not set to an executable; run tests/desktop/run.sh")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0):
    request = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(what: str, check, deadline_s: float = DEADLINE_S, every_s: float = 0.05):
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every_s)


@dataclass
class App:
    """A running llm-gateway-desktop with its own HOME."""

    proc: subprocess.Popen
    home: Path
    env: dict
    config: Path
    log_path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, deadline_s: float = DEADLINE_S, after: int = 0) -> re.Match:
        """Waits for a log line matching `pattern` (a regex) past offset `after`."""
        def find():
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited ({self.proc.returncode}) before logging {pattern!r}:\n{self.log()}")
            return re.search(pattern, self.log()[after:])
        try:
            return wait_until(f"log line {pattern!r}", find, deadline_s)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- app log ---\n{self.log()[-6000:]}") from None

    def cli(self, *args: str, env: dict | None = None) -> str:
        """Runs the llm-gateway CLI on the app's config (and keychain); returns stdout."""
        result = subprocess.run(
            [binary("LLM_GATEWAY_BIN"), "--config", str(self.config), *args],
            env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, f"llm-gateway {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    def launch_again(self, *args: str) -> subprocess.CompletedProcess:
        """A second launch of the app, as a user or the OS would do it."""
        return subprocess.run(
            [binary("DESKTOP_BIN"), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)


def app_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_GATEWAY_", "XDG_CONFIG", "XDG_DATA", "XDG_CACHE"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        RUST_LOG="info",
        LLM_GATEWAY_DESKTOP_WEBVIEW_TTL_SECS="2",
    )
    return env


def write_config(path: Path, port: int, mock: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""server:
  listen: 127.0.0.1:{port}
  shutdown_grace_secs: 20
upstream:
  base_url: {mock}
oauth:
  authorize_url: {mock}/oauth/authorize
  token_url: {mock}/v1/oauth/token
  redirect_uri: http://127.0.0.1:{port}/oauth/callback
"""
    )


def start_app(home: Path, mock: str, *args: str, port: int | None = None, env: dict | None = None) -> App:
    port = port or free_port()
    env = {**app_env(home), **(env or {})}
    config = home / ".config/llm-gateway/config.yaml"
    if not config.exists():
        write_config(config, port, mock)
    log_path = home / "app.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen([binary("DESKTOP_BIN"), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return App(proc=proc, home=home, env=env, config=config, log_path=log_path, port=port)


def stop_app(app: App) -> int:
    if app.proc.poll() is None:
        app.proc.send_signal(signal.SIGTERM)
        try:
            app.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.proc.kill()
            app.proc.wait(timeout=10)
    return app.proc.returncode


def runtime_info(app: App) -> dict:
    return json.loads((app.config.parent / "runtime.json").read_text())


def secret_tool_lookup(username: str) -> str | None:
    """The keychain entry the gateway stores under service `llm-gateway` for `username`, or None."""
    result = subprocess.run(
        ["secret-tool", "lookup", "service", "llm-gateway", "username", username],
        capture_output=True, text=True, timeout=30,
    )
    return result.stdout if result.returncode == 0 and result.stdout else None


def recording_browser(home: Path) -> tuple[dict, Path]:
    """An `xdg-open` (the first launcher the app tries) that records the URL it is asked to open instead of opening
    it: returns the environment to start the app with and the file the URLs land in, one per line."""
    bin_dir, record = home / "fake-bin", home / "opened-urls.txt"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "xdg-open"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{record}"\n')
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}, record


def http_refused(url: str) -> bool:
    """Whether the gateway at `url` refuses connections (its listener is closed)."""
    try:
        urllib.request.urlopen(f"{url}/health", timeout=2)
        return False
    except urllib.error.URLError as e:
        return isinstance(e.reason, ConnectionRefusedError)
    except OSError:
        return True


class SlowStream:
    """A streamed Messages request on its own thread whose events the mock spaces 300 ms apart (about 2 s in all),
    collected as they arrive: long enough to be in flight when the app is told to quit."""

    def __init__(self, url: str):
        self.events: list[bytes] = []
        self.done = threading.Event()
        self._url = url
        threading.Thread(target=self._read, daemon=True).start()
        wait_until("the stream to start", lambda: any(b"message_start" in e for e in self.events))

    def _read(self) -> None:
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                           "messages": [{"role": "user", "content": "count"}]}).encode()
        request = urllib.request.Request(
            f"{self._url}/v1/messages", data=body, method="POST",
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01",
                     "x-mock-event-interval-ms": "300", "x-mock-text": "one two three four five six seven"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            for line in response:
                self.events.append(line)
        self.done.set()


def assert_quit_drains(app, stream: SlowStream) -> None:
    """After Quit began: the listener closes while `stream` still runs, it runs to its end, and the app exits 0."""
    app.wait_log(r"quit: draining in-flight requests")
    # New connections are refused while the stream finishes.
    wait_until("the listener to close", lambda: http_refused(app.url))
    assert not stream.done.is_set(), "the stream was still running when Quit began"
    assert app.proc.wait(timeout=60) == 0
    assert stream.done.wait(5), "the stream ended"
    assert any(b"message_stop" in e for e in stream.events), "the stream ran to its end before the app exited"
    assert "gateway stopped; exiting" in app.log()

