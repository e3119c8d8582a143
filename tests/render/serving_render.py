"""Run playbooks/serving.yml and playbooks/monitoring.yml for real (platform_target
kubernetes, platform_apply false) against the render inventories, once per pytest process.

Variants run in parallel, each into its own platform_home; a variant with several steps
re-renders into the same directory (how pruning is exercised). Secrets are set to
sentinels so tests can prove they never reach a rendered file.
"""
from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORIES = os.path.join(ROOT, "tests", "render", "inventories")
PLAYBOOKS = ["playbooks/serving.yml", "playbooks/monitoring.yml"]
HF_TOKEN_SENTINEL = "hf_SENTINELtokenNeverRendered0123"
GRAFANA_SENTINEL = "grafanaSENTINELpasswordNeverRendered"
GATEWAY_KEY_SENTINEL = "sk-SENTINELserviceKeyNeverRendered7"

SEED_002 = [
    {"name": "llama-8b", "source": "hf:meta-llama/Llama-3.1-8B-Instruct@0e9e39f249a16976918f6564b8830bc894c89659",
     "replicas": 2, "gpus": 1, "vllm_args": {"gpu_memory_utilization": 0.9}},
    {"name": "qwen-7b", "source": "hf:Qwen/Qwen2.5-7B-Instruct@a09a35458c702b33eeacc393d103063234e8bc28",
     "replicas": 2, "gpus": 1, "vllm_args": {"gpu_memory_utilization": 0.9}},
    {"name": "mistral-7b", "source": "hf:mistralai/Mistral-7B-Instruct-v0.3",
     "revision": "e0bc86c23ce5aae1db576c8cca6f06f1f73af2db", "replicas": 2, "gpus": 1,
     "vllm_args": {"gpu_memory_utilization": 0.9}},
]
MIXTRAL = {"name": "mixtral", "source": "hf:mistralai/Mixtral-8x7B-Instruct-v0.1@main", "replicas": 2,
           "gpus": 2, "vllm_args": {"tensor_parallel_size": 2}}

CPU_MODEL = {"name": "llama-1b", "source": "hf:meta-llama/Llama-3.2-1B-Instruct@main", "replicas": 1,
             "vllm_args": {"max_model_len": 2048}}
KEDA = {"enabled": True, "mode": "keda", "min_replicas": 1, "max_replicas": 4, "queue_target": 5,
        "polling_interval_s": 15, "cooldown_s": 600, "prometheus_url": "http://prom:9090",
        "models": {"qwen-7b": {"max_replicas": 6}}}
HPA = {"enabled": True, "mode": "hpa", "min_replicas": 2, "max_replicas": 3, "queue_target": 4,
       "polling_interval_s": 15, "cooldown_s": 300, "prometheus_url": "http://prom:9090", "models": {}}

# KVCached on seed 002's GPUs (docs/kvcached.md): every model but mistral-7b, qwen-7b with
# one more variable; then every model from a prebuilt image (install: image).
KVCACHED_PIP = {"enabled": True, "models": {"mistral-7b": {"enabled": False},
                                            "qwen-7b": {"env": {"KVCACHED_LOG_LEVEL": "DEBUG"}}}}
KVCACHED_IMAGE_REF = "registry.example.com/vllm-kvcached:v0.30.0-kvcached0.1.6"
KVCACHED_IMAGE = {"enabled": True, "install": "image", "image": KVCACHED_IMAGE_REF}

# Alert webhooks on Kubernetes: Secret references only (the URLs are never rendered).
ALERT_RECEIVERS = [{"name": "oncall", "webhook_url_secret": {"name": "alert-webhooks", "key": "oncall"}},
                   {"name": "audit", "webhook_url_secret": {"name": "alert-webhooks", "key": "audit"}, "send_resolved": False}]

# Step 1 of seed002 also switches the router to prefix_aware with two of its settings.
PREFIX_ROUTER = {"policy": "prefix_aware", "poll_interval_s": 1, "prefix_ttl_s": 120, "prefix_max_entries": 50000}

# name -> (inventory, [(extra vars, playbooks) per step]). Steps re-render into the same
# directory: step 1 of seed002 removes mistral-7b, adds mixtral (tensor parallel over 2 GPUs)
# turns on KEDA and switches the router to prefix_aware; step 1 of seed000 switches to the kube_proxy baseline (no router) with HPA,
# step 2 to a CPU-only cluster.
GIE_ROUTER = {"implementation": "gateway_api_inference", "gateway_name": "inference-gateway",
              "gateway_namespace": "gateways", "gateway_data_plane_namespace": "envoy-gateway-system"}

