"""The tuner's Kubernetes trial pod is the vllm role's Deployment pod for the same entry,
except name, labels and the tuned flags: what a sweep measures is what `-e @best.yml
--tags serving` deploys.

playbooks/tune.yml runs for real (platform_apply false: every trial is rendered, none is
applied) on the serving render's inventories and variables (serving_render.py): seed 002
on GPUs, the same with KVCached, and a CPU-only cluster.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import serving_render
import yaml
from k8s_validate import load_documents, validate_paths

# Render variant, step -> the model tuned there.
CASES = {("seed002", 0): "llama-8b", ("kvcached", 0): "qwen-7b", ("seed000", 2): "llama-1b"}


def _flags(params: dict) -> set[str]:
    return {"--" + name.replace("_", "-") for name in params}


def _without(args: list[str], flags: set[str]) -> list[str]:
    """args minus each flag in `flags` and its value (the tuned flags all take one)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        else:
            out.append(arg)
    return out


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """(variant, step) -> (the role's Deployment of the model, trial id -> trial Deployment, sweep.json)."""
    homes = serving_render.render_all()
    procs = {}
    for (name, step), model in CASES.items():
        inventory, steps = serving_render.RENDERS[name]
        home = str(tmp_path_factory.mktemp(f"tune-{name}"))
        extra = {**steps[step][0], "platform_home": home, "platform_render_dir": os.path.join(home, "rendered"),
                 "platform_reports_dir": os.path.join(home, "reports"), "llm_sweep_model": model,
                 "llm_sweep_enabled": True}
        with open(os.path.join(home, "extra.json"), "w", encoding="utf-8") as handle:
            json.dump(extra, handle)
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
               os.path.join(serving_render.INVENTORIES, inventory), "playbooks/tune.yml",
               "-e", "@" + os.path.join(home, "extra.json")]
        procs[(name, step)] = (home, subprocess.Popen(cmd, cwd=serving_render.ROOT, env=serving_render._env(), text=True,
                                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    out = {}
    for key, (home, proc) in procs.items():
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log[-4000:]
        role_dir = os.path.join(homes[key[0]], f"rendered-{key[1]}", "serving", "vllm")
        role = next(d for _, d in load_documents([role_dir])
                    if d["kind"] == "Deployment" and d["metadata"]["name"] == CASES[key])
        tune_dir = os.path.join(home, "rendered", "tune")
        trials = {d["metadata"]["labels"]["llmops.platform/trial"]: d
                  for _, d in load_documents([tune_dir]) if d["kind"] == "Deployment"}
        with open(os.path.join(home, "reports", "sweeps", "demo-tune", "sweep.json"), encoding="utf-8") as handle:
            sweep = json.load(handle)
        out[key] = (role, trials, sweep, tune_dir)
    return out


@pytest.mark.parametrize("key", list(CASES))
def test_trial_pods_equal_the_roles_pod_but_for_labels_and_tuned_flags(sweeps, key):
    role, trials, sweep, _ = sweeps[key]
    assert set(trials) == {"default"} | {t["id"] for t in sweep["trials"]} and len(trials) == 3
    role_template = role["spec"]["template"]
    params = {"default": {}, **{t["id"]: t["params"] for t in sweep["trials"]}}
    for trial_id, trial in trials.items():
        template = trial["spec"]["template"]
        assert template["metadata"]["labels"] != role_template["metadata"]["labels"]
        assert template["metadata"]["annotations"] == role_template["metadata"]["annotations"]
        tuned = _flags(params[trial_id])
        ours, theirs = template["spec"], role_template["spec"]
        args, role_args = ours["containers"][0]["args"], theirs["containers"][0]["args"]
        for name, value in params[trial_id].items():
            flag = "--" + name.replace("_", "-")
            assert args[args.index(flag) + 1] == str(value), (trial_id, flag)
        assert _without(args, tuned) == _without(role_args, tuned), trial_id
        strip = lambda spec: {**spec, "containers": [{**spec["containers"][0], "args": None}]}  # noqa: E731
        assert strip(ours) == strip(theirs), trial_id
    # The untuned trial is the deployed pod itself.
    assert trials["default"]["spec"]["template"]["spec"] == role_template["spec"]


def test_trial_pods_are_what_the_platform_runs(sweeps):
    """Non-root with seccomp, the GPUs of the entry on a GPU cluster, the model cache the
    serving layer renders (no claim of their own), and valid in 1.29 and current."""
    for key, (_role, trials, _, tune_dir) in sweeps.items():
        assert validate_paths([tune_dir]) == []
        for trial in trials.values():
            spec = trial["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            limits = spec["containers"][0]["resources"]["limits"]
            assert limits.get("nvidia.com/gpu") == (None if key == ("seed000", 2) else 1)
            claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
            assert claims == {"llm-model-cache"}
            # Never selected by the model's own Services.
            assert "llmops.platform/model" not in trial["spec"]["template"]["metadata"]["labels"]


def test_a_broken_trial_pod_would_be_caught(sweeps):
    role, trials, _, _ = sweeps[("seed002", 0)]
    broken = yaml.safe_load(yaml.safe_dump(trials["default"]))
    broken["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "VLLM_CPU_KVCACHE_SPACE", "value": "1"})
    assert broken["spec"]["template"]["spec"] != role["spec"]["template"]["spec"]
