"""Helpers to run the real playbooks against the local target from pytest.

Every test run gets its own LLMOPS_HOME (process state, logs, generated models) and
reports dir, and ports away from the demo's, so `make test` never touches a running
demo. Venvs are shared through LLMOPS_CACHE (keyed by lock hash).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
BASE_PORT = int(os.environ.get("LLMOPS_TEST_BASE_PORT", "18100"))


class Platform:
    def __init__(self, home: str, reports: str, vars_file: str, prefix: tuple[str, ...] = (),
                 env_extra: dict[str, str | None] | None = None):
        self.home = home
        self.reports = reports
        self.vars_file = vars_file
        # A command the playbooks run under (e.g. `ip netns exec NAME`), and environment
        # changes for them (None removes a variable).
        self.prefix = list(prefix)
        self.env_extra = dict(env_extra or {})

    def write_vars(self, **overrides) -> None:
        data = {
            "vllm_base_port": BASE_PORT,
            # Away from the demo's router (8000) so tests never touch a running demo.
            "router_port": BASE_PORT - 100,
            "gateway_port": BASE_PORT - 99,
            "monitoring_prometheus_port": BASE_PORT - 98,
            "monitoring_alertmanager_port": BASE_PORT - 97,
            # The sweep has its own integration test (test_tune.py); site.yml re-runs skip it.
            "llm_sweep_enabled": False,
            # Fine-tuning inside site.yml has its own integration test (test_finetune.py).
            "llm_finetune_enabled": False,
            "platform_reports_dir": self.reports,
            # A short load curve, as the demo draws (four steps), at test scale.
            "llm_benchmark_num_requests": 8,
            "llm_benchmark_concurrency": [1, 2, 4, 8],
            "llm_benchmark_min_step_s": 0,
            "llm_benchmark_warmup_requests": 2,
            "llm_benchmark_max_tokens": 16,
            "llm_benchmark_prompt_tokens": 32,
            "vllm_ready_timeout_s": 600,
        }
        data.update(overrides)
        with open(self.vars_file, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle)

    def env(self, json_output: bool) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            LLMOPS_HOME=self.home,
            ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
            ANSIBLE_HOME=os.path.join(ROOT, ".ansible"),
            PATH=f"{BIN}:{env.get('PATH', '')}",
            ANSIBLE_NOCOLOR="1",
        )
        if json_output:
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        for name, value in self.env_extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def play(self, playbook: str, *args: str, json_output: bool = False, timeout: int = 1500):
        cmd = [*self.prefix, os.path.join(BIN, "ansible-playbook"), playbook, "-e", f"@{self.vars_file}", *args]
        result = subprocess.run(cmd, cwd=ROOT, env=self.env(json_output), capture_output=True,
                                text=True, timeout=timeout, check=False)
        if json_output and result.stdout.strip().startswith("{"):
            result.json = json.loads(result.stdout)
        return result

    def endpoints(self) -> list[dict]:
        with open(os.path.join(self.home, "run", "endpoints.json"), encoding="utf-8") as handle:
            return json.load(handle)["models"]

    def status(self, name: str) -> dict:
        with open(os.path.join(self.home, "run", name, "status.json"), encoding="utf-8") as handle:
            return json.load(handle)


def changed_tasks(report: dict) -> list[str]:
    """Names of tasks that reported changed on any host, from the json callback."""
    names = []
    for play in report["plays"]:
        for task in play["tasks"]:
            if any(host.get("changed") for host in task["hosts"].values()):
                names.append(task["task"]["name"].split(" : ", 1)[-1])  # drop "role : " prefix
    return names


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    base = tmp_path_factory.mktemp("platform")
    plat = Platform(str(base / "home"), str(base / "reports"), str(base / "vars.yml"))
    plat.write_vars()
    yield plat
    plat.play("playbooks/teardown.yml")
