"""Headless Chromium driven over the Chrome DevTools Protocol (no browser download, no driver):
open a page, wait for it to render, and report its CSP violations and console errors."""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]
# A Permissions-Policy feature this build does not have (Linux Chromium lacks web-share) is
# ignored by the browser, as the specification says: a note, not a violation.
UNKNOWN_FEATURE = re.compile(
    r"Error with Permissions-Policy header: Unrecognized feature: '[\w-]+'\.$"
)
# Runs before the page's own scripts: every CSP violation the page meets is kept.
WATCH_CSP = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));"""


class Page:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self.last_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.last_id:
                return dict(message.get("result", {}))
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 30) -> None:
        """Navigate, then wait until the JavaScript expression `ready` is true."""
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")
        self.call("Page.addScriptToEvaluateOnNewDocument", source=WATCH_CSP)
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({ready})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not render: {self.problems()}")
            time.sleep(0.2)
        time.sleep(1)  # late errors (a failed asset, a worker) still get reported
        self.evaluate("0")  # collect what arrived meanwhile

    def csp_violations(self) -> list[str]:
        seen = list(self.evaluate("window.__csp") or [])
        logged = [e["params"]["entry"]["text"] for e in self.events if is_security_log(e)]
        return seen + [text for text in logged if not UNKNOWN_FEATURE.match(text)]

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a)) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
        return errors

    def problems(self) -> dict[str, list[str]]:
        return {"csp": self.csp_violations(), "console": self.console_errors()}


def is_security_log(event: dict[str, Any]) -> bool:
    return event.get("method") == "Log.entryAdded" and event["params"]["entry"]["source"] == (
        "security"
    )


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A fresh headless Chromium (its own profile folder) and one blank page in it."""
    # Chromium's helper processes may still write to the profile while it is removed.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: stopped with every helper
        )
        try:
            assert process.stderr is not None
            port = ""
            for line in process.stderr:
                if line.startswith("DevTools listening on ws://"):
                    port = line.split("ws://127.0.0.1:")[1].split("/")[0]
                    break
            assert port, "chromium did not open its DevTools port"
            # Keep reading its log, or chromium blocks once the pipe is full.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            address = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
            with connect(address, max_size=None, open_timeout=10) as socket:
                yield Page(socket)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
