"""LoRA adapters on the kubernetes target (serving_render.py variant `adapters`): the server
flags, the download into the model cache, the mounts, and the routes to the base model."""
from __future__ import annotations

import json
import os
import sys

import pytest
import serving_render
from k8s_validate import load_documents, validate_paths

from ansible_collections.llmops.platform.plugins.module_utils import app_code

SHA = serving_render.ADAPTER_SHA


def _docs(step: int) -> list[dict]:
    home = serving_render.render_all()["adapters"]
    return [doc for _, doc in load_documents([os.path.join(home, f"rendered-{step}", "serving")])]


def _find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _pod(docs, name):
    return _find(docs, "Deployment", name)["spec"]["template"]["spec"]


@pytest.mark.parametrize("step", [0, 1])
def test_every_object_is_valid_in_1_29_and_current(step):
    home = serving_render.render_all()["adapters"]
    assert validate_paths([os.path.join(home, f"rendered-{step}", "serving")]) == []


def test_the_server_gets_lora_flags_for_each_adapter():
    args = _pod(_docs(0), "llama-8b")["containers"][0]["args"]
    assert "--enable-lora" in args
    assert args[args.index("--max-loras") + 1] == "2"
    assert args[args.index("--max-lora-rank") + 1] == "16"  # ranks are not readable here: vLLM's default
    assert args[args.index("--lora-modules"):] == [
        "--lora-modules", f"llama-8b-sql=/models/adapters/example-org--llama-8b-sql-lora/{SHA}",
        "llama-8b-ft=/storage/adapters/llama-8b-ft"]
    assert args[args.index("--served-model-name") + 1] == "llama-8b"


def test_hf_adapters_are_downloaded_into_the_cache_the_server_only_reads():
    docs = _docs(0)
    for name, model_repo, adapters in [
            ("llama-8b", "meta-llama/Llama-3.1-8B-Instruct",
             [("llama-8b-sql", "example-org/llama-8b-sql-lora", SHA)]),
            ("own-7b", None, [("own-7b-chat", "example-org/own-chat-lora", "main")])]:
        pod = _pod(docs, name)
        download = next(c for c in pod["initContainers"] if c["name"] == "model-download")
        env = {e["name"]: e.get("value") for e in download["env"]}
        assert env.get("LLM_MODEL_REPO") == model_repo
        listed = json.loads(env["LLM_ADAPTERS"])
        assert [(a["name"], a["repo"], a["revision"]) for a in listed] == adapters
        for adapter in listed:
            assert adapter["dir"].startswith("/models/adapters/") and adapter["marker"].startswith("/models/.llmops/")
        assert {"name": "model-cache", "mountPath": "/models"} in download["volumeMounts"]
        server = pod["containers"][0]
        assert {"name": "model-cache", "mountPath": "/models", "readOnly": True} in server["volumeMounts"]
        assert {"name": "models", "mountPath": "/storage", "readOnly": True} in server["volumeMounts"]
        assert {"name": "models", "persistentVolumeClaim": {"claimName": "team-models", "readOnly": True}} \
            in pod["volumes"]
        annotations = _find(docs, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        entry = next(m for m in serving_render.ADAPTER_MODELS if m["name"] == name)
        assert annotations["llmops.platform/adapters"] == ",".join(f"{a['name']}={a['source']}"
                                                                   for a in entry["adapters"])
    # The path: model with an hf: adapter still gets the download script and the cache.
    script = _find(docs, "ConfigMap", "llm-model-download")["data"]["download_model.py"]
    compile(script, "download_model.py", "exec")
    assert "LLM_ADAPTERS" in script


def test_the_router_sends_adapters_to_their_base_models_pods():
    sys.path[:0] = app_code.pythonpath("router", os.path.join(serving_render.ROOT, "apps")).split(os.pathsep)
    from llmops_router.config import parse_config  # noqa: E402

    raw = json.loads(_find(_docs(0), "ConfigMap", "llm-router")["data"]["router.json"])
    config = parse_config(raw)
    assert [(m.name, [a.name for a in m.adapters]) for m in config.models] == [
        ("llama-8b", ["llama-8b-sql", "llama-8b-ft"]), ("own-7b", ["own-7b-chat"])]
    assert config.policy_for("llama-8b-sql") == "prefix_aware" and config.policy_for("llama-8b-ft") == "queue_aware"
    assert raw["models"][0]["discovery"]["host"].startswith("llama-8b-replicas.")


def test_the_inference_gateway_route_matches_adapter_names_to_the_base_pool():
    route = _find(_docs(1), "HTTPRoute", "llm-router")
    by_pool = {rule["backendRefs"][0]["name"]: [h["value"] for m in rule["matches"] for h in m["headers"]]
               for rule in route["spec"]["rules"]}
    assert by_pool == {"llama-8b": ["llama-8b", "llama-8b-sql", "llama-8b-ft"], "own-7b": ["own-7b", "own-7b-chat"]}
