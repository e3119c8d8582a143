"""Fine-tuning as part of the platform, for real on the local target (CPU).

site.yml with the fine-tuning layer on: LLaMA-Factory trains a LoRA adapter on the tiny model
(40 of the shipped 50 alpaca rows), one vLLM server scores base and adapter on the 10 held-out
rows (prompt log-probabilities) and benchmarks both, the gate promotes the adapter only when
its held-out NLL is lower beyond noise, MLflow registers the promoted version, and the serving
layer serves the adapter on the base model's replicas: through the router, the adapter's name
answers differently from the base. A second site.yml run changes nothing but results. Then
playbooks/finetune.yml in merged mode (no retraining) merges, verifies and serves the merged
model, and starts the WebUI. Ports 18700-18799 and 21100-21199; everything is stopped at the end.
"""
from __future__ import annotations

import glob
import json
import os
import urllib.request

import pytest
from conftest import Platform, changed_tasks

MLFLOW, EVAL, SERVE, WEBUI, ROUTER = 21100, 21111, 21110, 21120, 18700
# Tasks that produce new results by nature (the benchmark layer); nothing else may change.
RESULT_TASKS = {"Benchmark every served model (streaming chat, one step per load level)", "Update the report index"}


def _call(url: str, body: dict | None = None, timeout: int = 120) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _greedy(model: str, prompt: str) -> str:
    answer = _call(f"http://127.0.0.1:{ROUTER}/v1/chat/completions", {
        "model": model, "temperature": 0, "max_tokens": 24, "messages": [{"role": "user", "content": prompt}]})
    assert answer["model"] == model
    return answer["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def plat(tmp_path_factory):
    base = tmp_path_factory.mktemp("finetune")
    platform = Platform(str(base / "home"), str(base / "reports"), str(base / "vars.yml"))
    platform.write_vars(
        llm_finetune_enabled=True, vllm_base_port=18710, router_port=ROUTER, gateway_port=ROUTER + 1,
        monitoring_prometheus_port=ROUTER + 2, monitoring_alertmanager_port=ROUTER + 3,
        mlflow_port=MLFLOW, llm_finetune_eval_port=EVAL, llm_finetune_serve_port=SERVE,
        llama_factory_webui_port=WEBUI,
        llm_models=[{"name": "tiny-chat", "source": "generated:tiny-llama", "replicas": 1,
                     "vllm_args": {"max_model_len": 1024}}],
        llm_benchmark_concurrency=[2], llm_benchmark_num_requests=4)
    yield platform
    platform.play("playbooks/teardown.yml")


def test_site_trains_evaluates_promotes_and_serves_the_adapter(plat):
    first = plat.play("site.yml", timeout=2400)
    assert first.returncode == 0, first.stdout[-5000:]

    outcome = json.load(open(os.path.join(plat.home, "run", "finetune.json")))
    evaluation = json.load(open(outcome["report"]))
    gate = evaluation["gate"]
    # The tiny random model learns its training distribution: lower held-out NLL, beyond noise.
    assert outcome["promoted"] is True, evaluation["reason"]
    assert gate["examples"] == 10 and gate["ci"][1] < -gate["min_gain"]
    assert gate["tuned_perplexity"] < gate["base_perplexity"]
    assert set(evaluation["bench"]) == {"base", "tuned"}
    assert all(s["requests"]["succeeded"] == 16 for s in evaluation["bench"].values())

    # The serving layer serves the promoted adapter on tiny-chat's replica; the router routes by its name.
    listed = {m["id"] for m in _call(f"http://127.0.0.1:{ROUTER}/v1/models")["data"]}
    assert {"tiny-chat", "tiny-chat-ft"} <= listed
    prompt = "What is the capital of Spain?"
    assert _greedy("tiny-chat-ft", prompt) != _greedy("tiny-chat", prompt)
    # No second server: the adapter runs in the base model's vLLM process, listed by vLLM itself.
    served = {m["id"] for m in _call(plat.endpoints()[0]["base_url"] + "/v1/models")["data"]}
    assert served == {"tiny-chat", "tiny-chat-ft"}

    # MLflow: the training run carries the evaluation; the promoted adapter is a registered version.
    api = f"http://127.0.0.1:{MLFLOW}/api/2.0/mlflow"
    versions = _call(f"{api}/model-versions/search?filter=name%3D%27tiny-chat-ft%27")["model_versions"]
    assert len(versions) == 1
    tags = {t["key"]: t["value"] for t in versions[0]["tags"]}
    assert tags["llmops.inputs_hash"] == evaluation["hash"] and "llmops.eval_delta_nll" in tags
    run = _call(f"{api}/runs/get?run_id={versions[0]['run_id']}")["run"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["eval_delta_nll"] == pytest.approx(gate["delta_nll"])
    loss = _call(f"{api}/metrics/get-history?run_id={versions[0]['run_id']}&metric_key=loss")["metrics"]
    assert len(loss) >= 10 and loss[-1]["value"] < loss[0]["value"]

    index = open(os.path.join(plat.reports, "index.html")).read()
    assert "Fine-tuning: base vs fine-tuned" in index and "<b>promoted</b>" in index

    # Same inputs: no retraining, no re-evaluation, no restart; only the benchmark writes results.
    run_dir = os.path.dirname(evaluation["adapter"])
    trained_at = os.path.getmtime(os.path.join(run_dir, ".trained"))
    second = plat.play("site.yml", json_output=True, timeout=1500)
    assert second.returncode == 0, second.stdout[-4000:]
    assert set(changed_tasks(second.json)) <= RESULT_TASKS, changed_tasks(second.json)
    assert os.path.getmtime(os.path.join(run_dir, ".trained")) == trained_at


def test_merged_mode_merges_verifies_and_serves_without_retraining(plat):
    run_dir = os.path.dirname(json.load(open(glob.glob(os.path.join(plat.reports, "finetune", "*", "eval.json"))[0]))
                              ["adapter"])
    trained_at = os.path.getmtime(os.path.join(run_dir, ".trained"))
    merged = plat.play("playbooks/finetune.yml", "-e", "llama_factory_serve_mode=merged",
                       "-e", "llama_factory_webui=true", timeout=1800)
    assert merged.returncode == 0, merged.stdout[-4000:]
    assert os.path.getmtime(os.path.join(run_dir, ".trained")) == trained_at
    verify = json.load(open(os.path.join(run_dir, "verify.json")))
    assert verify["passed"] and verify["probe"]["stopped"], verify
    answer = _call(f"http://127.0.0.1:{SERVE}/v1/chat/completions", {
        "model": "tiny-chat-ft", "max_tokens": 64, "temperature": 0,
        "messages": [{"role": "user", "content": "What is the capital of Italy?"}]})
    assert answer["choices"][0]["finish_reason"] == "stop" and answer["usage"]["completion_tokens"] < 64
    with urllib.request.urlopen(f"http://127.0.0.1:{WEBUI}/", timeout=30) as response:
        assert response.status == 200
