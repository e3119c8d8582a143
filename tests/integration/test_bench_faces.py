"""`ansible-playbook playbooks/bench.yml` and `llmops bench` give the same summary for the
same arguments (against the in-process fixture server; ~20 s, no vLLM needed)."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
from fake_openai import FakeOpenAI, serve_in_thread  # noqa: E402

BIN = os.path.dirname(sys.executable)
# The lag limit is loose: this test compares the two faces, not the sender's timing, and a
# loaded 2-core machine delays sends by tens of milliseconds.
OPTIONS = {"profile": "constant", "rate": 20.0, "scenario": "D(8,4)", "slo_e2e_ms": 1000.0,
           "seed": 3, "repeats": 2, "max_dispatch_lag_ms": 250.0}
COMMON = {"num_requests": 12, "concurrency": 2, "warmup_requests": 2, "max_tokens": 4,
          "prompt_tokens": 8, "request_timeout_s": 30, "run_timeout_s": 120, "min_step_s": 0}


def _shape(value, path=""):
    """Every key path in a JSON value: the summary's structure, independent of timings."""
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in _shape(v, f"{path}/{k}")} | {path}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return {p for v in value for p in _shape(v, f"{path}[]")}
    return {path}


def _deterministic(summary: dict) -> dict:
    return {
        "valid": summary["valid"],
        "profile": summary["profile"],
        "requests": summary["requests"],
        "tokens": summary["tokens"],
        "steps": [(s["label"], s["profile"], s["rate"], s["succeeded"]) for s in summary["steps"]],
        "goodput": {k: summary["goodput"][k] for k in ("good", "total", "slos", "target")},
        "repeats": summary["repeats"]["count"],
        "target_rate": summary["schedule"]["target_rate"],
        "latency_n": {k: summary[k]["n"] for k in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")},
    }


def test_playbook_and_cli_agree(tmp_path):
    server = FakeOpenAI(ttft=0.01, itl=0.002)
    port, stop = serve_in_thread(server)
    try:
        vars_file = tmp_path / "vars.yml"
        vars_file.write_text(yaml.safe_dump({
            "llm_models": [{"name": "fixture", "source": "generated:tiny-llama"}],
            "vllm_base_port": port, "platform_reports_dir": str(tmp_path / "reports"),
            "benchmark_options": OPTIONS,
            **{f"llm_benchmark_{k}": v for k, v in COMMON.items()}}))
        env = dict(os.environ, LLMOPS_HOME=str(tmp_path / "home"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_HOME=os.path.join(ROOT, ".ansible"),
                   PATH=f"{BIN}:{os.environ.get('PATH', '')}")
        play = subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/bench.yml",
                               "-e", f"@{vars_file}"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert play.returncode == 0, play.stdout[-3000:] + play.stderr[-2000:]
        [pb_results] = glob.glob(str(tmp_path / "reports" / "*" / "fixture" / "results.json"))
        pb = json.load(open(pb_results))

        args = [sys.executable, "-m",
                "ansible_collections.llmops.platform.plugins.module_utils.cli.main", "bench",
                "--base-url", f"http://127.0.0.1:{port}", "--model", "fixture",
                "--endpoint", "chat", "-o", str(tmp_path / "cli"), "--quiet",
                "--server-args", json.dumps(pb["server_args"])]
        for key, value in {**COMMON, **OPTIONS}.items():
            args += ["--load-profile" if key == "profile" else "--" + key.replace("_", "-"), str(value)]
        cli = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env=dict(env, PYTHONPATH=os.path.join(ROOT, ".collections")),
                             check=False)
        assert cli.returncode == 0, cli.stderr[-3000:]
        cl = json.load(open(tmp_path / "cli" / "results.json"))
    finally:
        stop()

    assert pb["client_args"] == cl["client_args"]   # identical engine configuration
    assert pb["server_args"] == cl["server_args"] and pb["seeds"] == cl["seeds"]
    assert _shape(pb["summary"]) == _shape(cl["summary"])
    assert _deterministic(pb["summary"]) == _deterministic(cl["summary"])
    assert pb["summary"]["valid"] is True
    # Same prompts in the same order (seeded): compare request sizes per record.
    assert ([r["max_tokens"] for r in pb["records"]] == [r["max_tokens"] for r in cl["records"]])
