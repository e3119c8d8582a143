"""The embedded default for real: vLLM CPU serving a generated tiny Llama, benchmarked.

Ordered: the tests share one running platform (starting vLLM costs ~50 s on 2 cores).
"""
from __future__ import annotations

import json
import os
import urllib.request

from conftest import changed_tasks

TWO_MODELS = [
    {"name": "tiny-chat", "source": "generated:tiny-llama", "replicas": 1},
    {"name": "tiny-b", "source": "generated:tiny-llama", "replicas": 1, "vllm_args": {"max_num_seqs": 16}},
]
# Tasks that produce new results by nature; everything else must be unchanged on a re-run.
RESULT_TASKS = {"Benchmark every served model (streaming chat, one step per load level)", "Update the report index"}


def post_json(url, body, timeout=60):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def test_preflight_rejects_bad_entries_before_starting_anything(platform):
    cases = [
        ([{"source": "generated:tiny-llama"}], "llm_models[0].name: is missing"),
        ([{"name": "a", "source": "generated:tiny-llama", "replicas": -1}], "llm_models[0].replicas"),
        ([{"name": "a", "source": "s3:bucket/model"}], "unknown source scheme 's3'"),
    ]
    for models, message in cases:
        platform.write_vars(llm_models=models)
        result = platform.play("site.yml")
        assert result.returncode != 0
        assert message in result.stdout, result.stdout[-2000:]
        # Caught by preflight or, earlier, by the argument validation that completes llm_models.
        assert "preflight" in result.stdout or "Invalid inventory:" in result.stdout
        assert not os.path.exists(os.path.join(platform.home, "run")), "preflight failure must start nothing"


