"""A live progress line for a running benchmark: a terminal, a log, or a file to `tail -f`.

Thread-driven so the engine's event loop never spends time on the display.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Dict


class Progress:
    """Step, sent/done/failed, in flight, rate: redrawn on a terminal, a line at a time elsewhere."""

    def __init__(self, counters: Any, stream: Any = sys.stderr, every_s: float = 0.5,
                 plain_every_s: float = 5.0) -> None:
        self.counters, self.stream, self.every_s = counters, stream, every_s
        self.plain_every_s = plain_every_s
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()

    def line(self) -> str:
        c = self.counters
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"[{elapsed:6.1f}s] {c.label or 'starting':<28} sent {c.sent:>6} done {c.done:>6}"
                f" failed {c.failed:>4} in flight {c.in_flight:>5} ~{c.done / elapsed:7.1f} req/s")

    def _loop(self) -> None:
        last_plain = 0.0
        while not self.stop.wait(self.every_s):
            if self.tty:
                self.stream.write("\r" + self.line())
                self.stream.flush()
            elif time.monotonic() - last_plain >= self.plain_every_s:  # logs: a line now and then
                last_plain = time.monotonic()
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def step_done(self, summary: Dict[str, Any]) -> None:
        step = summary.get("step", {})
        thr = summary["throughput"]["requests_per_s"]
        ttft = summary["ttft_ms"].get("median")
        self.stream.write(("\r" if self.tty else "") +
                          f"step {step.get('index')}: {step.get('label')}: "
                          f"{thr or 0:.2f} req/s, TTFT p50 {ttft or 0:.1f} ms, "
                          f"{'valid' if summary['valid'] else 'INVALID'}\n")
        self.stream.flush()

    def __enter__(self) -> "Progress":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
