"""A small W3C WebDriver client (the few commands the desktop tests need, over urllib: no Selenium to install) and
`tauri-driver` started for one test.

tauri-driver (`cargo install tauri-driver --version ^2 --locked`) is a WebDriver intermediary: it starts Debian's
`WebKitWebDriver` (package `webkit2gtk-driver`) and turns a session's `tauri:options` (`application`, `args`) into
WebKitGTK's browser options, so WebKitWebDriver launches the application and drives its webview. The application
must allow automation: Tauri does when `TAURI_WEBVIEW_AUTOMATION=true` is in its environment (inherited through
both drivers).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness import free_port, wait_until

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier


class WebDriverError(AssertionError):
    pass


def tauri_driver_bin() -> str:
    path = os.environ.get("TAURI_DRIVER_BIN") or "/var/tmp/llm-gateway-desktop-tools/bin/tauri-driver"
    if not os.access(path, os.X_OK):
        raise SystemExit(f"tauri-driver not found at {path}; run tests/desktop/run.sh (it installs it)")
    return path


class TauriDriver:
    """tauri-driver (and through it WebKitWebDriver) on free ports, logging to `log_path`."""

    def __init__(self, env: dict, log_path: Path):
        self.port, native = free_port(), free_port()
        self.log_path = log_path
        log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [tauri_driver_bin(), "--port", str(self.port), "--native-port", str(native)],
            env={**env, "TAURI_WEBVIEW_AUTOMATION": "true"}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        wait_until("tauri-driver to listen", self._listening, deadline_s=30)
        self.url = f"http://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"tauri-driver exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)


class Session:
    """One WebDriver session."""

    def __init__(self, driver_url: str, capabilities: dict, timeout_s: float = 60):
        self.base = driver_url
        body = {"capabilities": {"alwaysMatch": capabilities}}

        def started():
            # tauri-driver listens before WebKitWebDriver does: until then it drops the connection.
            try:
                return self._call("POST", "/session", body, timeout_s)["sessionId"]
            except (ConnectionError, urllib.error.URLError):
                return None
        self.id = wait_until("a WebDriver session", started, deadline_s=timeout_s, every_s=0.2)

    def _call(self, method: str, path: str, body: dict | None = None, timeout_s: float = 30):
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, method=method, headers={"content-type": "application/json"}
        )
        # tauri-driver forwards each command over a pooled connection to WebKitWebDriver; when that connection was
        # closed meanwhile, it drops ours without an answer ("Error serving connection … SendRequest" in its log).
        # Commands that only read or find (and navigation) are sent again; a click or keys are not (they may have
        # happened).
        retry = method in ("GET", "DELETE") or path.endswith(("/elements", "/element", "/execute/sync", "/url"))
        for attempt in range(3 if retry else 1):
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    return json.loads(response.read() or b"{}").get("value")
            except urllib.error.HTTPError as e:
                raise WebDriverError(f"{method} {path}: {e.code} {e.read()[:2000]!r}") from None
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                if attempt == 2 or not retry:
                    raise
                print(f"{method} {path}: {e!r}; sending it again", flush=True)
                time.sleep(0.2)

    def call(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.id}{path}", body)

    def find(self, css: str) -> str | None:
        found = self.call("POST", "/elements", {"using": "css selector", "value": css})
        return found[0][ELEMENT] if found else None

    def wait_find(self, css: str, what: str | None = None, deadline_s: float = 30) -> str:
        return wait_until(what or f"element {css}", lambda: self.find(css), deadline_s=deadline_s, every_s=0.2)

    def text(self, element: str) -> str:
        return self.call("GET", f"/element/{element}/text")

    def click(self, element: str) -> None:
        self.call("POST", f"/element/{element}/click")

    def type(self, element: str, text: str, timeout_s: float = 30) -> None:
        self._call("POST", f"/session/{self.id}/element/{element}/value", {"text": text}, timeout_s)

    def type_into(self, css: str, text: str, deadline_s: float = 30) -> None:
        """Types into the field `css` once it takes input (a field in a dialog that is still opening does not).

        WebKitWebDriver's send-keys waits until WebKit reports the key events handled; on a loaded 2-core machine
        that report has been seen to never come (the keys arrive, the command hangs). So one attempt gets 10 s;
        after that the field is filled the way the page reads typing (its value, then an `input` event), and the
        test goes on to check what the page did with it."""
        def typed():
            element = self.find(css)
            if element is None:
                return False
            try:
                self.type(element, text, timeout_s=10)
                return True
            except WebDriverError as e:
                if "not interactable" in str(e):
                    return False
                raise
            except (TimeoutError, OSError) as e:  # socket timeout (URLError is an OSError)
                print(f"send-keys to {css} did not answer ({e!r}); filling it through an input event", flush=True)
                return self.fill(css, text)
        wait_until(f"{css} to take input", typed, deadline_s=deadline_s, every_s=0.2)

    def fill(self, css: str, text: str) -> bool:
        """Sets the field's value as typing would and fires `input` (what the page listens to)."""
        return bool(self.script(
            "const el = document.querySelector(arguments[0]);"
            "if (!el || el.disabled) return false;"
            "el.focus();"
            "Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(el, arguments[1]);"
            "el.dispatchEvent(new Event('input', {bubbles: true}));"
            "return el.value === arguments[1];",
            css, text,
        ))

    def script(self, source: str, *args):
        return self.call("POST", "/execute/sync", {"script": source, "args": list(args)})

    def wait_text(self, css: str, wanted: str, deadline_s: float = 30) -> None:
        def has():
            element = self.find(css)
            return element is not None and wanted in self.text(element)
        wait_until(f"{css} to say {wanted!r}", has, deadline_s=deadline_s, every_s=0.2)

    def quit(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.id}", timeout_s=30)
        except (WebDriverError, OSError):
            pass


def button_with_text(session: Session, css: str, text: str) -> str:
    """The first element matching `css` whose text contains `text`."""
    def find():
        for element in session.call("POST", "/elements", {"using": "css selector", "value": css}):
            if text in session.text(element[ELEMENT]):
                return element[ELEMENT]
        return None
    return wait_until(f"a {css} saying {text!r}", find, every_s=0.2)
