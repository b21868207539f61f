"""Fixtures for the real-client suites: the mock Anthropic upstream and the real gateway binary in front of it.

The binaries come from the environment (scripts/test.sh sets both after `cargo build --workspace`):
  LLM_GATEWAY_BIN    path to the `llm-gateway` binary
  MOCK_UPSTREAM_BIN  path to the `mock-upstream` binary

One mock upstream serves the whole session. One gateway (`gateway`) with one API-key account and one client key
serves the tests that leave the account healthy; tests whose upstream errors may put the account into cooldown use
`fresh_gateway`, a gateway of their own, so no test depends on another's leftovers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ACCOUNT_KEY = "sk-ant-api03-good-xyz"
MASTER_KEY = "test-master-key"
STARTUP_TIMEOUT_S = 15.0


def _binary(env_var: str) -> str:
    path = os.environ.get(env_var)
    if not path:
        pytest.exit(f"{env_var} is not set; run the suites through `bash scripts/test.sh`", returncode=2)
    if not os.access(path, os.X_OK):
        pytest.exit(f"{env_var}={path} is not an executable file; build it with `cargo build --workspace`", returncode=2)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, timeout: float = 5.0, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method, data=body)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _tail(path: Path, max_chars: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text if len(text) <= max_chars else "…" + text[-max_chars:]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class RecordedRequest:
    """One request as the mock upstream received it."""

    method: str
    path: str
    query: str | None
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def json(self):
        return json.loads(self.body)


@dataclass
class MockUpstream:
    url: str
    proc: subprocess.Popen
    stderr_path: Path

    def requests(self) -> list[RecordedRequest]:
        """Everything the mock received since the last `clear()` (its control routes excluded)."""
        status, body = _http("GET", f"{self.url}/_mock/requests")
        assert status == 200, f"GET /_mock/requests -> {status}: {body[:500]!r}"
        return [
            RecordedRequest(r["method"], r["path"], r.get("query"), [tuple(h) for h in r["headers"]], r["body"])
            for r in json.loads(body)
        ]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests() if r.method == method and r.path == path]

    def clear(self) -> None:
        status, body = _http("DELETE", f"{self.url}/_mock/requests")
        assert status in (200, 204), f"DELETE /_mock/requests -> {status}: {body[:500]!r}"

    def enqueue(self, script: dict) -> None:
        """Scripts the mock's reply to the next `/v1/messages*` request (see `Scripted` in the mock's state.rs),
        e.g. `{"kind": "response", "status": 529, "body": "…"}` or `{"kind": "stream", "events": […], "cut_after": 3}`."""
        status, body = _http("POST", f"{self.url}/_mock/enqueue", body=json.dumps(script).encode())
        assert status in (200, 204), f"POST /_mock/enqueue -> {status}: {body[:500]!r}"


@dataclass
class Gateway:
    url: str
    client_key: str
    account_id: str
    config_path: Path
    workdir: Path
    proc: subprocess.Popen
    stderr_path: Path
    mock: MockUpstream
    env: dict[str, str] = field(repr=False)


def _start_mock(workdir: Path) -> MockUpstream:
    stderr_path = workdir / "mock-upstream.stderr.log"
    proc = subprocess.Popen(
        [_binary("MOCK_UPSTREAM_BIN"), "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_path.open("wb"),
        text=True,
    )
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_S)
    line = first_line[0].strip() if first_line else ""
    prefix = "listening on "
    if not line.startswith(prefix):
        _stop(proc)
        raise RuntimeError(
            f"mock upstream did not announce its address (first stdout line {line!r}); "
            f"stderr:\n{_tail(stderr_path)}"
        )
    # Keep draining stdout so a chatty mock never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return MockUpstream(url=line[len(prefix):].rstrip("/"), proc=proc, stderr_path=stderr_path)


def _run_cli(gw_bin: str, config: Path, env: dict[str, str], *args: str) -> str:
    """Runs a management command; returns its stdout's last non-empty line (the new id or key, per design §3)."""
    cmd = [gw_bin, "--config", str(config), *args]
    res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed nothing on stdout\nstderr:\n{res.stderr}")
    return lines[-1]


def start_gateway(mock: MockUpstream, workdir: Path) -> Gateway:
    """Configures a gateway in `workdir` (one API-key account, one client key) and starts its server."""
    gw_bin = _binary("LLM_GATEWAY_BIN")
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = workdir / "config.yaml"
    config.write_text(
        f"server: {{listen: 127.0.0.1:{port}}}\n"
        f"upstream: {{base_url: {mock.url}}}\n"
        "secrets: {backend: file}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_GATEWAY_", "ANTHROPIC_", "OPENAI_"))}
    env.update(
        LLM_GATEWAY_MASTER_KEY=MASTER_KEY,
        LLM_GATEWAY_BIN=gw_bin,
        HOME=str(workdir),
        XDG_CONFIG_HOME=str(workdir / "xdg-config"),
        XDG_DATA_HOME=str(workdir / "xdg-data"),
        NO_PROXY="127.0.0.1,localhost",
    )
    env.setdefault("RUST_LOG", "info")
    env["NO_COLOR"] = "1"  # logs go to files
    account_id = _run_cli(gw_bin, config, env, "add-api-key", "--key", ACCOUNT_KEY, "--name", "primary")
    client_key = _run_cli(gw_bin, config, env, "add-client-key", "--name", "tests")

    stderr_path = workdir / "gateway.stderr.log"
    proc = subprocess.Popen(
        [gw_bin, "--config", str(config), "server"],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=(workdir / "gateway.stdout.log").open("wb"),
        stderr=stderr_path.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode} during startup; stderr:\n{_tail(stderr_path)}")
        try:
            status, body = _http("GET", f"{url}/health", timeout=1.0)
            if status == 200:
                break
            last = f"{status} {body[:200]!r}"
        except OSError as e:
            last = repr(e)
        if time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(
                f"gateway not healthy within {STARTUP_TIMEOUT_S}s (last /health: {last}); stderr:\n{_tail(stderr_path)}"
            )
        time.sleep(0.05)
    return Gateway(url, client_key, account_id, config, workdir, proc, stderr_path, mock, env)


# Logs of the processes a failing test talked to, attached to its report.
_LOGS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def session_dir():
    path = Path(tempfile.mkdtemp(prefix="llm-gateway-clients."))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def mock_upstream(session_dir) -> MockUpstream:
    mock = _start_mock(session_dir)
    _LOGS["mock upstream stderr"] = mock.stderr_path
    yield mock
    _stop(mock.proc)


@pytest.fixture(scope="session")
def gateway(mock_upstream, session_dir) -> Gateway:
    """The shared gateway: one healthy API-key account (ACCOUNT_KEY) and one client key."""
    gw = start_gateway(mock_upstream, session_dir / "gateway")
    _LOGS["gateway stderr"] = gw.stderr_path
    yield gw
    _stop(gw.proc)


@pytest.fixture
def fresh_gateway(mock_upstream, tmp_path) -> Gateway:
    """A gateway of this test's own, for tests whose upstream errors may bench the account."""
    gw = start_gateway(mock_upstream, tmp_path / "gateway")
    _LOGS["fresh gateway stderr"] = gw.stderr_path
    yield gw
    _stop(gw.proc)
    _LOGS.pop("fresh gateway stderr", None)


@pytest.fixture
def mock(mock_upstream) -> MockUpstream:
    """The mock upstream with its recording cleared at the start of the test."""
    mock_upstream.clear()
    return mock_upstream


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        for name, path in _LOGS.items():
            report.sections.append((name, _tail(path)))
    return report
