"""Fine-tuning layer on the kubernetes target (seed 003): playbooks/finetune.yml renders for
real (platform_apply false); every object is schema-validated (1.29 and current) and
checked against the platform's policies; the ConfigMap carries 003's keys.
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import finetune_render
import k8s_policy as policy
import pytest
import yaml
from k8s_validate import load_documents, validate_paths

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
KEYS_003 = {"BASE_MODEL_PATH", "LORA_OUTPUT_PATH", "MERGED_MODEL_PATH", "DATASET_PATH", "FINETUNING_TYPE",
            "LORA_RANK", "SERVED_MODEL_NAME", "MAX_MODEL_LEN", "TENSOR_PARALLEL_SIZE"}
SECRET_URI = finetune_render.SECRET_URI


@pytest.fixture(scope="module")
def rendered():
    return finetune_render.default()


@pytest.fixture(scope="module")
def docs(rendered):
    return [doc for _, doc in load_documents([rendered])]


def _find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name))


def test_every_object_is_valid_in_1_29_and_current(rendered):
    assert validate_paths([rendered]) == []


def test_the_003_objects_are_rendered(docs):
    kinds = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] == "Job" else d["metadata"]["name"])
             for d in docs}
    assert {("Namespace", "llm-training"), ("PersistentVolumeClaim", "llm-storage"),
            ("ConfigMap", "llama-factory-config"), ("Job", "llama-factory-train"), ("Job", "llama-factory-merge"),
            ("Deployment", "llama-factory-webui"), ("Deployment", "llm-inference"),
            ("Service", "llm-inference")} <= kinds
    assert not any(d["kind"] == "Service" and d["metadata"]["name"] == "vllm" for d in docs)


def test_configmap_has_the_003_keys_and_llama_factory_configs(docs):
    data = _find(docs, "ConfigMap", "llama-factory-config")["data"]
    assert KEYS_003 <= set(data)
    assert data["FINETUNING_TYPE"] == "lora" and data["LORA_RANK"] == "8"
    train, export = yaml.safe_load(data["train.yaml"]), yaml.safe_load(data["export.yaml"])
    assert train["output_dir"] == data["LORA_OUTPUT_PATH"] and train["model_name_or_path"] == data["BASE_MODEL_PATH"]
    assert export["export_dir"] == data["MERGED_MODEL_PATH"] and export["adapter_name_or_path"] == data["LORA_OUTPUT_PATH"]
    assert train["report_to"] == "mlflow" and train["dataset_dir"] == data["DATASET_PATH"]


def test_pvc_is_rwx_200gi(docs):
    pvc = _find(docs, "PersistentVolumeClaim", "llm-storage")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "200Gi"


def test_jobs_have_backoff_ttl_deadline_gpu_and_the_gates(docs):
    for name in ("llama-factory-train", "llama-factory-merge"):
        job = _find(docs, "Job", name)
        assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["ttlSecondsAfterFinished"] > 0
        assert job["spec"]["activeDeadlineSeconds"] > 0
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never" and pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    merge = " ".join(_find(docs, "Job", "llama-factory-merge")["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "probe_generate.py" in merge and '"stopped": true' in merge


def test_policies(docs):
    workloads = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    assert policy.image_problems(docs) == []
    assert policy.resource_problems(docs) == []
    assert sum((policy.security_problems(w) for w in workloads), []) == []
    assert policy.selector_problems(docs) == []
    assert policy.probe_problems(_find(docs, "Deployment", "llm-inference")) == []


def test_inference_serves_the_merged_model_and_the_secret_never_renders(rendered, docs):
    # The vllm role's server and pod (vllm_k8s_pod.py) for a path: source on the shared volume.
    data = _find(docs, "ConfigMap", "llama-factory-config")["data"]
    pod = _find(docs, "Deployment", "llm-inference")["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--model") + 1] == data["MERGED_MODEL_PATH"]
    assert args[args.index("--served-model-name") + 1] == data["SERVED_MODEL_NAME"]
    assert args[args.index("--max-model-len") + 1] == data["MAX_MODEL_LEN"]
    assert args[args.index("--tensor-parallel-size") + 1] == data["TENSOR_PARALLEL_SIZE"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "llm-storage", "readOnly": True}} in pod["volumes"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for name in os.listdir(rendered):
        assert SECRET_URI not in open(os.path.join(rendered, name), encoding="utf-8").read()


def test_same_inputs_same_job_names_changed_input_new_ones(tmp_path, docs):
    # Job names carry the input hash (the same hash unit tests prove stable), so re-applying
    # the same inputs finds the same Jobs and a changed input creates new ones.
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Job"}
    run = _find(docs, "ConfigMap", "llama-factory-config")["metadata"]["labels"]["llmops.io/finetune-run"]
    assert all(name.endswith(run.rsplit("-", 1)[1][:10]) for name in names)
    lora = [d for _, d in load_documents([finetune_render.render(str(tmp_path / "b"), {
        # The WebUI is off unless asked for (llama_factory_k8s_webui).
        "llama_factory_k8s_serve_lora_adapter": True,
        "llm_finetune": {"base_model": "path:/storage/models/base-model", "dataset": os.path.join(
            ROOT, "roles/llama_factory/files/datasets/alpaca_demo.json"), "method": "qlora", "lora_rank": 32}})])]
    assert not names & {d["metadata"]["name"] for d in lora if d["kind"] == "Job"}
    assert not any(d["metadata"]["name"] == "llama-factory-webui" for d in lora)
    args = _find(lora, "Deployment", "llm-inference")["spec"]["template"]["spec"]["containers"][0]["args"]
    data = _find(lora, "ConfigMap", "llama-factory-config")["data"]
    assert "--enable-lora" in args and args[args.index("--max-lora-rank") + 1] == "32"
    assert args[args.index("--model") + 1] == data["BASE_MODEL_PATH"]
    # The adapter is served under the run's name, the base model next to it.
    assert args[args.index("--lora-modules") + 1] == f"{data['SERVED_MODEL_NAME']}={data['LORA_OUTPUT_PATH']}"
    assert args[args.index("--served-model-name") + 1] == f"{data['SERVED_MODEL_NAME']}-base"
    assert _find(lora, "ConfigMap", "llama-factory-config")["data"]["FINETUNING_TYPE"] == "qlora"


def test_a_new_run_prunes_the_previous_runs_jobs_and_a_switched_off_webui(tmp_path, rendered, docs):
    # The fine-tuning layer goes through the shared apply path: re-rendered with new inputs
    # into the same directory, the old Jobs (and the WebUI, now off) are planned for deletion.
    home = str(tmp_path / "home")
    shutil.copytree(os.path.dirname(os.path.dirname(rendered)), home, symlinks=True)
    again = finetune_render.render(home, {"llama_factory_k8s_webui": False, "llm_finetune": {
        "base_model": "path:/storage/models/base-model", "lora_rank": 32,
        "dataset": os.path.join(ROOT, "roles/llama_factory/files/datasets/alpaca_demo.json")}})
    assert "webui.yaml" not in os.listdir(again)
    plans = os.path.join(os.path.dirname(again), "plans")
    with open(os.path.join(plans, "finetune.prune.json"), encoding="utf-8") as handle:
        prune = {(o["kind"], o["name"]) for o in json.load(handle)["objects"]}
    old_jobs = {("Job", d["metadata"]["name"]) for d in docs if d["kind"] == "Job"}
    assert prune == old_jobs | {("Deployment", "llama-factory-webui"), ("Service", "llama-factory-webui"),
                                ("NetworkPolicy", "llama-factory-webui-ingress")}
    with open(os.path.join(plans, "finetune.json"), encoding="utf-8") as handle:
        kinds = [o["kind"] for o in json.load(handle)["objects"]]
    assert kinds.count("Job") == 2 and "Namespace" in kinds and "PersistentVolumeClaim" in kinds
