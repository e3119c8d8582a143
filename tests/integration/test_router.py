"""The router in front of two real vLLM CPU replicas of the tiny model (issue 9 acceptance).

Runtime: 248 s measured (2026-11-23, 2 cores at load ~10; two vLLM starts in parallel).
Its own port block (BASE_PORT + 600): the session's platform keeps the router, gateway and
monitoring ports of BASE_PORT's block until the session ends.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest
from conftest import BASE_PORT, Platform

ROUTER_BASE = BASE_PORT + 600
ROUTER_PORT = ROUTER_BASE - 100
MODELS = [{"name": "tiny-chat", "source": "generated:tiny-llama", "replicas": 2, "port": ROUTER_BASE + 10,
           "vllm_args": {"max_model_len": 1024, "max_num_seqs": 8}}]


def call(url, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("router")
    plat = Platform(str(base / "home"), str(base / "reports"), str(base / "vars.yml"))
    plat.write_vars(llm_models=MODELS, vllm_base_port=ROUTER_BASE, router_port=ROUTER_PORT,
                    gateway_port=ROUTER_BASE - 99, monitoring_prometheus_port=ROUTER_BASE - 98,
                    monitoring_alertmanager_port=ROUTER_BASE - 97,
                    llm_router={"policy": "queue_aware", "poll_interval_s": 0.5, "health_interval_s": 1})
    result = plat.play("playbooks/serving.yml")
    assert result.returncode == 0, result.stdout[-4000:]
    yield plat
    plat.play("playbooks/teardown.yml")


def test_routes_streams_and_scrapes_real_vllm(served):
    base = f"http://127.0.0.1:{ROUTER_PORT}"
    status, _, body = call(base + "/v1/models")
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["tiny-chat"]
    replicas = set()
    for i in range(6):
        status, headers, body = call(base + "/v1/chat/completions", {
            "model": "tiny-chat", "messages": [{"role": "user", "content": f"hi {i}"}],
            "max_tokens": 8, "stream": True, "stream_options": {"include_usage": True}})
        assert status == 200, body[:300]
        assert body.rstrip().endswith(b"data: [DONE]")
        replicas.add(headers["X-Llmops-Replica"])
    assert replicas == {"vllm-tiny-chat-0", "vllm-tiny-chat-1"}  # ties rotate
    time.sleep(1.5)  # at least one scrape of each replica's real /metrics
    _, _, metrics = call(base + "/metrics")
    text = metrics.decode()
    for replica in ("vllm-tiny-chat-0", "vllm-tiny-chat-1"):
        waiting = re.search(rf'llmops_router_replica_waiting{{model="tiny-chat",replica="{replica}"}} (\S+)', text)
        assert waiting and float(waiting.group(1)) >= 0, text[-2000:]  # -1 would mean not parsed
    status, _, body = call(base + "/v1/chat/completions", {"model": "nope", "messages": []})
    assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"


def test_a_stopped_replica_gets_no_traffic(served):
    from ansible_collections.llmops.platform.plugins.module_utils import local_process

    spec = local_process.ProcessSpec(name="vllm-tiny-chat-1", argv=[], state_dir=os.path.join(served.home, "run"),
                                     log_dir=os.path.join(served.home, "logs"))
    local_process.stop(spec)
    base = f"http://127.0.0.1:{ROUTER_PORT}"
    for _ in range(4):  # the first may hit the dead replica: ejected, retried on the other
        status, headers, body = call(base + "/v1/chat/completions", {
            "model": "tiny-chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4})
        assert status == 200, body[:300]
        assert headers["X-Llmops-Replica"] == "vllm-tiny-chat-0"
    _, _, health = call(base + "/health")
    assert json.loads(health)["models"]["tiny-chat"] == {"replicas": 2, "healthy": 1}
