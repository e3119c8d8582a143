"""Load a page in headless Chromium, wait until it shows some text, screenshot it, return its text.

    python apps/dashboard/screenshot.py URL OUT.png [--wait-for TEXT]... [--timeout S] [--text-out FILE]

Streamlit pages render over a websocket after load, so "page loaded" means nothing; instead we
poll `document.body.innerText` through the DevTools protocol until every --wait-for text is
there and the page (text and chart count) has stopped changing, bounded by --timeout.
Also importable: `capture(url, out_png, wait_for=[...]) -> Capture` (tests/integration).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Iterator, Sequence

import aiohttp

CHROMIUM = "/usr/bin/chromium"
# Without these its background connections fail noisily on a closed network (verified here).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio"]
DEBUG_PORTS = range(19590, 19600)  # this helper's share of the dashboard's port range
# Streamlit marks work in progress: skeletons for elements whose JS has not loaded, the running
# man while the script runs, data-stale on elements of the previous run. Other pages match none.
BUSY = '[data-testid^="stSkeleton"], [data-testid^="stStatusWidgetRunning"], [data-stale="true"]'
# Text, how many charts/images, how many busy markers: settled = no busy marker and the first
# two unchanged for settle_s.
PROBE = ("JSON.stringify([document.body ? document.body.innerText : '', "
         "document.querySelectorAll('canvas, svg, img').length, "
         f"document.querySelectorAll('{BUSY}').length])")


class CdpError(RuntimeError):
    """A DevTools call answered with an error."""


class WaitTimeout(TimeoutError):
    """The page did not show the awaited text in time (the screenshot is still written)."""


@dataclasses.dataclass
class Capture:
    text: str          # document.body.innerText when the screenshot was taken
    png: str           # path written
    seconds: float     # navigate -> screenshot
    width: int
    height: int


def free_port(ports: Sequence[int]) -> int:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports[0]}-{ports[-1]}")


def png_size(path: str) -> tuple[int, int]:
    """(width, height) from the PNG header; ValueError when the file is not a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@contextlib.contextmanager
def chromium(port: int, width: int, height: int, binary: str = CHROMIUM) -> Iterator[str]:
    """A headless Chromium with a fresh profile; yields its first page's websocket URL, and
    always stops every process it started (found by the unique profile dir) on exit."""
    with tempfile.TemporaryDirectory(prefix="llmops-chromium-") as profile:
        proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
                                 "--remote-debugging-address=127.0.0.1", f"--window-size={width},{height}",
                                 "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield _page_ws(proc, port)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            _kill_leftovers(profile)


def _page_ws(proc: subprocess.Popen, port: int, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before its DevTools port opened")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as resp:
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"chromium DevTools did not answer on port {port} within {timeout_s:.0f} s")


def _kill_leftovers(profile: str) -> None:
    """Renderer/zygote children normally exit with the browser; kill any that did not. Only
    processes whose command line names our own fresh profile dir can match."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if f"--user-data-dir={profile}".encode() in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)


class DevTools:
    """Minimal CDP client: call(method, **params) -> result; events are ignored."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params: Any) -> dict:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data.get("id") == self.next_id:
                if "error" in data:
                    raise CdpError(f"{method}: {data['error']}")
                return data.get("result", {})
        raise RuntimeError(f"DevTools connection closed during {method}")

    async def probe(self) -> tuple[str, int, int]:
        """(innerText, charts/images, busy markers) of the current document."""
        try:
            result = await self.call("Runtime.evaluate", expression=PROBE, returnByValue=True)
            text, count, busy = json.loads(result["result"]["value"])
        except (CdpError, KeyError, TypeError, ValueError):
            return "", -1, 1  # mid-navigation: the old document's context is gone
        return text, count, busy


async def _wait(cdp: DevTools, wait_for: Sequence[str], timeout_s: float, settle_s: float) -> str:
    """Poll until every wait_for text is present, nothing is busy and the page stayed the same
    for settle_s."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while True:
        text, count, busy = await cdp.probe()
        if (text, count) != last or busy:
            last, since = (text, count), time.monotonic()
        missing = [w for w in wait_for if w not in text]
        if not missing and text.strip() and time.monotonic() - since >= settle_s:
            return text
        if time.monotonic() > deadline:
            why = f"still lacks {missing}" if missing else (
                f"was still busy ({busy} loading/running markers)" if busy else "had not stopped changing")
            raise WaitTimeout(f"after {timeout_s:.0f} s the page {why}; its text ends with: {text[-300:]!r}")
        await asyncio.sleep(0.25)


async def _capture(ws_url: str, url: str, out_png: str, wait_for: Sequence[str], timeout_s: float,
                   settle_s: float, width: int, height: int) -> Capture:
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=0) as ws:
        cdp = DevTools(ws)
        await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
        started = time.monotonic()
        nav = await cdp.call("Page.navigate", url=url)
        if nav.get("errorText"):
            raise RuntimeError(f"cannot load {url}: {nav['errorText']}")
        error: WaitTimeout | None = None
        try:
            text = await _wait(cdp, wait_for, timeout_s, settle_s)
        except WaitTimeout as exc:
            error, text = exc, ""
        shot = await cdp.call("Page.captureScreenshot", format="png")
        with open(out_png, "wb") as handle:
            handle.write(base64.b64decode(shot["data"]))
        if error:  # the PNG shows what the page looked like instead
            raise error
        return Capture(text, out_png, time.monotonic() - started, *png_size(out_png))


def capture(url: str, out_png: str, wait_for: Sequence[str] = (), timeout_s: float = 40.0,
            settle_s: float = 1.5, width: int = 1400, height: int = 2400, port: int | None = None) -> Capture:
    """Screenshot `url` once it shows every `wait_for` text and stopped changing for settle_s."""
    port = port or free_port(DEBUG_PORTS)
    with chromium(port, width, height) as ws_url:
        return asyncio.run(_capture(ws_url, url, out_png, wait_for, timeout_s, settle_s, width, height))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("out", help="PNG to write")
    p.add_argument("--wait-for", action="append", default=[], metavar="TEXT",
                   help="text the page must show before the screenshot (repeatable)")
    p.add_argument("--timeout", type=float, default=40.0, help="seconds to wait for the text (default 40)")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=2400)
    p.add_argument("--text-out", metavar="FILE", help="also write the page's innerText here")
    args = p.parse_args(argv)
    try:
        shot = capture(args.url, args.out, args.wait_for, args.timeout, width=args.width, height=args.height)
    except (WaitTimeout, RuntimeError, OSError) as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 1
    if args.text_out:
        with open(args.text_out, "w", encoding="utf-8") as handle:
            handle.write(shot.text)
    print(f"wrote {shot.png} ({shot.width}x{shot.height}) after {shot.seconds:.1f} s; "
          f"page text {len(shot.text)} chars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