def test_site_serves_and_benchmarks(platform):
    platform.write_vars(llm_models=TWO_MODELS)
    result = platform.play("site.yml")
    assert result.returncode == 0, result.stdout[-4000:]
    endpoints = platform.endpoints()
    assert [e["model"] for e in endpoints] == ["tiny-chat", "tiny-b"]
    answer = post_json(endpoints[0]["base_url"] + "/v1/chat/completions",
                       {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    assert answer["usage"]["completion_tokens"] == 5
    runs = sorted(r for r in os.listdir(platform.reports) if os.path.isdir(os.path.join(platform.reports, r)))
    run = runs[-1]
    for model in ("tiny-chat", "tiny-b"):
        results = json.load(open(os.path.join(platform.reports, run, model, "results.json")))
        summary = results["summary"]
        # A load curve: one step per concurrency, each with every request answered.
        assert [s["concurrency"] for s in summary["steps"]] == [1, 2, 4, 8]
        assert all(s["succeeded"] == 8 and s["failed"] == 0 for s in summary["steps"])
        assert summary["requests"]["succeeded"] == 8
        # Output tokens come from the server's usage: ignore_eos makes them exact.
        assert summary["tokens"]["output_total"] == 8 * 16
        assert 0 < summary["ttft_ms"]["median"] < summary["e2e_ms"]["median"]
        assert summary["throughput"]["output_tokens_per_s"] > 0
        assert os.path.exists(os.path.join(platform.reports, run, model, "progress.log"))
    index = open(os.path.join(platform.reports, "index.html")).read()
    assert "tiny-chat" in index and "<svg" in index
    check_report_in_chromium(os.path.join(platform.reports, run, "tiny-chat", "report.html"))


def check_report_in_chromium(report: str) -> None:
    """The run report as a user sees it: a curve, not a dot; no chart with one point."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    "apps", "dashboard"))
    from screenshot import CHROMIUM, capture, png_size

    if not os.access(CHROMIUM, os.X_OK) and os.environ.get("CI") != "true":
        return  # the browser view is checked where Chromium is installed (make test installs it)
    png = report.replace(".html", ".png")
    shot = capture("file://" + report, png, wait_for=["Latency under load", "Load steps"])
    text = shot.text
    for label in ("concurrency 1", "concurrency 2", "concurrency 4", "concurrency 8", "results.json", "all runs"):
        assert label in text, label
    assert "a single point" not in text and "no data" not in text.lower()
    width, height = png_size(png)
    assert width >= 1000 and height >= 1000 and os.path.getsize(png) > 20000


def test_second_run_changes_nothing_but_results(platform):
    result = platform.play("site.yml", json_output=True)
    assert result.returncode == 0, result.stdout[-3000:]
    changed = set(changed_tasks(result.json))
    assert changed <= RESULT_TASKS, f"not idempotent: {changed - RESULT_TASKS}"


def test_each_tag_alone(platform):
    for tag in ("bench", "serving", "vllm", "preflight", "benchmark"):
        result = platform.play("site.yml", "--tags", tag, json_output=True)
        assert result.returncode == 0, (tag, result.stdout[-3000:])
        assert set(changed_tasks(result.json)) <= RESULT_TASKS, tag
    bench_only = platform.play("site.yml", "--tags", "bench", json_output=True)
    assert "Benchmark every served model (streaming chat, one step per load level)" in changed_tasks(bench_only.json)


def test_changing_one_entry_restarts_only_its_replicas(platform):
    before = {e["name"]: platform.status(e["name"])["supervisor_pid"] for e in platform.endpoints()}
    models = [dict(m) for m in TWO_MODELS]
    models[1] = {**models[1], "vllm_args": {"max_num_seqs": 8}}
    platform.write_vars(llm_models=models)
    result = platform.play("site.yml", "--tags", "serving")
    assert result.returncode == 0, result.stdout[-3000:]
    after = {e["name"]: platform.status(e["name"])["supervisor_pid"] for e in platform.endpoints()}
    assert after["vllm-tiny-chat-0"] == before["vllm-tiny-chat-0"]
    assert after["vllm-tiny-b-0"] != before["vllm-tiny-b-0"]


def test_bad_argument_fails_with_log_tail_and_leaves_nothing(platform):
    models = TWO_MODELS[:1] + [{"name": "broken", "source": "generated:tiny-llama", "vllm_args": {"no_such_flag": 1}}]
    platform.write_vars(llm_models=models, vllm_ready_timeout_s=300)
    result = platform.play("site.yml", "--tags", "serving")
    assert result.returncode != 0
    assert "vllm-broken-0 exited before it became ready" in result.stdout
    assert "no-such-flag" in result.stdout  # the log tail shows vLLM's own complaint
    status = platform.status("vllm-broken-0")
    assert status["state"] == "fatal"
    pid = status.get("child_pid")
    assert not pid or not os.path.exists(f"/proc/{pid}")
    # The healthy model keeps serving.
    assert platform.status("vllm-tiny-chat-0")["ready"] is True


def test_removed_model_is_pruned_and_teardown_stops_all(platform):
    platform.write_vars(llm_models=TWO_MODELS[:1])
    assert platform.play("site.yml", "--tags", "serving").returncode == 0
    assert platform.status("vllm-tiny-b-0")["state"] == "stopped"
    # The local Prometheus follows: the removed replica is no longer a scrape target.
    with open(os.path.join(platform.home, "monitoring", "prometheus", "targets", "vllm.json"), encoding="utf-8") as handle:
        assert [g["labels"]["pod"] for g in json.load(handle)] == ["vllm-tiny-chat-0"]
    result = platform.play("playbooks/teardown.yml")
    assert result.returncode == 0, result.stdout[-2000:]
    assert platform.status("vllm-tiny-chat-0")["state"] == "stopped"


def test_no_model_serves_nothing_and_says_so(platform):
    platform.write_vars(llm_models=[])
    result = platform.play("site.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "llm_models is empty" in result.stdout and "Nothing to benchmark" in result.stdout
    assert "does not exist" not in result.stdout
