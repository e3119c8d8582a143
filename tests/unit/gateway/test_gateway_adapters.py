"""The chat page's model list and a chat under a LoRA adapter's name, through the gateway and
the real router (apps/router) in front of a fake replica of the base model."""
from __future__ import annotations

import json
import os
import sys

from fake_openai import FakeOpenAI
from servers import Loop
from test_gateway import call

_ROUTER = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "apps", "router"))
if _ROUTER not in sys.path:
    sys.path.insert(0, _ROUTER)

from llmops_router.config import parse_config as router_config  # noqa: E402
from llmops_router.server import create_app as router_app  # noqa: E402


def test_adapters_are_listed_and_answered_by_the_base_models_replica():
    loop = Loop()
    try:
        replica = FakeOpenAI("tiny-chat-0", ttft=0.0, itl=0.0, tokens=3, models=["tiny-chat", "tiny-chat-ft"])
        loop.start_upstream(replica)
        router_port = loop._start(router_app(router_config({"policy": "round_robin", "models": [
            {"name": "tiny-chat", "replicas": [{"name": "tiny-chat-0", "url": replica.url}],
             "adapters": [{"name": "tiny-chat-ft"}]}]})))
        gateway = f"http://127.0.0.1:{loop.start_gateway({'upstream_url': f'http://127.0.0.1:{router_port}'})}"
        status, _, body = call(gateway + "/v1/models")
        assert status == 200
        assert [(m["id"], m.get("parent")) for m in json.loads(body)["data"]] == [
            ("tiny-chat", None), ("tiny-chat-ft", "tiny-chat")]
        status, headers, body = call(gateway + "/v1/chat/completions", {
            "model": "tiny-chat-ft", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200 and headers["X-Llmops-Replica"] == "tiny-chat-0"
        assert json.loads(body)["model"] == "tiny-chat-ft" and replica.bodies[-1]["model"] == "tiny-chat-ft"
    finally:
        loop.stop()

