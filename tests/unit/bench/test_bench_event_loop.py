"""The engine runs on uvloop (pinned in the control venv) unless told otherwise."""
import asyncio

from ansible_collections.llmops.platform.plugins.module_utils.bench.engine import run_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_engine_runs_on_uvloop(monkeypatch):
    monkeypatch.delenv("LLMOPS_BENCH_LOOP", raising=False)
    assert run_loop(_loop_module()).startswith("uvloop")


def test_the_default_loop_can_be_forced(monkeypatch):
    monkeypatch.setenv("LLMOPS_BENCH_LOOP", "asyncio")
    assert run_loop(_loop_module()).startswith("asyncio")
