"""Serving layer on the kubernetes target: the rendered tree of seeds 002 and 000.

The playbooks run for real (serving_render.py); every object is validated against the
1.29 and current Kubernetes schemas and against the platform's policies.
"""
from __future__ import annotations

import copy
import json
import os
import sys

import app_pods
import k8s_policy as policy
import pytest
import serving_render
import yaml
from k8s_validate import load_documents, validate_object, validate_paths

from ansible_collections.llmops.platform.plugins.module_utils import app_code

ROOT = serving_render.ROOT
VERSIONS = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]


def _docs(name: str, step: int = 0, sub: str = "serving") -> list[dict]:
    home = serving_render.render_all()[name]
    return [doc for _, doc in load_documents([os.path.join(home, f"rendered-{step}", sub)])]


def _find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.fixture(scope="module")
def seed002():
    return _docs("seed002")


@pytest.fixture(scope="module")
def seed000():
    return _docs("seed000")


@pytest.mark.parametrize("name,step", [("seed002", 0), ("seed002", 1), ("seed000", 0), ("seed000", 1)])
def test_every_object_is_valid_in_1_29_and_current(name, step):
    home = serving_render.render_all()[name]
    assert validate_paths([os.path.join(home, f"rendered-{step}", "serving")]) == []


def test_a_broken_field_fails_validation(seed002):
    deployment = copy.deepcopy(_find(seed002, "Deployment", "llama-8b"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")  # misspelt field
    assert validate_object(deployment)
    deployment = copy.deepcopy(_find(seed002, "Deployment", "llama-8b"))
    deployment["spec"]["replicas"] = "two"
    assert validate_object(deployment)


def test_seed002_has_each_models_objects(seed002):
    names = {(d["kind"], d["metadata"]["name"]) for d in seed002}
    for model in ("llama-8b", "qwen-7b", "mistral-7b"):
        assert {("Deployment", model), ("Service", model), ("Service", f"{model}-replicas"),
                ("PodDisruptionBudget", model)} <= names
        deployment = _find(seed002, "Deployment", model)
        assert deployment["spec"]["replicas"] == 2
        assert deployment["metadata"]["namespace"] == "managed"
    assert ("Deployment", "llm-router") in names
    # Autoscaling is off by default.
    assert not [d for d in seed002 if d["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]


def test_no_service_is_named_vllm_and_vllm_pods_get_no_service_links(seed002, seed000):
    for docs in (seed002, seed000):
        for svc in policy.by_kind(docs, "Service"):
            assert svc["metadata"]["name"] != "vllm"
        for deployment in policy.by_kind(docs, "Deployment"):
            assert policy.pod_spec(deployment)["enableServiceLinks"] is False


def test_images_are_pinned_and_match_the_versions_file(seed002, seed000):
    for docs in (seed002, seed000):
        assert policy.image_problems(docs) == []
        for deployment in policy.by_kind(docs, "Deployment"):
            if deployment["metadata"]["name"] != "llm-router":
                assert policy.pod_spec(deployment)["containers"][0]["image"] == VERSIONS["vllm_gpu_image"]
    assert ":v" in VERSIONS["vllm_gpu_image"] and ":v" in VERSIONS["vllm_cpu_image"]
    broken = copy.deepcopy(seed002)
    _find(broken, "Deployment", "qwen-7b")["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:latest"
    assert policy.image_problems(broken)


def test_resources_and_gpus(seed002):
    assert policy.resource_problems(seed002) == []
    for model in ("llama-8b", "qwen-7b", "mistral-7b"):
        container = policy.pod_spec(_find(seed002, "Deployment", model))["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert policy.pod_spec(_find(seed002, "Deployment", model))["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in \
            policy.pod_spec(_find(seed002, "Deployment", model))["tolerations"]
    broken = copy.deepcopy(seed002)
    del policy.pod_spec(_find(broken, "Deployment", "llama-8b"))["containers"][0]["resources"]["requests"]["nvidia.com/gpu"]
    assert policy.resource_problems(broken)


def test_tensor_parallel_model_gets_its_gpus_and_flag():
    docs = _docs("seed002", step=1)
    container = policy.pod_spec(_find(docs, "Deployment", "mixtral"))["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"


def test_probes_allow_slow_loads_and_busy_pods(seed002, seed000):
    for docs in (seed002, seed000):
        for deployment in policy.by_kind(docs, "Deployment"):
            if deployment["metadata"]["name"] in ("llm-router", "llm-gateway"):
                continue  # not model servers: they start in seconds
            assert policy.probe_problems(deployment) == []
            startup = policy.pod_spec(deployment)["containers"][0]["startupProbe"]
            assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    broken = copy.deepcopy(_find(seed000, "Deployment", "llama-3b"))
    policy.pod_spec(broken)["containers"][0]["startupProbe"]["failureThreshold"] = 6
    assert policy.probe_problems(broken)


def test_pods_run_non_root_without_privileges(seed002):
    for deployment in policy.by_kind(seed002, "Deployment"):
        assert policy.security_problems(deployment) == []
    broken = copy.deepcopy(_find(seed002, "Deployment", "llm-router"))
    policy.pod_spec(broken)["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert policy.security_problems(broken)


def test_selectors_match_pod_labels(seed002, seed000):
    for docs in (seed002, seed000, _docs("seed002", 1), _docs("seed000", 1)):
        assert policy.selector_problems(docs) == []
    broken = copy.deepcopy(seed002)
    _find(broken, "Service", "qwen-7b")["spec"]["selector"]["llmops.platform/model"] = "qwen"
    assert policy.selector_problems(broken)


def test_pdbs_never_block_drains(seed002, seed000):
    for docs in (seed002, seed000):
        for pdb in policy.by_kind(docs, "PodDisruptionBudget"):
            assert pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"]


def test_network_policies_default_deny_and_guard_vllm_router_and_gateway(seed002):
    # Who reaches what is computed in test_network_reachability.py; here: which policies exist.
    names = sorted(d["metadata"]["name"] for d in policy.by_kind(seed002, "NetworkPolicy"))
    assert names == ["default-deny-ingress", "llm-gateway-ingress", "llm-router-ingress", "vllm-ingress"]
    assert all(d["metadata"]["namespace"] == "managed" for d in policy.by_kind(seed002, "NetworkPolicy"))
    vllm = _find(seed002, "NetworkPolicy", "vllm-ingress")
    peers = [peer for rule in vllm["spec"]["ingress"] for peer in rule["from"]]
    # Every peer names its namespace by the API server's label; none trusts a client label.
    assert all(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in peers)
    assert "llmops.platform/llm-client" not in str(vllm)
    # Without a router (kube_proxy) the router's and gateway's policies go with them.
    kube_proxy = _docs("seed000", 1)
    assert {d["metadata"]["name"] for d in policy.by_kind(kube_proxy, "NetworkPolicy")} == {
        "default-deny-ingress", "vllm-ingress"}


def test_hf_models_download_once_pinned_with_token_from_secret(seed002):
    cache = _find(seed002, "PersistentVolumeClaim", "llm-model-cache")
    assert cache["spec"]["accessModes"] == ["ReadWriteMany"]
    script = _find(seed002, "ConfigMap", "llm-model-download")["data"]["download_model.py"]
    # A finished download leaves a marker; every later start skips the network (and the hub import).
    assert "if marker.exists():" in script and "return False" in script
    compile(script, "download_model.py", "exec")
    revisions = {"llama-8b": "0e9e39f249a16976918f6564b8830bc894c89659",
                 "mistral-7b": "e0bc86c23ce5aae1db576c8cca6f06f1f73af2db"}
    for model, revision in revisions.items():
        spec = policy.pod_spec(_find(seed002, "Deployment", model))
        (init,) = spec["initContainers"]
        env = {e["name"]: e for e in init["env"]}
        assert env["LLM_MODEL_REVISION"]["value"] == revision
        assert env["LLM_MODEL_MARKER"]["value"].endswith("@" + revision)
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "llm-hf-token", "key": "token", "optional": True}
        args = spec["containers"][0]["args"]
        assert args[args.index("--revision") + 1] == revision
        main_env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert main_env["HF_HUB_OFFLINE"] == "1" and "HF_TOKEN" not in main_env
        assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "llm-model-cache"}} in spec["volumes"]


def test_no_secret_value_reaches_a_rendered_file():
    for home in serving_render.render_all().values():
        for folder, _, files in os.walk(home):
            for name in files:
                text = open(os.path.join(folder, name), encoding="utf-8", errors="replace").read()
                assert serving_render.HF_TOKEN_SENTINEL not in text, name
                assert serving_render.GRAFANA_SENTINEL not in text, name
                assert "kind: Secret" not in text, name


def test_router_config_is_what_the_router_reads(seed002):
    sys.path[:0] = app_code.pythonpath("router", os.path.join(ROOT, "apps")).split(os.pathsep)
    from llmops_router.config import parse_config  # noqa: E402

    raw = json.loads(_find(seed002, "ConfigMap", "llm-router")["data"]["router.json"])
    config = parse_config(raw)
    assert config.policy == "queue_aware" and config.poll_interval_s == 1
    assert [m.name for m in config.models] == ["llama-8b", "qwen-7b", "mistral-7b"]
    assert raw["models"][0]["discovery"]["host"] == "llama-8b-replicas.managed.svc.cluster.local"
    router = _find(seed002, "Deployment", "llm-router")
    assert router["spec"]["template"]["metadata"]["annotations"]["llmops.platform/config-sha256"]
    assert _find(seed002, "Service", "llm-router")["spec"]["ports"][0]["port"] == raw["port"]


def test_prefix_aware_router_settings_reach_the_router():
    sys.path[:0] = app_code.pythonpath("router", os.path.join(ROOT, "apps")).split(os.pathsep)
    from llmops_router.config import parse_config  # noqa: E402

    docs = _docs("seed002", 1)
    config = parse_config(json.loads(_find(docs, "ConfigMap", "llm-router")["data"]["router.json"]))
    assert config.policy == "prefix_aware"
    assert (config.prefix_ttl_s, config.prefix_max_entries) == (120, 50000)
    assert config.prefix_block_chars == 128  # unset: the router's default
    assert [m.name for m in config.models] == ["llama-8b", "qwen-7b", "mixtral"]


def test_seed000_single_gpu_node():
    docs = _docs("seed000")
    deployment = _find(docs, "Deployment", "llama-3b")
    assert deployment["spec"]["replicas"] == 1
    assert _find(docs, "PersistentVolumeClaim", "llm-model-cache")["spec"]["accessModes"] == ["ReadWriteOnce"]
    args = policy.pod_spec(deployment)["containers"][0]["args"]
    for flag, value in (("--max-model-len", "4096"), ("--gpu-memory-utilization", "0.8"),
                        ("--max-num-seqs", "64"), ("--block-size", "16")):
        assert args[args.index(flag) + 1] == value
    assert _find(docs, "ConfigMap", "llm-router")["data"]["router.json"].count('"round_robin"') == 1


def test_removing_a_model_prunes_exactly_its_objects_and_adding_one_adds_exactly_its_own():
    home = serving_render.render_all()["seed002"]
    before, after = serving_render.plan(home, 0, "vllm"), serving_render.plan(home, 1, "vllm")
    keys = lambda objs: {(o["kind"], o["name"]) for o in objs}  # noqa: E731
    assert keys(after["prune"]) == {("Deployment", "mistral-7b"), ("Service", "mistral-7b"),
                                    ("Service", "mistral-7b-replicas"), ("PodDisruptionBudget", "mistral-7b")}
    added = keys(after["objects"]) - keys(before["objects"])
    assert added == {("Deployment", "mixtral"), ("Service", "mixtral"), ("Service", "mixtral-replicas"),
                     ("PodDisruptionBudget", "mixtral"), ("ScaledObject", "llama-8b"), ("ScaledObject", "qwen-7b"),
                     ("ScaledObject", "mixtral")}
    assert not os.path.exists(os.path.join(home, "rendered-1", "serving", "vllm", "model-mistral-7b.yaml"))
    assert before["prune"] == []


def test_keda_scales_on_queue_depth_and_leaves_replicas_to_it():
    docs = _docs("seed002", 1)
    for model in ("llama-8b", "qwen-7b", "mixtral"):
        scaled = _find(docs, "ScaledObject", model)
        assert "replicas" not in _find(docs, "Deployment", model)["spec"]
        (trigger,) = scaled["spec"]["triggers"]
        assert "vllm:num_requests_waiting" in trigger["metadata"]["query"]
        assert f'model_name="{model}"' in trigger["metadata"]["query"]
        assert scaled["spec"]["scaleTargetRef"]["name"] == model
    assert _find(docs, "ScaledObject", "qwen-7b")["spec"]["maxReplicaCount"] == 6
    assert _find(docs, "ScaledObject", "llama-8b")["spec"]["maxReplicaCount"] == 4


def test_kube_proxy_baseline_removes_the_router_and_hpa_scales_on_queue_depth():
    home = serving_render.render_all()["seed000"]
    docs = _docs("seed000", 1)
    assert not [d for d in docs if d["metadata"]["name"] == "llm-router"]
    pruned = {(o["kind"], o["name"]) for o in serving_render.plan(home, 1, "router")["prune"]}
    assert pruned == {("ConfigMap", "llm-router"), ("ConfigMap", "llm-router-code"),
                      ("Deployment", "llm-router"), ("Service", "llm-router"),
                      ("PodDisruptionBudget", "llm-router"), ("NetworkPolicy", "llm-router-ingress")}
    hpa = _find(docs, "HorizontalPodAutoscaler", "llama-3b")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 3)
    # The model's Service is the entry point now: kube-proxy spreads connections.
    assert _find(docs, "Service", "llama-3b")["spec"]["type"] == "ClusterIP"


def test_cpu_cluster_uses_the_cpu_image_and_no_gpu():
    docs = _docs("seed000", 2)
    assert validate_paths([os.path.join(serving_render.render_all()["seed000"], "rendered-2", "serving")]) == []
    spec = policy.pod_spec(_find(docs, "Deployment", "llama-1b"))
    container = spec["containers"][0]
    assert container["image"] == VERSIONS["vllm_cpu_image"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "nodeSelector" not in spec and "tolerations" not in spec
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    args = container["args"]
    assert args[args.index("--block-size") + 1] == "32" and "--gpu-memory-utilization" not in args
    # The seed000 model of the earlier steps is pruned from the plan.
    pruned = {(o["kind"], o["name"]) for o in serving_render.plan(serving_render.render_all()["seed000"], 2, "vllm")["prune"]}
    assert ("Deployment", "llama-3b") in pruned and ("HorizontalPodAutoscaler", "llama-3b") in pruned


def test_router_code_ships_in_a_configmap_and_runs_from_it(seed002, tmp_path):
    """The rendered pod needs no router image: the vLLM image's python3 runs the router and
    llmops_common packages from the code ConfigMap. Lay that ConfigMap out as the pod's volume
    does and start the router from it."""
    code = _find(seed002, "ConfigMap", "llm-router-code")["data"]
    shipped = app_code.code_files("router", os.path.join(ROOT, "apps"))
    assert sorted(code) == sorted(app_code.configmap_key(f) for f in shipped)
    assert {"llmops_router.server.py", "llmops_common.proxy.py"} <= set(code)
    router = _find(seed002, "Deployment", "llm-router")
    container = policy.pod_spec(router)["containers"][0]
    vllm_image = policy.pod_spec(_find(seed002, "Deployment", "llama-8b"))["containers"][0]["image"]
    assert container["image"] == vllm_image  # already pulled on the GPU nodes
    assert {"name": "PYTHONPATH", "value": "/opt/llmops-router"} in container["env"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/opt/llmops-router"] == "code"
    assert router["spec"]["template"]["metadata"]["annotations"]["llmops.platform/code-sha256"]

    app_pods.unpack(code, app_pods.code_volume_items(router), str(tmp_path))
    (tmp_path / "router.json").write_text(_find(seed002, "ConfigMap", "llm-router")["data"]["router.json"])
    with app_pods.running("llmops_router", str(tmp_path / "router.json"), str(tmp_path), str(tmp_path)) as url:
        status, body = app_pods.get_json(url + "/health")
    assert status == 200 and sorted(body["models"]) == ["llama-8b", "mistral-7b", "qwen-7b"]


def test_gateway_api_inference_renders_pools_epps_and_route_instead_of_the_router():
    home = serving_render.render_all()["gie"]
    assert validate_paths([os.path.join(home, "rendered-0", "serving")]) == []
    docs = _docs("gie")
    assert not [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "llm-router"]
    models = sorted(d["metadata"]["name"] for d in policy.by_kind(docs, "InferencePool"))
    assert models == sorted(m["name"] for m in serving_render.SEED_002)
    for name in models:
        pool = _find(docs, "InferencePool", name)
        assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
        spec = pool["spec"]
        # The pool selects exactly the model's vLLM pods.
        vllm = _find(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= vllm.items()
        assert spec["selector"]["matchLabels"]["llmops.platform/model"] == name
        port = next(p for p in _find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["ports"]
                    if p["name"] == "http")["containerPort"]
        assert spec["targetPorts"] == [{"number": port}]
        assert spec["endpointPickerRef"]["name"] == f"{name}-epp"
        assert spec["endpointPickerRef"]["port"] == {"number": 9002}
        epp = _find(docs, "Deployment", f"{name}-epp")
        container = epp["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == VERSIONS["gateway_api_inference_extension_epp_image"]
        assert f"--pool-name={name}" in container["args"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert epp["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        service = _find(docs, "Service", f"{name}-epp")
        assert service["spec"]["ports"][0]["port"] == 9002
        role = _find(docs, "Role", f"{name}-epp")
        assert sorted((r["apiGroups"], r["resources"]) for r in role["rules"]) == [
            ([""], ["pods"]), (["inference.networking.k8s.io"], ["inferencepools"])]
        assert all(sorted(r["verbs"]) == ["get", "list", "watch"] for r in role["rules"])
        assert not policy.by_kind(docs, "ClusterRole")
        netpols = {d["metadata"]["name"]: d for d in policy.by_kind(docs, "NetworkPolicy")}
        proxies = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}}
        assert netpols[f"{name}-epp-vllm-ingress"]["spec"]["ingress"][0]["from"] == [proxies]
        assert netpols[f"{name}-epp-ingress"]["spec"]["ingress"][0]["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    route = _find(docs, "HTTPRoute", "llm-router")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "inference-gateway", "namespace": "gateways"}]
    backends = [b for rule in route["spec"]["rules"] for b in rule["backendRefs"]]
    assert {(b["group"], b["kind"], b["name"]) for b in backends} == {
        ("inference.networking.k8s.io", "InferencePool", name) for name in models}
    assert policy.selector_problems(docs) == []
    # Rendering again changes nothing.
    first = serving_render.plan(home, 0, "router")["objects"]
    assert serving_render.plan(home, 1, "router")["objects"] == first
    assert serving_render.plan(home, 1, "router")["prune"] == []
