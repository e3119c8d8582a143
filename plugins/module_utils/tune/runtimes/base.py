"""The runtime contract: start a server for one configuration, wait, report death, stop.

Failures are raised as TrialFailure with a kind (startup_crash, oom, readiness_timeout,
benchmark_error, runtime_error), a reason and the server's log tail; the trial loop records
them as infeasible and goes on.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Optional

OOM_RE = re.compile(r"out of memory|OutOfMemoryError|OOM|Cannot allocate memory|exit code (137|-9)\b",
                    re.IGNORECASE)


class TrialFailure(Exception):
    def __init__(self, kind: str, reason: str, log_tail: str = "") -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.log_tail = log_tail


ERROR_LINE_RE = re.compile(r"(Error|error:|Exception|Killed|No such file|not found)")


def diagnostic_tail(text: str, lines: int = 40, first_errors: int = 8) -> str:
    """The last `lines` lines, preceded by the earliest error lines above them: vLLM prints
    the root cause of an engine failure long before its final traceback."""
    all_lines = text.splitlines()
    tail = all_lines[-lines:]
    before = [line for line in all_lines[:-lines] if ERROR_LINE_RE.search(line)][:first_errors]
    if not before:
        return "\n".join(tail)
    return "\n".join(before + ["[...]"] + tail)


def classify_exit(reason: str, log_tail: str) -> str:
    """An exit is an OOM when the kernel or the engine says so; else a plain crash."""
    return "oom" if OOM_RE.search(reason) or OOM_RE.search(log_tail[-4000:]) else "startup_crash"


@dataclass
class Deployment:
    trial_id: str
    base_url: str                    # what the benchmark client talks to
    served_name: str
    handle: Any = None               # runtime-specific (ProcessSpec, container, manifests)
    info: dict[str, Any] = field(default_factory=dict)


class Runtime(ABC):
    kind = "abstract"

    @abstractmethod
    def prepare(self, task_name: str) -> list[str]:
        """Resolve what every trial needs; stop leftovers of an earlier killed run of this
        task (only things this tuner created, found by name/label). Returns what was stopped."""

    @abstractmethod
    def start(self, trial_id: str, vllm_args: dict[str, Any]) -> Deployment:
        """Launch the server; raise TrialFailure when it cannot even be launched."""

    @abstractmethod
    def wait_ready(self, dep: Deployment, timeout_s: float) -> None:
        """Return when /health and /v1/models answer; raise TrialFailure on death or timeout."""

    @abstractmethod
    def dead_reason(self, dep: Deployment) -> Optional[str]:
        """None while the server is up; otherwise why it is not (checked after benchmarks)."""

    @abstractmethod
    def logs(self, dep: Deployment, lines: int = 40) -> str: ...

    @abstractmethod
    def stop(self, dep: Deployment) -> None:
        """Remove everything start() created for this trial. Must be safe to call twice."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}