# LoRA adapters served unmerged (llm_models[].adapters): an hf: model with an hf: and a path:
# adapter, a path: model with an hf: adapter; step 1 routes them with the inference gateway.
ADAPTER_SHA = "3f4c0b1e2d5a69788796a5b4c3d2e1f00f1e2d3c"
ADAPTER_MODELS = [
    {"name": "llama-8b", "source": SEED_002[0]["source"], "replicas": 2, "gpus": 1,
     "vllm_args": {"gpu_memory_utilization": 0.9},
     "adapters": [{"name": "llama-8b-sql", "source": f"hf:example-org/llama-8b-sql-lora@{ADAPTER_SHA}"},
                  {"name": "llama-8b-ft", "source": "path:/storage/adapters/llama-8b-ft"}]},
    {"name": "own-7b", "source": "path:/storage/models/own-7b", "replicas": 1, "gpus": 1,
     "adapters": [{"name": "own-7b-chat", "source": "hf:example-org/own-chat-lora"}]},
]
ADAPTER_VARS = {"llm_models": ADAPTER_MODELS, "vllm_k8s_path_volume_claim": "team-models"}

RENDERS: dict[str, tuple[str, list[tuple[dict, list[str]]]]] = {
    "adapters": ("k8s_002", [({**ADAPTER_VARS, "llm_router": {"policy": "queue_aware", "poll_interval_s": 1,
                                                              "per_model_policy": {"llama-8b-sql": "prefix_aware"}}},
                              ["playbooks/serving.yml"]),
                             ({**ADAPTER_VARS, "llm_router": GIE_ROUTER}, ["playbooks/serving.yml"])]),
    # Gateway API Inference Extension instead of the router; step 1 renders it again unchanged.
    "gie": ("k8s_002", [({"llm_router": GIE_ROUTER}, ["playbooks/serving.yml"]),
                        ({"llm_router": GIE_ROUTER}, ["playbooks/serving.yml"])]),
    "seed002": ("k8s_002", [({}, PLAYBOOKS),
                            ({"llm_models": SEED_002[:2] + [MIXTRAL], "vllm_k8s_autoscaling": KEDA,
                              "llm_router": PREFIX_ROUTER},
                             ["playbooks/serving.yml"])]),
    "kvcached": ("k8s_002", [({"vllm_kvcached": KVCACHED_PIP}, ["playbooks/serving.yml"]),
                             ({"vllm_kvcached": KVCACHED_IMAGE}, ["playbooks/serving.yml"])]),
    "seed000": ("k8s_000", [({"monitoring_stack_values": {"prometheus": {"prometheusSpec": {"retention": "30d"}}},
                              "monitoring_alertmanager_receivers": ALERT_RECEIVERS,
                              "monitoring_watch_namespaces": ["monitoring", "team-observability"]}, PLAYBOOKS),
                            ({"llm_router": {"policy": "kube_proxy"}, "vllm_k8s_autoscaling": HPA},
                             ["playbooks/serving.yml"]),
                            # A cluster without GPUs: vLLM's CPU image, no GPU resources or placement.
                            ({"vllm_device": "cpu", "llm_models": [CPU_MODEL]}, ["playbooks/serving.yml"])]),
}


def _env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")),
                ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                HF_TOKEN=HF_TOKEN_SENTINEL, GRAFANA_ADMIN_PASSWORD=GRAFANA_SENTINEL,
                LLMOPS_GATEWAY_API_KEYS=GATEWAY_KEY_SENTINEL,
                PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def _script(name: str, home: str) -> str:
    """One shell script per variant: its steps run in order, each keeping a copy of the plans."""
    inventory, steps = RENDERS[name]
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    render = os.path.join(home, "rendered")
    lines = ["set -e"]
    for index, (extra, playbooks) in enumerate(steps):
        extra = {"platform_home": home, "platform_render_dir": render, **extra}
        path = os.path.join(home, f"extra-{index}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(extra, handle)
        cmd = [ansible_playbook, "-i", os.path.join(INVENTORIES, inventory), *playbooks, "-e", "@" + path]
        lines.append(" ".join(f"'{c}'" for c in cmd))
        lines.append(f"cp -r '{render}' '{home}/rendered-{index}'")
    return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def render_all() -> dict[str, str]:
    """Render every variant; returns name -> platform_home (a rendered-<step>/ copy per step)."""
    base = tempfile.mkdtemp(prefix="llmops-serving-render-")
    atexit.register(shutil.rmtree, base, True)
    procs = {}
    for name in RENDERS:
        home = os.path.join(base, name)
        os.makedirs(home)
        procs[name] = (home, subprocess.Popen(["bash", "-c", _script(name, home)], cwd=ROOT, env=_env(),
                                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    result = {}
    for name, (home, proc) in procs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"render {name} failed (rc {proc.returncode}):\n{out[-4000:]}")
        result[name] = home
    return result


def plan(home: str, step: int, role: str) -> dict[str, list[dict]]:
    with open(os.path.join(home, f"rendered-{step}", "plans", f"{role}.json"), encoding="utf-8") as handle:
        objects = json.load(handle)["objects"]
    with open(os.path.join(home, f"rendered-{step}", "plans", f"{role}.prune.json"), encoding="utf-8") as handle:
        prune = json.load(handle)["objects"]
    return {"objects": objects, "prune": prune}
