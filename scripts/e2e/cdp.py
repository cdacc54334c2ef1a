"""A small Chrome DevTools Protocol driver for headless Chromium (Python stdlib only).

Chromium is started with --remote-debugging-pipe: DevTools messages are
NUL-terminated JSON on file descriptors 3 (commands to Chromium) and 4 (answers
and events from it), so no port is opened and nothing else can attach.

    with Browser(width=1280, height=900) as browser:
        browser.navigate("http://127.0.0.1:8080/monitoring")
        browser.wait_for("document.body.dataset.ready === 'true'")
        print(browser.evaluate("document.title"))
        browser.screenshot("page.png")

Chromium runs in its own process group, which is killed when the browser is
closed, when the `with` block ends (also on an exception) and, as a last
resort, when the Python process exits.
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

__all__ = ["Browser", "CDPError", "BrowserExited", "find_chromium"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class CDPError(RuntimeError):
    """A DevTools command failed, or a page script threw."""


class BrowserExited(CDPError):
    """Chromium went away while a command was waiting for its answer."""


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable: `explicit`, $CHROMIUM, or the first of CANDIDATES on PATH."""
    for name in (explicit, os.environ.get("CHROMIUM")):
        if name:
            path = shutil.which(name)
            if not path:
                raise FileNotFoundError(f"Chromium not found: {name!r} is not an executable")
            return path
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(
        "no Chromium found on PATH (tried " + ", ".join(CANDIDATES) + "); "
        "install Debian's `chromium` package or set CHROMIUM=/path/to/chrome")


