"""Stopping the subprocesses tests start (servers, dashboards, port-forwards)."""
from __future__ import annotations

import subprocess


def terminate(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, up to `grace_s` to exit, then SIGKILL: a test never leaves a process behind."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
