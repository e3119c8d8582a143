"""playbooks/compare.yml on the kubernetes target, rendering only (seed 002: 3 models x 2 replicas).

Both arms get a router of their own (llm-router-baseline: round_robin, llm-router-managed:
queue_aware) in front of the same vLLM Deployments. The playbook runs for real, twice, on top of
the serving layer's render (whose llm-router and plans must stay untouched; the second run
must report changed=0), and once with platform_apply but no URLs (must fail before anything
is rendered). Every object is schema-validated and policy-checked.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import k8s_policy as policy
import netpol_eval
import pytest
import serving_render
from k8s_validate import K8S_VERSIONS, load_documents, validate_paths

from ansible_collections.llmops.platform.plugins.module_utils import app_code

ROOT = serving_render.ROOT
ARMS = {"baseline": "round_robin", "managed": "queue_aware"}
MODELS = ("llama-8b", "qwen-7b", "mistral-7b")
SUFFIX = "managed.svc.cluster.local"


def _start(home: str, **extra) -> subprocess.Popen:
    os.makedirs(home, exist_ok=True)
    data = {"platform_home": home, "platform_render_dir": os.path.join(home, "rendered"), **extra}
    with open(os.path.join(home, "extra.json"), "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
           os.path.join(serving_render.INVENTORIES, "k8s_002"), "playbooks/compare.yml",
           "-e", "@" + os.path.join(home, "extra.json")]
    return subprocess.Popen(cmd, cwd=ROOT, env=serving_render._env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen, ok: bool = True) -> str:
    out, _ = proc.communicate(timeout=600)
    assert (proc.returncode == 0) == ok, out[-4000:]
    return out


def _changed(out: str) -> int:
    return int(re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", out).group(1))


@pytest.fixture(scope="module")
def runs():
    """on_serving: compare.yml on top of seed002's serving render, then the same run again;
    no_urls: platform_apply true without URLs."""
    base = tempfile.mkdtemp(prefix="llmops-compare-render-")
    homes = {name: os.path.join(base, name) for name in ("on_serving", "no_urls")}
    no_urls = _start(homes["no_urls"], platform_apply=True)
    # The serving layer's render (shared with test_serving_render.py, cached) meanwhile.
    shutil.copytree(os.path.join(serving_render.render_all()["seed002"], "rendered-0"),
                    os.path.join(homes["on_serving"], "rendered"))
    result = {"no_urls_out": _finish(no_urls, ok=False), "homes": homes}
    result["first_out"] = _finish(_start(homes["on_serving"]))
    result["again_out"] = _finish(_start(homes["on_serving"]))
    yield result
    shutil.rmtree(base, ignore_errors=True)


def _rendered(runs, name: str) -> str:
    return os.path.join(runs["homes"][name], "rendered")


def _docs(runs, name: str = "on_serving", subdirs=("compare", "serving")) -> list[dict]:
    return [doc for _, doc in load_documents([os.path.join(_rendered(runs, name), s) for s in subdirs])]


def _find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _plan(runs, name: str, plan: str, part: str = "") -> list[tuple[str, str]]:
    path = os.path.join(_rendered(runs, name), "plans", f"{plan}{part}.json")
    with open(path, encoding="utf-8") as handle:
        return sorted((o["kind"], o["name"]) for o in json.load(handle)["objects"])


def test_each_arm_has_its_own_router_with_its_policy(runs):
    sys.path[:0] = app_code.pythonpath("router", os.path.join(ROOT, "apps")).split(os.pathsep)
    from llmops_router.config import parse_config  # noqa: E402

    docs = _docs(runs)
    configs = {}
    for arm, policy_name in ARMS.items():
        name = f"llm-router-{arm}"
        assert sorted(os.listdir(os.path.join(_rendered(runs, "on_serving"), "compare", arm))) == ["router.yaml"]
        raw = json.loads(_find(docs, "ConfigMap", name)["data"]["router.json"])
        assert parse_config(raw).policy == policy_name and raw["poll_interval_s"] == 1
        configs[arm] = {k: v for k, v in raw.items() if k != "policy"}
        deployment = _find(docs, "Deployment", name)
        assert deployment["spec"]["replicas"] == 1
        assert policy.pod_spec(deployment)["volumes"][0]["configMap"]["name"] == name
        assert _find(docs, "Service", name)["spec"]["ports"][0]["port"] == raw["port"] == 8080
        assert _find(docs, "PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1
    # Same models, replicas and settings behind both arms; only the policy differs.
    assert configs["baseline"] == configs["managed"]


def test_both_arms_route_to_the_same_six_replicas_of_three_models(runs):
    docs = _docs(runs)
    for arm in ARMS:
        raw = json.loads(_find(docs, "ConfigMap", f"llm-router-{arm}")["data"]["router.json"])
        assert [m["name"] for m in raw["models"]] == list(MODELS)
        pods = 0
        for entry in raw["models"]:
            model = entry["name"]
            assert entry["replicas"] == [{"name": model, "url": f"http://{model}.{SUFFIX}:8000"}]
            assert entry["discovery"]["host"] == f"{model}-replicas.{SUFFIX}"
            # The headless Service the router resolves selects exactly the model's Deployment.
            headless = _find(docs, "Service", f"{model}-replicas")
            assert headless["spec"]["clusterIP"] == "None"
            selected = [d for d in policy.by_kind(docs, "Deployment")
                        if policy.selector_matches({"matchLabels": headless["spec"]["selector"]}, policy.pod_labels(d))]
            assert [d["metadata"]["name"] for d in selected] == [model]
            pods += selected[0]["spec"]["replicas"]
        assert pods == 6


def test_every_object_is_valid_in_1_29_and_current(runs):
    assert K8S_VERSIONS[0] == "1.29"
    assert validate_paths([os.path.join(_rendered(runs, "on_serving"), s) for s in ("compare", "serving")]) == []


def test_platform_policies_hold_and_selectors_do_not_cross_routers(runs):
    docs = _docs(runs)  # the arms next to the serving layer's llm-router
    assert ("Deployment", "llm-router") in {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert policy.image_problems(docs) == []
    assert policy.resource_problems(docs) == []
    assert policy.selector_problems(docs) == []
    for deployment in policy.by_kind(docs, "Deployment"):
        assert policy.security_problems(deployment) == []
        assert policy.pod_spec(deployment)["securityContext"]["runAsNonRoot"] is True
    # An arm router carrying the serving router's name label would be selected by its Service.
    broken = copy.deepcopy(docs)
    policy.pod_labels(_find(broken, "Deployment", "llm-router-managed"))["app.kubernetes.io/name"] = "llm-router"
    assert policy.selector_problems(broken)


def test_the_vllm_network_policy_lets_both_arms_in(runs):
    docs = _docs(runs)
    cluster = netpol_eval.Cluster(docs)
    pods = {p.name: p for p in netpol_eval.pods(docs)}
    routers = {f"managed/llm-router-{arm}" for arm in ARMS} | {"managed/llm-router"}
    for model in MODELS:
        assert cluster.reachers(pods.values(), pods[f"managed/{model}"]) == routers
    for arm in ARMS:
        labels = pods[f"managed/llm-router-{arm}"].labels
        assert labels["llmops.platform/compare-arm"] == arm
        # Each arm's router has its own policy: only the gateway (and Prometheus) get in.
        assert cluster.reachers(pods.values(), pods[f"managed/llm-router-{arm}"]) == {"managed/llm-gateway"}


def test_each_arm_has_its_own_plan_and_nothing_is_pruned(runs):
    for arm in ARMS:
        assert _plan(runs, "on_serving", f"compare-{arm}") == sorted(
            [(kind, f"llm-router-{arm}") for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget")]
            + [("ConfigMap", f"llm-router-{arm}-code"), ("NetworkPolicy", f"llm-router-{arm}-ingress")])
    plans = {p.split(".")[0] for p in os.listdir(os.path.join(_rendered(runs, "on_serving"), "plans"))}
    assert {"vllm", "router", "compare-baseline", "compare-managed"} <= plans
    for plan in plans:
        assert _plan(runs, "on_serving", plan, ".prune") == [], plan
    # The serving layer's router and its plan are exactly as serving.yml left them.
    seed = os.path.join(serving_render.render_all()["seed002"], "rendered-0")
    for path in ("serving/router/router.yaml", "plans/router.json", "plans/vllm.json"):
        with open(os.path.join(seed, path), encoding="utf-8") as before, \
                open(os.path.join(_rendered(runs, "on_serving"), path), encoding="utf-8") as after:
            assert before.read() == after.read(), path


def test_second_render_changes_nothing(runs):
    assert _changed(runs["first_out"]) > 0
    assert _changed(runs["again_out"]) == 0


def test_render_only_says_where_the_manifests_are_and_runs_no_benchmark(runs):
    out = runs["first_out"]
    assert "rendered only; nothing was applied and no benchmark ran" in out
    assert os.path.join(_rendered(runs, "on_serving"), "compare") + "/{baseline,managed}/router.yaml" in out
    assert "Run every arm, repeat by repeat" in out and "compare/tasks/arm.yml for localhost" not in out


def test_apply_without_urls_fails_first_and_names_the_variable(runs):
    out = runs["no_urls_out"]
    assert "needs compare_k8s_router_urls" in out and "llm-router-<arm>" in out
    assert "Check that every arm has a URL to benchmark through" in out
    # Failed before the vllm role rendered (or applied) anything.
    assert not os.path.exists(_rendered(runs, "no_urls"))


def test_no_secret_value_reaches_a_rendered_file(runs):
    for folder, _, files in os.walk(os.path.join(_rendered(runs, "on_serving"))):
        for name in files:
            text = open(os.path.join(folder, name), encoding="utf-8", errors="replace").read()
            assert serving_render.HF_TOKEN_SENTINEL not in text, name