def _high_fd(fd: int) -> int:
    """A duplicate of `fd` numbered 10 or above (so it cannot collide with 3 and 4), close-on-exec."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs. Zombies do not count: they are
    dead, only not yet reaped by their new parent (which, in some containers, is slow)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: ask the kernel (zombies then count too)
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()  # after "pid (comm)": state ppid pgrp …
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


class Browser:
    """One headless Chromium with one page, driven over the DevTools pipe."""

    def __init__(self, width: int = 1280, height: int = 900, mobile: bool = False, *,
                 executable: str | None = None, extra_args: tuple[str, ...] = (),
                 start_timeout: float = 30.0):
        self.executable = find_chromium(executable)
        self.workdir = tempfile.mkdtemp(prefix="cdp-")
        self.log_path = os.path.join(self.workdir, "chromium.log")
        self.proc: subprocess.Popen | None = None
        self.logs: list[str] = []          # console messages, exceptions and browser log entries
        self._events: list[dict] = []      # every event, in arrival order
        self._cond = threading.Condition()
        self._pending: dict[int, list] = {}
        self._next_id = 0
        self._closed = False
        self._exited = False
        self.session: str | None = None
        atexit.register(self.close)
        try:
            self._start(extra_args)
            self._attach(start_timeout)
            self.set_viewport(width, height, mobile)
        except Exception as err:
            tail = self.log_tail()
            self.close()
            raise CDPError(f"Chromium did not start ({self.executable}): {err}"
                           + (f"\nits log ends with:\n{tail}" if tail else "")) from err
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ process

    def _start(self, extra_args: tuple[str, ...]) -> None:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        child_in, child_out = _high_fd(to_chrome_r), _high_fd(from_chrome_w)
        args = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--remote-debugging-pipe", f"--user-data-dir={os.path.join(self.workdir, 'profile')}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
            "--disable-renderer-backgrounding", "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--password-store=basic", "--use-mock-keychain", "--mute-audio", "--font-render-hinting=none",
            *extra_args, "about:blank",
        ]
        # A Python trampoline moves the pipe ends to fds 3 and 4 (where Chromium
        # expects them) and execs Chromium; preexec_fn would be unsafe with threads.
        trampoline = ("import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); "
                      "os.dup2(a, 3); os.dup2(b, 4); os.close(a); os.close(b); "
                      "os.execv(sys.argv[3], sys.argv[3:])")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", trampoline, str(child_in), str(child_out), self.executable, *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(child_in, child_out), start_new_session=True)
        os.close(child_in)
        os.close(child_out)
        self._writer = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._reader = os.fdopen(from_chrome_r, "rb", buffering=0)
        threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True).start()

    def _attach(self, timeout: float) -> None:
        targets = self.call("Target.getTargets", session=False, timeout=timeout)["targetInfos"]
        page = next((t for t in targets if t.get("type") == "page"), None)
        if page is None:
            page = {"targetId": self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]}
        self.session = self.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(domain)

    def log_tail(self, lines: int = 20) -> str:
        """The end of Chromium's own stderr/stdout (for error messages)."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def close(self) -> None:
        """Closes the browser (gracefully if it answers within 3 s), then kills its process group. Idempotent."""
        if self._closed:
            return
        self._closed = True
        proc = self.proc
        if proc is not None and proc.poll() is None and not self._exited:
            try:
                self.call("Browser.close", session=False, timeout=3)
            except Exception:
                pass
        if proc is not None:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
            try:  # helpers (renderer, GPU, zygote) share the group; proc.pid is its id
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + 3
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    break
                time.sleep(0.05)
        for stream in (getattr(self, "_writer", None), getattr(self, "_reader", None)):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.close)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ protocol

    def _read_loop(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = self._reader.read(1 << 16)
                if not chunk:
                    break
                buffer += chunk
                while b"\0" in buffer:
                    raw, buffer = buffer.split(b"\0", 1)
                    self._dispatch(json.loads(raw))
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._exited = True
                for slot in self._pending.values():
                    slot[0].set()
                self._cond.notify_all()

    def _dispatch(self, message: dict) -> None:
        if "id" in message:
            with self._cond:
                slot = self._pending.get(message["id"])
            if slot:
                slot[1] = message
                slot[0].set()
            return
        method, params = message.get("method", ""), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", a.get("type", "")))) for a in params.get("args", []))
            self.logs.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.logs.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.logs.append(f"log.{entry.get('level')} ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".rstrip())
        with self._cond:
            self._events.append(message)
            self._cond.notify_all()

    def call(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float = 30.0) -> dict:
        """Sends one command and returns its result; raises CDPError on an error answer or a timeout."""
        if self._exited:
            raise BrowserExited(f"{method}: Chromium has exited" + self._exit_detail())
        with self._cond:
            self._next_id += 1
            ident = self._next_id
            slot = [threading.Event(), None]
            self._pending[ident] = slot
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            if not self.session:
                raise CDPError(f"{method}: no page session")
            message["sessionId"] = self.session
        try:
            try:
                self._writer.write(json.dumps(message).encode() + b"\0")
            except (BrokenPipeError, OSError, ValueError) as err:
                raise BrowserExited(f"{method}: cannot write to Chromium ({err})" + self._exit_detail()) from None
            if not slot[0].wait(timeout):
                raise CDPError(f"{method}: no answer from Chromium within {timeout:g} s")
        finally:
            with self._cond:
                self._pending.pop(ident, None)
        answer = slot[1]
        if answer is None:
            raise BrowserExited(f"{method}: Chromium exited before answering" + self._exit_detail())
        if "error" in answer:
            error = answer["error"]
            raise CDPError(f"{method} failed: {error.get('message')} {error.get('data', '')}".rstrip())
        return answer.get("result", {})

    def _exit_detail(self) -> str:
        code = self.proc.poll() if self.proc else None
        tail = self.log_tail(8)
        return (f" (exit status {code})" if code is not None else "") + (f"; its log ends with:\n{tail}" if tail else "")

    def event_mark(self) -> int:
        """A position in the event log, for wait_event(after=…)."""
        with self._cond:
            return len(self._events)

    def wait_event(self, method: str, predicate: Callable[[dict], bool] | None = None, *,
                   after: int = 0, timeout: float = 30.0) -> dict:
        """Waits for an event `method` (arriving after position `after`) whose params satisfy `predicate`."""
        deadline = time.monotonic() + timeout
        index = after
        with self._cond:
            while True:
                while index < len(self._events):
                    event = self._events[index]
                    index += 1
                    if event.get("method") == method and (predicate is None or predicate(event.get("params", {}))):
                        return event.get("params", {})
                if self._exited:
                    raise BrowserExited(f"Chromium exited while waiting for {method}" + self._exit_detail())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError(f"no {method} event within {timeout:g} s")
                self._cond.wait(left)

    # --------------------------------------------------------------------- pages

    def set_viewport(self, width: int, height: int, mobile: bool = False, scale: float = 1) -> None:
        self.width, self.height, self.mobile, self.scale = width, height, mobile, scale
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile})

    def add_init_script(self, source: str) -> None:
        """Runs `source` in every new document before the page's own scripts (not subject to the page's CSP)."""
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def navigate(self, url: str, timeout: float = 30.0) -> None:
        """Opens `url` and waits for its load event."""
        mark = self.event_mark()
        result = self.call("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise CDPError(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", after=mark, timeout=timeout)

    def evaluate(self, expression: str, *, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression (promises are awaited); CDPError when it throws."""
        result = self.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True, "userGesture": True,
        }, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            raise CDPError(f"script failed: {text}\n  in: {expression[:300]}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, interval: float = 0.1) -> Any:
        """Polls until the expression is truthy and returns its value; CDPError (with the last value) on timeout."""
        deadline = time.monotonic() + timeout
        value = None
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise CDPError(f"timed out after {timeout:g} s waiting for: {expression} (last value {value!r})")
            time.sleep(interval)

    def _center(self, selector: str) -> tuple[float, float]:
        found = self.evaluate(f"""(() => {{
            const node = document.querySelector({json.dumps(selector)});
            if (!node) return null;
            node.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = node.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) return 'hidden';
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()""")
        if found is None:
            raise CDPError(f"no element matches {selector}")
        if found == "hidden":
            raise CDPError(f"{selector} is not visible")
        return found[0], found[1]

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        x, y = self._center(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": x, "y": y}
            if kind != "mouseMoved":
                params.update(button="left", clickCount=1)
            self.call("Input.dispatchMouseEvent", params)

    def type_text(self, selector: str, text: str, *, clear: bool = True) -> None:
        """Focuses an input and types `text` into it as keyboard input would."""
        self.click(selector)
        if clear:
            self.evaluate(f"(() => {{ const n = document.querySelector({json.dumps(selector)}); n.focus(); n.select && n.select(); }})()")
            self.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46})
            self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46})
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path: str, *, full_page: bool = False, max_height: int | None = None) -> tuple[int, int]:
        """Writes a PNG of the viewport, or of the whole page (at most `max_height` px tall).

        Returns (width, height) of the image."""
        height = self.height
        if full_page:
            height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
            if max_height:
                height = min(height, max_height)
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": height, "deviceScaleFactor": self.scale, "mobile": self.mobile})
            self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            time.sleep(0.3)  # charts redraw after their ResizeObserver fires
        try:
            data = self.call("Page.captureScreenshot", {"format": "png", "fromSurface": True})["data"]
        finally:
            if full_page:
                self.set_viewport(self.width, self.height, self.mobile, self.scale)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return self.width, height
