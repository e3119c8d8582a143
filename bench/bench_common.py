"""Shared by the bench/ scripts: ports in this area's range, the fixture server process,
and the collection on sys.path. Every process started here is stopped by its PID."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
PORT_RANGE = (20500, 20999)


def free_port(start: int = PORT_RANGE[0]) -> int:
    for port in range(start, PORT_RANGE[1] + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {timeout_s}s")


def pin(cpus: str) -> List[str]:
    """taskset prefix: the fixture and the client on different cores when possible."""
    ok = cpus and shutil.which("taskset") and (os.cpu_count() or 1) > 1
    return ["taskset", "-c", cpus] if ok else []


@contextlib.contextmanager
def fixture_server(ttft_ms: float, itl_ms: float, port: Optional[int] = None,
                   cpus: str = "1") -> Iterator[str]:
    port = port or free_port()
    cmd = pin(cpus) + [sys.executable, os.path.join(ROOT, "bench", "fixture_openai.py"),
                       "--port", str(port), "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pin_self(cpus: str = "0") -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"
