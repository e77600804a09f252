"""A page checked in a real headless Chromium, for the tests of systolab's HTML reports.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages ending in NUL on file descriptors 3 and 4), so nothing but the browser is
needed: no driver, no client library, no port, no network. :func:`find_chromium` finds the
browser (Debian's ``chromium``, ``chromium-browser``, Google Chrome; ``SYSTOLAB_CHROMIUM``
names another) or says why not; :class:`Browser` loads a file and reports a
:class:`PageCheck`; :func:`page_problems` lists what is wrong with it.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
WINDOW = (1280, 900)
#: Longest screenshot taken (pixels): Chromium's own limit for one capture is 16384.
MAX_HEIGHT = 16000
_TRAMPOLINE = ("import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
               "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])")
# The page's images as the browser sees them once loaded.
_IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  id: i.closest('figure') ? i.closest('figure').id : i.id, name: i.dataset.name || i.getAttribute('src').slice(0, 60),
  alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
  shown_width: i.getBoundingClientRect().width})))"""


def find_chromium() -> tuple[str | None, str]:
    """(the browser's path, its version) or (None, why none was found)."""
    names = [os.environ["SYSTOLAB_CHROMIUM"]] if os.environ.get("SYSTOLAB_CHROMIUM") else NAMES
    tried = []
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        try:   # a stub (Ubuntu's snap wrapper) is found on PATH but cannot run
            r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{path}: {exc}")
            continue
        if r.returncode == 0 and r.stdout.strip():
            return path, r.stdout.strip()
        tried.append(f"{path}: --version exited {r.returncode}")
    return None, ("no Chromium or Chrome found (" + ", ".join(names) + "; apt-get install chromium)"
                  + (": " + "; ".join(tried) if tried else ""))


@dataclass
class PageCheck:
    """What a headless browser saw of one page."""
    url: str
    screenshot_png: bytes
    images: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)   # console errors, uncaught exceptions, failed loads

    def screenshot_size(self) -> tuple[int, int]:
        """(width, height) of the screenshot, in pixels."""
        return Image.open(io.BytesIO(self.screenshot_png)).size


