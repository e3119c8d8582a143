"""The one place that turns a model directory + vLLM args into a server command line.

The vllm role's local tasks (filter `vllm_server_argv`) and the tuner's runtimes (local
process, docker container, Kubernetes pod) all call it, so a trial runs vLLM the way the
role deploys the winner.
"""
from __future__ import annotations

from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.inventory import vllm_cli_args

ENTRYPOINT = ["-m", "vllm.entrypoints.openai.api_server"]
# What the role sets for every local vLLM process (roles/vllm/defaults + local.yml).
LOCAL_ENV = {
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def server_args(model_dir: str, served_name: str, host: str, port: int,
                vllm_args: dict[str, Any]) -> list[str]:
    """Arguments after `python`: entrypoint, model, name, address, then the tuned flags."""
    return ENTRYPOINT + [
        "--model", model_dir,
        "--served-model-name", served_name,
        "--host", host,
        "--port", str(port),
    ] + vllm_cli_args(vllm_args)


def server_argv(python: str, model_dir: str, served_name: str, host: str, port: int,
                vllm_args: dict[str, Any]) -> list[str]:
    return [python] + server_args(model_dir, served_name, host, port, vllm_args)


def local_env(kvcache_space_gib: int = 1, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(LOCAL_ENV)
    env["VLLM_CPU_KVCACHE_SPACE"] = str(kvcache_space_gib)
    env.update(extra or {})
    return env
