"""A headless Chromium for the report tests, driven over the DevTools protocol on a pipe.

No driver binary, no port, no extra Python package: Chromium is started with
``--remote-debugging-pipe`` and speaks JSON messages (each ended by a NUL byte) on file
descriptors 3 (to the browser) and 4 (from it), the transport Puppeteer and Playwright use.
Every console error (``Runtime.consoleAPICalled`` of type error/assert), every uncaught
exception (``Runtime.exceptionThrown``) and every browser-side error (``Log.entryAdded`` of
level error, e.g. a script that failed to load) is collected.

    with Chromium() as browser:
        result = browser.open_report(path)
    assert result.ok, result.problems()

or, for one page, ``open_report(path)``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Runs in the page before its own scripts: records, on the page's clock (milliseconds since
# navigation start), when the number of rendered plotly figures first reaches the expected.
_WATCH = """
(() => {
  const expected = %d;
  const w = window.__gtmsim = {renderedAt: null, rendered: 0};
  const count = () => Array.from(document.querySelectorAll('.js-plotly-plot'))
      .filter(d => d.querySelector('.main-svg')).length;
  const check = () => {
    w.rendered = count();
    if (w.renderedAt === null && w.rendered >= expected) {
      w.renderedAt = performance.now();
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(document, {childList: true, subtree: true});
  document.addEventListener('DOMContentLoaded', check);
})();
"""

# A trace of a type plotly.js does not have comes out of its defaults as an invisible scatter:
# its type in the figure's full data differs from the one asked for (scatter when none).
_DROPPED = """
Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap((gd, n) =>
  (gd._fullData || []).filter(t => t.type !== (gd.data[t.index].type || 'scatter'))
    .map(t => `figure ${n + 1}: ${gd.data[t.index].type}`))
"""


def find_chromium() -> str | None:
    """The Chromium to use: $CHROMIUM, else the first browser name found on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    """What a headless browser saw of one page."""

    path: Path
    figures: int  # Plotly.newPlot calls in the page's source
    rendered: int  # .js-plotly-plot divs with a .main-svg child when loading ended
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    seconds: float | None = None  # navigation start to the last figure drawn; None if never
    screenshot: Path | None = None  # full-page PNG
    # traces plotly.js left out because it has no such trace type (it draws the rest of the
    # figure and says nothing), as "figure N: type"
    dropped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every figure rendered, whole, and nothing went wrong in the console."""
        return (self.figures > 0 and self.rendered == self.figures and not self.errors
                and not self.dropped)

    def problems(self) -> str:
        """A short account of what is wrong, for an assertion message."""
        return (f"{self.path.name}: {self.rendered} of {self.figures} figures rendered; "
                f"errors: {self.errors or 'none'}; traces of no known type: "
                f"{self.dropped or 'none'}")


class BrowserError(RuntimeError):
    """The browser did not start or stopped answering."""


class Chromium:
    """One headless Chromium process; open pages in it one after the other."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found (apt-get install chromium, or set $CHROMIUM)")
        self.width, self.height = width, height
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._events: list[dict] = []
        self._cond = threading.Condition()
        self._proc: subprocess.Popen | None = None

    # -- process and transport
    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="gtmsim-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [self.executable, "--headless", "--remote-debugging-pipe", "--no-sandbox",
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--hide-scrollbars", "--mute-audio", f"--user-data-dir={self._profile}",
                f"--window-size={self.width},{self.height}", "about:blank"]

        def fds() -> None:  # in the child: the pipes become fds 3 and 4 (moved out of the way
            # first, in case either already is 3 or 4); Python's own fds are close-on-exec
            r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
            w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self._proc = subprocess.Popen(args, preexec_fn=fds, close_fds=False,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        threading.Thread(target=self._read, daemon=True).start()
        self.send("Browser.getVersion", timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            try:
                self.send("Browser.close", timeout=5)
            except BrowserError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                self._cond.notify_all()

    _closed = False

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        """Call one DevTools method and wait for its result."""
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        except OSError as exc:
            raise BrowserError(f"{method}: the browser is gone ({exc})") from None
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise BrowserError(f"{method}: no answer from the browser")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _evaluate(self, expression: str, session: str) -> Any:
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                        session)
        return res.get("result", {}).get("value")

    def _errors(self, session: str) -> list[str]:
        """Console errors, uncaught exceptions and browser-side errors of one session."""
        out = []
        with self._cond:
            events = [e for e in self._events if e.get("sessionId") == session]
        for e in events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                text = (d.get("exception") or {}).get("description") or d.get("text", "")
                out.append(f"uncaught exception: {text.splitlines()[0] if text else '?'}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error",
                                                                                 "assert"):
                args = " ".join(str(a.get("value", a.get("description", "")))
                                for a in p.get("args", []))
                out.append(f"console.{p['type']}: {args}")
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"browser error: {p['entry'].get('text', '')}")
        return out

    # -- one page
    def open_report(self, path: str | Path, screenshot: str | Path | None = None,
                    timeout: float = 60.0, grace: float = 5.0) -> PageResult:
        """Load `path` from file://, wait until every plotly figure is drawn (or, after the
        load event, `grace` seconds more), collect errors, take a full-page screenshot."""
        path = Path(path).absolute()
        figures = len(re.findall(r"Plotly\.newPlot\(", path.read_text(encoding="utf-8")))
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Runtime", "Log", "Page"):
                self.send(f"{domain}.enable", session=session)
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                       "mobile": False}, session)
            self.send("Page.addScriptToEvaluateOnNewDocument",
                      {"source": _WATCH % max(figures, 1)}, session)
            self.send("Page.navigate", {"url": path.as_uri()}, session, timeout=timeout)
            deadline = time.monotonic() + timeout
            loaded_at: float | None = None
            state: dict = {}
            while time.monotonic() < deadline:
                state = self._evaluate(
                    "({at: window.__gtmsim ? window.__gtmsim.renderedAt : null, "
                    "n: window.__gtmsim ? window.__gtmsim.rendered : 0, "
                    "ready: document.readyState})", session) or {}
                if state.get("at") is not None:
                    break
                if state.get("ready") == "complete":
                    loaded_at = loaded_at or time.monotonic()
                    if time.monotonic() - loaded_at > grace:
                        break
                time.sleep(0.05)
            time.sleep(0.2)  # let errors thrown right after the last figure arrive
            rendered = self._evaluate(
                "Array.from(document.querySelectorAll('.js-plotly-plot'))"
                ".filter(d => d.querySelector('.main-svg')).length", session) or 0
            seconds = state["at"] / 1000 if state.get("at") is not None else None
            dropped = self._evaluate(_DROPPED, session) or []
            shot = self._screenshot(session, screenshot) if screenshot else None
            return PageResult(path, figures, int(rendered), self._errors(session), seconds, shot,
                              dropped)
        finally:
            self.send("Target.closeTarget", {"targetId": target})

    def _screenshot(self, session: str, to: str | Path) -> Path:
        size = self.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": max(1, int(size["width"])),
                "height": max(1, int(size["height"])), "scale": 1}
        data = self.send("Page.captureScreenshot",
                         {"format": "png", "clip": clip, "captureBeyondViewport": True},
                         session)["data"]
        to = Path(to)
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_bytes(base64.b64decode(data))
        return to


def open_report(path: str | Path, screenshot: str | Path | None = None,
                **kwargs: Any) -> PageResult:
    """Open one page in a fresh headless Chromium (see `Chromium.open_report`)."""
    with Chromium() as browser:
        return browser.open_report(path, screenshot, **kwargs)
