"""The benchmark on the Kubernetes target reaches the models through the router Service,
never a vLLM port on 127.0.0.1: playbooks/bench.yml in check mode (no traffic) against the
render inventory, reading where each model's requests would go."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from serving_render import INVENTORIES, ROOT, _env


def bench_check(tmp_path, **extra) -> subprocess.CompletedProcess:
    path = tmp_path / "extra.json"
    path.write_text(json.dumps({"platform_home": str(tmp_path / "home"),
                                "platform_reports_dir": str(tmp_path / "reports"), **extra}))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
           os.path.join(INVENTORIES, "k8s_000"), "playbooks/bench.yml", "--check", "-e", f"@{path}"]
    return subprocess.run(cmd, cwd=ROOT, env=dict(_env(), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"),
                          capture_output=True, text=True, timeout=600, check=False)


def bench_urls(output: str) -> list[str]:
    play = json.loads(output)
    urls = []
    for task in (t for p in play["plays"] for t in p["tasks"]):
        if "Benchmark every served model" in task["task"]["name"]:
            for host in task["hosts"].values():
                urls += [r["item"]["base_url"] for r in host.get("results", [])]
    return urls


def test_kubernetes_benchmark_goes_through_the_router_service(tmp_path):
    result = bench_check(tmp_path, benchmark_k8s_url="http://llm-router.llm-platform.example:8080")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    urls = bench_urls(result.stdout)
    assert urls and set(urls) == {"http://llm-router.llm-platform.example:8080"}
    assert not [u for u in urls if "127.0.0.1" in u]


def test_kubernetes_benchmark_without_an_applied_platform_says_so(tmp_path):
    result = bench_check(tmp_path, platform_apply=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert bench_urls(result.stdout) == []
    assert "Benchmark skipped: platform_apply is false" in result.stdout
