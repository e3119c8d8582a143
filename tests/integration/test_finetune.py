"""The fine-tuning pipeline for real on the local target (CPU): playbooks/finetune.yml
trains a LoRA on the tiny model with the shipped 50-row alpaca dataset, merges, verifies,
starts MLflow (SQLite), vLLM on the merged model and the WebUI; a chat completion must stop by
itself. A second run changes nothing (no retraining). Ports 21100-21199; everything
started here is stopped at the end.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from conftest import ROOT, changed_tasks

BIN = os.path.dirname(sys.executable)
MLFLOW_PORT, SERVE_PORT, WEBUI_PORT = 21100, 21110, 21120


def _get(url: str, body: dict | None = None, timeout: int = 120) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("finetune")
    home = str(base / "home")
    vars_file = base / "vars.json"
    vars_file.write_text(json.dumps({"mlflow_port": MLFLOW_PORT, "llm_finetune_serve_port": SERVE_PORT,
                                     "llama_factory_webui": True, "llama_factory_webui_port": WEBUI_PORT,
                                     "vllm_ready_timeout_s": 600}))
    env = dict(os.environ, LLMOPS_HOME=home, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.path.join(ROOT, ".ansible"), PATH=f"{BIN}:{os.environ.get('PATH', '')}",
               ANSIBLE_NOCOLOR="1")

    def play(json_output: bool = False):
        run_env = dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json") if json_output else env
        return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "inventories/local",
                               "playbooks/finetune.yml", "-e", f"@{vars_file}"], cwd=ROOT, env=run_env,
                              capture_output=True, text=True, timeout=2400, check=False)

    yield home, play
    # Stop every process this test started (mlflow, the merged model's vLLM), by name.
    run_dir = os.path.join(home, "run")
    for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
        if os.path.isdir(os.path.join(run_dir, name)):
            subprocess.run([os.path.join(BIN, "ansible"), "localhost", "-i", "inventories/local", "-m",
                            "llmops.platform.llm_process", "-a",
                            f"name={name} state=stopped state_dir={run_dir} log_dir={home}/logs"],
                           cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)


def test_train_merge_verify_serve_then_idempotent(run):
    home, play = run
    first = play()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]

    endpoints = json.load(open(os.path.join(home, "run", "finetune-endpoints.json")))
    run_dir = os.path.dirname(endpoints["merged"])
    verify = json.load(open(os.path.join(run_dir, "verify.json")))
    assert verify["passed"] and verify["probe"]["stopped"], verify

    model = endpoints["models"][0]
    assert model["port"] == SERVE_PORT
    answer = _get(f"http://127.0.0.1:{SERVE_PORT}/v1/chat/completions", {
        "model": model["model"], "max_tokens": 64, "temperature": 0,
        "messages": [{"role": "user", "content": "What is the capital of Italy?"}]})
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    assert answer["usage"]["completion_tokens"] < 64

    # MLflow has the run, its loss curve, and the verify result recorded on it.
    uri = f"http://127.0.0.1:{MLFLOW_PORT}/api/2.0/mlflow"
    exp = _get(f"{uri}/experiments/get-by-name?experiment_name=llmops-finetune")["experiment"]
    runs = _get(f"{uri}/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
    assert len(runs) == 1
    tags = {t["key"]: t["value"] for t in runs[0]["data"]["tags"]}
    assert tags["llmops.verify_passed"] == "true" and tags["llmops.merged_model_path"] == endpoints["merged"]
    history = _get(f"{uri}/metrics/get-history?run_id={runs[0]['info']['run_id']}&metric_key=loss")["metrics"]
    assert len(history) >= 10
    assert history[-1]["value"] < history[0]["value"]

    # The WebUI flag started LLaMA-Factory's Gradio UI.
    with urllib.request.urlopen(f"http://127.0.0.1:{WEBUI_PORT}/", timeout=30) as resp:
        assert resp.status == 200

    # Same inputs: nothing changes, nothing retrains, the server keeps running.
    trained_at = os.path.getmtime(os.path.join(run_dir, ".trained"))
    second = play(json_output=True)
    assert second.returncode == 0, second.stdout[-4000:]
    assert changed_tasks(json.loads(second.stdout)) == []
    assert os.path.getmtime(os.path.join(run_dir, ".trained")) == trained_at
    runs = [d for d in os.listdir(os.path.dirname(run_dir)) if d.startswith("tiny-chat-sft-")]
    assert runs == [os.path.basename(run_dir)]
