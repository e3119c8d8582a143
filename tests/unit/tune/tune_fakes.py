"""Fakes for tuner unit tests: a fake runtime and a fake measurement, so the
trial loop, journal and outputs are tested without starting vLLM."""
from __future__ import annotations

# sweep_mod is re-exported: conftest.py patches the sweep's measure() through it.
from ansible_collections.llmops.platform.plugins.module_utils.tune import sweep as sweep_mod  # noqa: F401
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.base import (
    Deployment,
    Runtime,
    TrialFailure,
)


class FakeRuntime(Runtime):
    kind = "fake"

    def __init__(self, crash_when=None, hang_when=None, kill_after=None):
        self.crash_when = crash_when or (lambda args: False)
        self.hang_when = hang_when or (lambda args: False)
        self.kill_after = kill_after
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.prepared = 0

    def prepare(self, task_name):
        self.prepared += 1
        return []

    def start(self, trial_id, vllm_args):
        if self.kill_after is not None and len(self.started) >= self.kill_after:
            raise KeyboardInterrupt("simulated kill")
        self.started.append(trial_id)
        self.current = dict(vllm_args)
        return Deployment(trial_id, "http://127.0.0.1:1", "m", handle=dict(vllm_args))

    def wait_ready(self, dep, timeout_s):
        if self.crash_when(dep.handle):
            raise TrialFailure("startup_crash", "exited before it became ready (exit code 2)", "error: bad flag")
        if self.hang_when(dep.handle):
            raise TrialFailure("readiness_timeout", f"not ready within {timeout_s:.0f}s", "loading...")

    def dead_reason(self, dep):
        return None

    def logs(self, dep, lines=40):
        return ""

    def stop(self, dep):
        self.stopped.append(dep.trial_id)


def surface(args):
    """A smooth made-up response: throughput peaks at max_num_seqs 16."""
    seqs = args.get("max_num_seqs", 64)
    tok = args.get("max_num_batched_tokens", 512)
    thr = 1000.0 - (seqs - 16) ** 2 - abs(tok - 512) / 10
    return {"scenario": "D(64,32)", "concurrency": 8, "valid": True, "invalid_reasons": [],
            "output_tokens_per_s": thr, "requests_per_s": thr / 32, "goodput_rps": thr / 32,
            "e2e_ms": 100000.0 / thr, "ttft_ms": 10.0, "tpot_ms": 2.0,
            "e2e_ms_slo_pct": 100000.0 / thr, "ttft_ms_slo_pct": 10.0, "tpot_ms_slo_pct": 2.0}


