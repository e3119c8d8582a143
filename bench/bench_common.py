"""Shared by the bench/ scripts: ports in this area's range, the fake OpenAI server process
(tests/fakes/fake_openai.py, a client-overhead fixture: its timings are set, never results),
and the collection on sys.path. Every process started here is stopped by its PID."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from typing import Iterator, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
import fake_openai  # noqa: E402

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


def pin(cpus: str) -> List[str]:
    """taskset prefix: the fixture and the client on different cores when possible."""
    ok = cpus and shutil.which("taskset") and (os.cpu_count() or 1) > 1
    return ["taskset", "-c", cpus] if ok else []


@contextlib.contextmanager
def fixture_server(ttft_ms: float, itl_ms: float, port: Optional[int] = None,
                   cpus: str = "1", kernel_arrival: bool = False) -> Iterator[str]:
    """The fake OpenAI server as its own process (pinned to `cpus`); yields its base URL.
    kernel_arrival: its own TTFT starts at the kernel's receive stamp of the request."""
    extra = ["--kernel-arrival"] if kernel_arrival else []
    with fake_openai.running(["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), *extra],
                             port=port or free_port(), prefix=pin(cpus)) as url:
        yield url


def pin_self(cpus: str = "0") -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"
