# scripts/page-check's browser half: drives one headless Chromium over the
# DevTools protocol (--remote-debugging-pipe) to load a sweep's index.html,
# check the page Chromium built, and take a full-page screenshot.
#
# Why the protocol and not --dump-dom with --enable-logging: Chromium's log
# prints console.log and console.error alike (both INFO:CONSOLE), and says
# nothing of a resource that failed to load; the protocol names each
# message's level, every uncaught exception, and every load failure, and
# lets one browser do the checks and the screenshot.
#
# Usage (from scripts/page-check, which finds the browser):
#   python3 page-check.py BROWSER DIR [--screenshot FILE.png [--top PX]]
# Exit: 0 the page is good; 1 it is not (one line per fault on stderr; a
# browser that stops answering once the page is opening is the page's
# fault too); 2 bad usage; 3 the browser could not be driven before the page
# was opened (it did not start, or did not answer): nothing was checked.
import base64
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Every wait is bounded: the browser is killed past this many seconds.
DEADLINE_S = 90
WIDTH, VIEWPORT_HEIGHT = 1280, 800


class Unusable(Exception):
    """The browser died or stopped answering."""


class Browser:
    """One headless Chromium, spoken to over fd 3 (commands) and fd 4
    (answers and events): JSON messages ended by a NUL byte."""

    def __init__(self, exe):
        # A fresh profile, and the browser's own log (a file, not a pipe:
        # Chromium logs a lot, and a full pipe would stall it).
        self.temp = tempfile.mkdtemp(prefix="page-check-")
        self.log = open(os.path.join(self.temp, "chromium.log"), "w+b")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def as_fds_3_and_4():
            # In the child: the pipe ends become fds 3 and 4 (dup first, so
            # that neither end is already 3 or 4 when dup2 moves it there).
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        # `timeout` kills the browser's whole process group even if this
        # script dies first; a new session makes that group the browser's own.
        cmd = ["timeout", "-k", "5", str(DEADLINE_S + 10), exe, "--headless", "--no-sandbox",
               "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--no-default-browser-check",
               f"--user-data-dir={self.temp}/profile", "--remote-debugging-pipe",
               f"--window-size={WIDTH},{VIEWPORT_HEIGHT}", "about:blank"]
        self.proc = subprocess.Popen(cmd, preexec_fn=as_fds_3_and_4, close_fds=False, start_new_session=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.deadline = time.monotonic() + DEADLINE_S
        self.next_id, self.buffer, self.events = 0, b"", []
        self.session = None

    def close(self):
        """Ask the browser to quit, then kill what is left of its group."""
        try:
            self.send("Browser.close", session=False, wait=False)
            self.proc.wait(timeout=5)
        except (Unusable, OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for fd in (self.to_chrome, self.from_chrome):
            os.close(fd)
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)

    def log_tail(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def message(self, timeout):
        """The next message from the browser, or None after `timeout` s."""
        end = min(time.monotonic() + timeout, self.deadline)
        while b"\0" not in self.buffer:
            left = end - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    raise Unusable(f"no answer from the browser within {DEADLINE_S} s")
                return None
            if select.select([self.from_chrome], [], [], left)[0]:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise Unusable(f"the browser exited (status {self.proc.wait()}):\n{self.log_tail()}")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method, params=None, session=True, wait=True):
        """Send one command; with `wait`, its result (events that arrive
        meanwhile are kept in self.events)."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        try:
            os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise Unusable(f"the browser exited (status {self.proc.wait()}):\n{self.log_tail()}")
        while wait:
            reply = self.message(DEADLINE_S)
            if reply is None:
                continue
            if reply.get("id") != self.next_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise Unusable(f"{method}: {reply['error'].get('message')}")
            return reply["result"]

    def wait_for(self, event, timeout):
        """Wait up to `timeout` s for an event; whether it came."""
        end = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            msg = self.message(end - time.monotonic())
            if msg is None:
                return False
            self.events.append(msg)
        return True


# What the page holds, read from the DOM Chromium built (not the file's text).
PAGE_FACTS = """JSON.stringify({
  verdictTable: !!document.querySelector('#verdict-table'),
  verdictRows: document.querySelectorAll('#verdict-table tr:has(td)').length,
  charts: [...document.querySelectorAll('figure.chart')].map(f => ({
    name: f.dataset.chart || '', svg: !!f.querySelector('svg')})),
  height: Math.ceil(Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)),
})"""

# One frame and a moment for timers started by the page's scripts to run.
SETTLE = "new Promise(r => requestAnimationFrame(() => setTimeout(r, 200)))"

# After the checks, the browser's messages are read until it has been quiet
# this long (at most LATE_LIMIT_S in all): a console error a timer logs after
# the last command would otherwise never be read, and never counted.
QUIET_S, LATE_LIMIT_S = 1.0, 5.0


def drain(browser):
    """Keep what the browser says until it falls quiet (bounded, and never
    past the browser's own deadline, which would read as a dead browser)."""
    end = min(time.monotonic() + LATE_LIMIT_S, browser.deadline - 0.1)
    while time.monotonic() < end:
        msg = browser.message(min(QUIET_S, end - time.monotonic()))
        if msg is None:
            return
        browser.events.append(msg)


def open_tab(browser):
    """A fresh blank tab, attached, with console and log capture on."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    browser.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        browser.send(f"{domain}.enable")


def load(browser, url):
    """Open `url` in the tab; the reason it did not load, or None."""
    nav = browser.send("Page.navigate", {"url": url})
    if nav.get("errorText"):
        return f"it did not load: {nav['errorText']}"
    if not browser.wait_for("Page.loadEventFired", 30):
        return "it did not finish loading within 30 s"
    browser.send("Runtime.evaluate", {"expression": SETTLE, "awaitPromise": True})
    return None


def console_faults(events):
    """Console errors, uncaught exceptions and load failures, one line each."""
    faults = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            faults.append(f"console.{p['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text", "")
            faults.append(f"uncaught exception (line {d.get('lineNumber', 0) + 1}): {text.splitlines()[0]}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            faults.append(f"browser log error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
    return faults


def page_faults(facts, chart_files):
    """What the page lacks: the verdict table, its rows, a chart per file."""
    faults = []
    if not facts["verdictTable"]:
        faults.append("no #verdict-table")
    elif facts["verdictRows"] == 0:
        faults.append("#verdict-table has no data row (no <tr> with a <td>)")
    with_svg = [c["name"] for c in facts["charts"] if c["svg"]]
    without = [c["name"] or "(no data-chart)" for c in facts["charts"] if not c["svg"]]
    if without:
        faults.append(f"figure.chart without an <svg>: {', '.join(without)}")
    if len(with_svg) != len(chart_files):
        faults.append(f"{len(with_svg)} figure.chart with an <svg>, but {len(chart_files)} charts/*.svg files")
    missing = sorted(set(chart_files) - set(with_svg))
    if missing:
        faults.append(f"charts missing from the page (data-chart): {', '.join(missing)}")
    return faults


def screenshot(browser, height, path):
    """The whole page, `height` px tall, as a PNG at `path`; a fault or None.
    The window stays 1280x800 (a taller one would stretch what the page
    sizes by the window's height): the clip reaches past it."""
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}
    shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    try:
        Path(path).write_bytes(base64.b64decode(shot["data"]))
        written = Path(path).read_bytes()
    except OSError as e:
        return f"the screenshot could not be written: {e}"
    if written[:8] != b"\x89PNG\r\n\x1a\n" or len(written) < 1000:
        return f"the screenshot {path} is not a PNG of a page ({len(written)} bytes)"
    w, h = struct.unpack(">II", written[16:24])
    if h < height:
        return f"the screenshot {path} is {w}x{h} px, shorter than the page ({height} px)"
    print(f"page-check: screenshot {path}: {w}x{h} px, {len(written)} bytes", file=sys.stderr)
    return None


def check(browser, page, chart_files, shot_path, top):
    """Load the page, read what it holds, take its screenshot (the whole
    page, or its first `top` px): the faults."""
    why_not = load(browser, page.as_uri())
    if why_not:
        return [why_not]
    read = browser.send("Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True})
    if "exceptionDetails" in read:
        return [f"its DOM could not be read: {read['exceptionDetails'].get('text')}"]
    facts = json.loads(read["result"]["value"])
    faults = page_faults(facts, chart_files)
    if shot_path:
        height = max(facts["height"], VIEWPORT_HEIGHT)
        fault = screenshot(browser, min(height, top) if top else height, shot_path)
        faults += [fault] if fault else []
    return faults


def main(argv):
    top = None
    if len(argv) == 6 and argv[4] == "--top" and argv[5].isdigit() and int(argv[5]) > 0:
        top, argv = int(argv[5]), argv[:4]
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--screenshot"):
        print("usage: page-check.py BROWSER DIR [--screenshot FILE.png [--top PX]]", file=sys.stderr)
        return 2
    exe, run_dir = argv[0], Path(argv[1]).resolve()
    shot_path = Path(argv[3]).resolve() if len(argv) == 4 else None
    page = run_dir / "index.html"
    if not page.is_file():
        print(f"page-check: {page}: no such file: the page fails to load", file=sys.stderr)
        return 1
    chart_files = sorted(p.stem for p in (run_dir / "charts").glob("*.svg"))

    browser = Browser(exe)
    try:
        open_tab(browser)
    except Unusable as e:
        browser.close()
        print(f"page-check: could not drive the browser {exe}: {e}", file=sys.stderr)
        return 3
    except BaseException:
        browser.close()
        raise
    try:
        faults = check(browser, page, chart_files, shot_path, top)
        drain(browser)
    except Unusable as e:
        faults = [f"the browser failed on this page: {e}"]
    finally:
        browser.close()
    faults = console_faults(browser.events) + faults

    for fault in faults:
        print(f"page-check: {page}: {fault}", file=sys.stderr)
    if faults:
        return 1
    print(f"page-check: {page}: loaded with no console error; the verdict table and "
          f"{len(chart_files)} charts are there", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