def screenshot_problems(png: bytes, *, min_width: int = 400, min_height: int = 300) -> list[str]:
    """What is wrong with a screenshot: not a PNG, too small, or blank (one colour)."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        return ["the screenshot is not a PNG"]
    image = Image.open(io.BytesIO(png))
    problems = []
    if image.width < min_width or image.height < min_height:
        problems.append(f"the screenshot is {image.width}x{image.height} pixels, under {min_width}x{min_height}")
    grey = image.convert("L")
    low, high = grey.getextrema()
    colours = grey.getcolors(256) or []
    if high - low < 32 or len(colours) < 8:
        problems.append(f"the screenshot is blank ({len(colours)} grey levels from {low} to {high})")
    return problems


def page_problems(check: PageCheck, *, figures: int) -> list[str]:
    """Everything wrong with a loaded page: its screenshot, a figure that did not render
    (not complete, no pixels, not shown), a count of images other than ``figures``, and
    each console error."""
    problems = screenshot_problems(check.screenshot_png)
    if len(check.images) != figures:
        problems.append(f"{len(check.images)} images on the page, expected {figures}")
    for img in check.images:
        if not img["complete"] or img["width"] <= 0 or img["height"] <= 0 or img["shown_width"] <= 0:
            problems.append(f"image {img['name']!r} (id {img['id']!r}) did not render: complete={img['complete']}, "
                            f"{img['width']}x{img['height']} pixels, shown {img['shown_width']} wide")
    problems += [f"console: {e}" for e in check.errors]
    return problems


class _Pipe:
    """The DevTools protocol over Chromium's pipe: commands with ids, events collected."""

    def __init__(self, to_browser: int, from_browser: int) -> None:
        self.out, self.inp = to_browser, from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.out, data):]
        return self.next_id

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise ConnectionError("the browser closed its pipe (it crashed or exited)")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None, *,
             timeout_s: float = 30) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        ident, deadline = self.send(method, params, session), time.monotonic() + timeout_s
        while True:
            msg = self._read(deadline)
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, session: str, *, timeout_s: float) -> dict[str, Any]:
        """The first event ``method`` of ``session``, kept or still to come."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            for msg in self.events[seen:]:
                if msg.get("method") == method and msg.get("sessionId") == session:
                    return msg
            seen = len(self.events)
            self.events.append(self._read(deadline))


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number above 9, so that the browser's 3 and 4 cannot clash with it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _console_errors(events: list[dict[str, Any]], session: str) -> list[str]:
    errors = []
    for msg in events:
        if msg.get("sessionId") != session:
            continue
        p = msg.get("params", {})
        if msg.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif msg.get("method") == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            errors.append("uncaught " + d.get("exception", {}).get("description", d.get("text", "")))
        elif msg.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
            errors.append(f"{p['entry']['text']} ({p['entry'].get('url', '')})")
    return errors


class Browser:
    """One headless Chromium for several pages: ``with Browser(path) as b: b.check(file)``."""

    def __init__(self, executable: str, *, window: tuple[int, int] = WINDOW) -> None:
        self.profile = tempfile.mkdtemp(prefix="systolab-chromium-")
        to_r, to_w = (_high_fd(fd) for fd in os.pipe())
        from_r, from_w = (_high_fd(fd) for fd in os.pipe())
        args = ["--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update", "--mute-audio", "--hide-scrollbars",
                "--force-device-scale-factor=1", f"--window-size={window[0]},{window[1]}",
                f"--user-data-dir={self.profile}", "about:blank"]
        self.log = open(Path(self.profile) / "stderr.log", "wb")  # noqa: SIM115  (open for the browser's life)
        # a trampoline puts the pipe's ends on 3 and 4, where Chromium looks for them (no
        # preexec_fn, unsafe beside threads; dash cannot redirect descriptors above 9)
        self.proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(to_r), str(from_w), executable, *args],
                                     pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        os.close(to_r)
        os.close(from_w)
        self.pipe = _Pipe(to_w, from_r)
        try:
            self.version = self.pipe.call("Browser.getVersion", timeout_s=60).get("product", "?")
        except (TimeoutError, ConnectionError) as exc:
            tail = self.stderr_tail()
            self.close()
            raise RuntimeError(f"{executable} did not start ({exc}): {tail}") from None

    def stderr_tail(self, chars: int = 2000) -> str:
        """The end of what the browser wrote on stderr."""
        log = Path(self.profile) / "stderr.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    def check(self, page: str | Path, *, timeout_s: float = 60) -> PageCheck:
        """Load ``page`` (a file) in a new tab, wait for its load event (every image
        loaded or failed), then take a full-page screenshot and read its images and console."""
        url = Path(page).absolute().as_uri()
        target = self.pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log"):
                self.pipe.call(f"{domain}.enable", session=session)
            nav = self.pipe.call("Page.navigate", {"url": url}, session=session)
            if nav.get("errorText"):
                raise RuntimeError(f"{url}: {nav['errorText']}")
            self.pipe.wait_for("Page.loadEventFired", session, timeout_s=timeout_s)
            found = self.pipe.call("Runtime.evaluate", {"expression": _IMAGES_JS, "returnByValue": True}, session=session)
            images = json.loads(found["result"]["value"])
            size = self.pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], MAX_HEIGHT), "scale": 1}
            shot = self.pipe.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip},
                                  session=session, timeout_s=timeout_s)
            self.pipe.call("Runtime.evaluate", {"expression": "0"}, session=session)   # events up to here are in
            return PageCheck(url, base64.b64decode(shot["data"]), images, _console_errors(self.pipe.events, session))
        finally:   # a browser that died must not hide the error that says why
            with contextlib.suppress(OSError, TimeoutError, ConnectionError, RuntimeError):
                self.pipe.call("Target.closeTarget", {"targetId": target}, timeout_s=10)

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, ConnectionError, RuntimeError):
            self.pipe.call("Browser.close", timeout_s=10)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.pipe.out, self.pipe.inp):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
