"""Fixtures for the desktop app tests. Run them through tests/desktop/run.sh, which provides the display (Xvfb with
a window manager), the D-Bus session with an unlocked gnome-keyring, and these variables:

  DESKTOP_BIN        the llm-gateway-desktop binary (the tray app)
  DESKTOP_WINDOW_BIN its window program, llm-gateway-desktop-window (WebDriver starts it directly)
  LLM_GATEWAY_BIN    the llm-gateway CLI (manages the same config and keychain as the app)
  MOCK_UPSTREAM_BIN  the mock of Anthropic's API
  ARTIFACTS_DIR      where screenshots go

Each test gets its own app: a fresh HOME (config, autostart and link-handler files land there) with a config that
points the gateway and its OAuth endpoints at the mock. The keychain is the session's gnome-keyring; tests use
fresh account ids, so entries never collide.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import binary, start_app, stop_app


@pytest.fixture(scope="session")
def mock_upstream():
    proc = subprocess.Popen(
        [binary("MOCK_UPSTREAM_BIN"), "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    assert match, f"mock-upstream said {line!r}"
    yield match.group(1)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def home():
    # WebKit helper processes may still be writing caches for a moment after the app exits.
    with tempfile.TemporaryDirectory(prefix="llm-gateway-desktop-", ignore_cleanup_errors=True) as d:
        yield Path(d)


@pytest.fixture
def app(home, mock_upstream):
    """The app, started normally (window shown), with its gateway ready."""
    running = start_app(home, mock_upstream)
    try:
        running.wait_log(r"gateway ready on http://127\.0\.0\.1:\d+")
        yield running
    finally:
        stop_app(running)


@pytest.fixture
def artifacts() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR") or tempfile.mkdtemp(prefix="llm-gateway-desktop-artifacts-"))
    path.mkdir(parents=True, exist_ok=True)
    return path
