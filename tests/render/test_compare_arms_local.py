"""The compare role's per-model step (roles/compare/tasks/model.yml) and llm_compare with a
third arm, run by ansible-playbook against fake OpenAI replicas (tests/fakes/fake_openai.py)
on loopback: the shared_prefix workload reaches the benchmark, the replicas' prefix-cache
counters are scraped around every run, and the comparison has a `baseline vs prefix` section
with the hit rate next to TTFT. No vLLM, no router (the first fake stands in for it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from serving_render import ROOT, _env

sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
import fake_openai  # noqa: E402

PLAY = """
- name: Three arms through the compare role's model step
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    platform_target: local
    compare_root: "{root}"
    compare_router_url: "{router}"
    compare_dataset: shared_prefix
    compare_prefix_groups: 2
    compare_prefix_tokens: 40
    compare_scenario: ""
    compare_prompt_tokens: 8
    compare_max_tokens: 4
    compare_num_requests: 8
    compare_concurrency: 2
    compare_warmup_requests: 0
    compare_request_timeout_s: 30
    compare_run_timeout_s: 60
  tasks:
    - name: One run per arm
      ansible.builtin.include_role:
        name: llmops.platform.compare
        tasks_from: model.yml
      loop: [baseline, managed, prefix]
      loop_control:
        loop_var: arm
      vars:
        compare_step: [1, {{name: "{{{{ arm }}}}"}}]
        compare_model: chat
        compare_output_dir: "{root}/{{{{ arm }}}}/run1/chat"
        compare_scrape_cache: true
        compare_replica_urls: {replicas}
    - name: Compare
      llmops.platform.llm_compare:
        root: "{root}"
        others: [prefix]
      register: compared
    - name: Keep the verdicts
      ansible.builtin.copy:
        content: "{{{{ compared.verdicts | to_json }}}}"
        dest: "{root}/verdicts.json"
        mode: "0644"
"""


@pytest.fixture()
def replicas():
    fakes = [fake_openai.FakeOpenAI(f"r{i}", ttft=0.005, itl=0.001, models=("chat",)) for i in range(2)]
    stops = []
    for fake in fakes:
        port, stop = fake_openai.serve_in_thread(fake)
        fake.url = f"http://127.0.0.1:{port}"
        stops.append(stop)
    yield fakes
    for stop in stops:
        stop()


def test_three_arms_shared_prefix_and_prefix_cache_hit_rate(tmp_path, replicas):
    root = str(tmp_path / "run")
    urls = [f.url for f in replicas]
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(root=root, router=urls[0], replicas=json.dumps(urls)))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", str(play),
           "-e", f"ansible_python_interpreter={sys.executable}"]
    result = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for arm in ("baseline", "managed", "prefix"):
        run = os.path.join(root, arm, "run1", "chat")
        with open(os.path.join(run, "results.json"), encoding="utf-8") as handle:
            results = json.load(handle)
        assert results["summary"]["requests"]["success_rate"] == 1.0
        assert "shared_prefix" in json.dumps(results["config"])
        with open(os.path.join(run, "prefix_cache.json"), encoding="utf-8") as handle:
            cache = json.load(handle)
        # 8 requests over 2 system prompts, all through the first fake: only the first of each
        # group (in the first arm) misses.
        assert cache["queries"] > 0 and cache["hits"] > 0 and cache["skipped"] == []
        assert sorted(cache["replicas"]) == sorted(urls)
    md = open(os.path.join(root, "comparison.md"), encoding="utf-8").read()
    assert "# baseline vs managed" in md and "# baseline vs prefix" in md
    assert "| prefix-cache hit rate (%) |" in md
    verdicts = json.load(open(os.path.join(root, "verdicts.json"), encoding="utf-8"))
    assert verdicts[0].startswith("chat: ") and verdicts[1].startswith("prefix, chat: ")
