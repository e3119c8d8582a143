import os
import sys

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models, vllm_cli_args
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.base import classify_exit
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.docker import (
    LABEL_TUNER,
    DockerRuntime,
    container_spec,
    to_sdk,
)
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.k8s_manifests import pod_failure
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.local import LocalRuntime
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.ports import allocate
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import local_server, target_from

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "render"))
from k8s_validate import validate_object  # noqa: E402

ARGS = {"max_num_seqs": 16, "enable_chunked_prefill": True, "block_size": 32}


def test_local_runtime_runs_the_roles_server(tmp_path):
    # roles/vllm/tasks/local.yml builds replica 0 with vllm_server(target, model_dir, python): the
    # same function, so a trial with the entry's own args is the role's process.
    model = normalize_models([{"name": "chat", "source": "generated:tiny-llama", "vllm_args": ARGS,
                               "env": {"OMP_NUM_THREADS": "2"}}], device="cpu")[0]
    target = {"kind": "local", "device": "cpu", "kvcache_space_gib": 2, "env": {"EXTRA": "1"}, "host": "127.0.0.1"}
    rt = LocalRuntime("generated:tiny-llama", str(tmp_path / "run"), str(tmp_path / "logs"), str(tmp_path),
                      python="/v/bin/python", target=target, model=model)
    rt.model_dir, rt.task = "/m", "t"
    role = local_server(model, target, "/m", "/v/bin/python")
    spec = rt._spec_for("tune-t-t000", rt.argv(8100, ARGS), 8100)
    assert spec.argv == role["argv"] and spec.env == role["env"]
    assert spec.env["VLLM_CPU_KVCACHE_SPACE"] == "2" and spec.env["OMP_NUM_THREADS"] == "2"
    assert spec.env["HF_HUB_OFFLINE"] == "1" and spec.env["VLLM_NO_USAGE_STATS"] == "1"
    assert spec.start_retries == 0, "a bad flag must fail the trial, not restart"
    assert spec.ready_url == "http://127.0.0.1:8100/health" and spec.port == 8100
    tuned = rt.argv(8100, {**ARGS, "max_num_seqs": 4})
    assert tuned[tuned.index("--max-num-seqs") + 1] == "4" and "--enable-chunked-prefill" in tuned


def test_local_runtime_without_the_role_is_a_cpu_local_target(tmp_path):
    rt = LocalRuntime("generated:tiny-llama", str(tmp_path / "run"), str(tmp_path / "logs"), str(tmp_path),
                      python="/v/bin/python", served_name="chat")
    rt.model_dir = "/m"
    argv = rt.argv(19001, ARGS)
    assert argv[:11] == ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1",
                         "--port", "19001", "--model", "/m", "--served-model-name", "chat"]
    assert argv[11:] == vllm_cli_args(ARGS)
    assert rt._spec_for("x", argv, 19001).env["VLLM_CPU_KVCACHE_SPACE"] == "1"


def _adapter(path, rank):
    import json

    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    (path / "adapter_model.safetensors").write_bytes(b"x")
    return str(path)


def test_local_runtime_serves_the_entrys_adapters_as_the_role_does(tmp_path):
    ft = _adapter(tmp_path / "ft", 24)
    model = normalize_models([{"name": "chat", "source": "generated:tiny-llama",
                               "adapters": [{"name": "chat-ft", "source": f"path:{ft}"}]}], device="cpu")[0]
    rt = LocalRuntime("generated:tiny-llama", str(tmp_path / "run"), str(tmp_path / "logs"), str(tmp_path),
                      python="/v/bin/python", model=model)
    rt.prepare("t")
    assert rt.adapters == {"chat-ft": {"path": ft, "rank": 24}}
    argv = rt.argv(19001, ARGS)
    assert argv == local_server(model, {"kind": "local"}, rt.model_dir, "/v/bin/python", port=19001, vllm_args=ARGS,
                                adapters={"chat-ft": {"path": ft, "rank": 24}})["argv"]
    assert argv[-2:] == ["--lora-modules", f"chat-ft={ft}"] and argv[argv.index("--max-lora-rank") + 1] == "32"


def test_container_spec_mounts_each_adapter_read_only():
    model = normalize_models([{"name": "chat", "source": "generated:tiny-llama",
                               "adapters": [{"name": "chat-ft", "source": "path:/srv/ft"}]}], device="cpu")[0]
    spec = container_spec(**{**SPEC, "model": model}, gpu_ids=[], adapters={"chat-ft": {"path": "/srv/ft", "rank": 8}})
    assert spec["volumes"]["/srv/ft"] == {"bind": "/adapters/chat-ft", "mode": "ro"}
    assert spec["command"][-2:] == ["--lora-modules", "chat-ft=/adapters/chat-ft"]
    assert spec["command"][spec["command"].index("--max-lora-rank") + 1] == "8"


def test_crash_classification():
    assert classify_exit("exit code 137", "") == "oom"
    assert classify_exit("exit code 1", "torch.OutOfMemoryError: CUDA out of memory") == "oom"
    assert classify_exit("exit code 2", "error: argument --dtype: invalid choice") == "startup_crash"


def test_port_allocation_skips_taken_and_listening():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        assert allocate((busy, busy + 5), taken=[busy + 1]) == busy + 2


MODEL = normalize_models([{"name": "chat", "source": "generated:tiny-llama"}], device="cpu")[0]
SPEC = dict(image="llmops/vllm-cpu:0.32.0", task="demo", trial_id="t003", model=MODEL,
            target=target_from({"kind": "local", "device": "cpu"}), model_dir="/models/tiny", host_port=19010,
            vllm_args={"tensor_parallel_size": 2, "max_num_seqs": 8})


def test_container_spec_gpu():
    spec = container_spec(**SPEC, gpu_ids=["0", "1"])
    assert spec["entrypoint"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert isinstance(spec["command"], list)  # a command string breaks accelerator detection
    assert spec["command"][:8] == ["--host", "0.0.0.0", "--port", "8000", "--model", "/model",
                                   "--served-model-name", "chat"]
    assert "--tensor-parallel-size" in spec["command"]
    assert spec["device_requests"] == [{"device_ids": ["0", "1"], "capabilities": [["gpu"]], "driver": "nvidia"}]
    assert "CUDA_VISIBLE_DEVICES" not in spec["environment"] and "VLLM_CPU_KVCACHE_SPACE" not in spec["environment"]
    assert spec["ports"] == {"8000/tcp": ("127.0.0.1", 19010)}, "published on loopback only"
    assert spec["volumes"] == {"/models/tiny": {"bind": "/model", "mode": "ro"}}
    assert spec["auto_remove"] is True and spec["detach"] is True
    assert spec["labels"][LABEL_TUNER] == "demo" and spec["labels"]["llmops.platform/trial"] == "t003"
    assert spec["name"] == "tune-demo-t003"
    sdk = to_sdk(spec)
    import docker
    assert isinstance(sdk["device_requests"][0], docker.types.DeviceRequest)
    assert sdk["device_requests"][0]["DeviceIDs"] == ["0", "1"]


def test_container_spec_cpu_has_no_device_requests():
    spec = container_spec(**SPEC, gpu_ids=[])
    assert spec["device_requests"] == [] and to_sdk(spec)["device_requests"] is None
    assert spec["environment"]["VLLM_CPU_KVCACHE_SPACE"] == "1"


class FakeContainer:
    def __init__(self, name, labels):
        self.name, self.labels, self.removed = name, labels, False
        self.attrs = {"State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True}}

    def stop(self, timeout):
        self.removed = True

    def remove(self, force):
        self.removed = True

    def reload(self):
        pass

    def logs(self, tail):
        return b"Killed"


class FakeContainers:
    def __init__(self):
        self.ours = FakeContainer("tune-demo-t001", {LABEL_TUNER: "demo"})
        self.filters = None
        self.run_kwargs = None

    def list(self, all, filters):
        self.filters = filters
        return [self.ours]

    def run(self, **kwargs):
        self.run_kwargs = kwargs
        return FakeContainer(kwargs["name"], kwargs["labels"])


class FakeClient:
    def __init__(self):
        self.containers = FakeContainers()


def test_docker_runtime_only_touches_its_own_containers_and_detects_oom(tmp_path, monkeypatch):
    from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes import docker as docker_rt
    monkeypatch.setattr(docker_rt.model_source, "resolve", lambda src, cache: {"path": "/models/tiny"})
    client = FakeClient()
    rt = DockerRuntime("generated:tiny-llama", image="img:1", client=client, gpu_ids=["0", "1", "2", "3"],
                       port_range=(19400, 19499), served_name="chat")
    assert rt.prepare("demo") == ["tune-demo-t001"]
    assert client.containers.filters == {"label": f"{LABEL_TUNER}=demo"} and client.containers.ours.removed
    dep = rt.start("t002", {"tensor_parallel_size": 2})
    kwargs = client.containers.run_kwargs
    assert kwargs["auto_remove"] and kwargs["device_requests"][0]["DeviceIDs"] == ["0", "1"]
    from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.base import TrialFailure
    with pytest.raises(TrialFailure) as info:
        rt.wait_ready(dep, 5)
    assert info.value.kind == "oom" and "Killed" in info.value.log_tail


K8S = {
    "image": "docker.io/vllm/vllm-openai:v0.32.0", "image_pull_policy": "IfNotPresent", "image_pull_secrets": [],
    "port": 8000, "model_cache_claim": "llm-model-cache", "model_cache_mount": "/models",
    "path_volume_claim": "", "path_volume_mount": "/storage", "hf_token_secret": "llm-hf-token",
    "run_as_user": 1000, "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "12Gi"}},
    "shm_size": "2Gi", "startup_timeout_s": 1800, "readiness_period_s": 5, "liveness_period_s": 30,
    "liveness_timeout_s": 10, "liveness_failure_threshold": 6, "prestop_sleep_s": 15, "termination_grace_s": 120,
    "node_selector": {}, "gpu_node_selector": {"nvidia.com/gpu.present": "true"},
    "gpu_tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


@pytest.mark.parametrize("device, tp", [("cpu", 1), ("gpu", 1), ("gpu", 2)])
def test_k8s_trial_manifests_validate(tmp_path, device, tp):
    from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.kubernetes import KubernetesRuntime
    model = normalize_models([{"name": "chat", "source": "hf:org/chat@abc", "gpus": 1 if device == "gpu" else 0}],
                             device=device)[0]
    rt = KubernetesRuntime("hf:org/chat@abc", {"kind": "kubernetes", "device": device, "kubernetes": K8S},
                           model=model, namespace="llm-platform", render_dir=str(tmp_path), apply=False)
    rt.task = "demo"
    path, objs = rt.render("t003", {"max_num_seqs": 8, "tensor_parallel_size": tp})
    assert os.path.exists(path)
    for obj in objs:
        assert validate_object(obj) == [], obj["kind"]
    deploy, svc = objs
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deploy["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert set(svc["spec"]["selector"].items()) <= set(deploy["spec"]["template"]["metadata"]["labels"].items())
    # Never selected by the model's own Services (they select llmops.platform/model).
    assert "llmops.platform/model" not in deploy["spec"]["template"]["metadata"]["labels"]
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    # A GPU per parallel rank on a GPU target (the entry's 1 GPU grows with the trial's tp).
    assert container["resources"]["limits"].get("nvidia.com/gpu") == (tp if device == "gpu" else None)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert "--max-num-seqs" in container["args"] and container["command"][-1] == "vllm.entrypoints.openai.api_server"
    assert {e["name"] for e in container["env"]} >= ({"VLLM_CPU_KVCACHE_SPACE"} if device == "cpu" else {"HF_HUB_CACHE"})
    assert deploy["metadata"]["labels"]["llmops.platform/tuner"] == "demo"


def test_k8s_runtime_refuses_a_source_the_cluster_cannot_serve(tmp_path):
    from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.kubernetes import KubernetesRuntime
    from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import ServerError
    rt = KubernetesRuntime("generated:tiny-llama", {"kind": "kubernetes", "device": "cpu", "kubernetes": K8S},
                           render_dir=str(tmp_path), apply=False, served_name="chat")
    with pytest.raises(ServerError, match="local target only"):
        rt.prepare("demo")


@pytest.mark.parametrize("status,kind", [
    ({"containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 2,
                             "lastState": {"terminated": {"exitCode": 1}}}]}, "startup_crash"),
    ({"containerStatuses": [{"state": {"running": {}}, "restartCount": 1,
                             "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}, "oom"),
    ({"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}, "runtime_error"),
    ({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}, "runtime_error"),
])
def test_pod_failure(status, kind):
    assert pod_failure(status)[0] == kind


def test_pod_still_starting_is_not_a_failure():
    assert pod_failure({"containerStatuses": [{"state": {"running": {}}, "restartCount": 0}]}) is None


def test_diagnostic_tail_keeps_the_root_cause_above_the_traceback():
    from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.base import diagnostic_tail
    text = "\n".join(["start"] + ["ValueError: block_size 48 unsupported"] + [f"line {i}" for i in range(100)])
    out = diagnostic_tail(text, lines=10)
    assert out.splitlines()[0] == "ValueError: block_size 48 unsupported" and out.endswith("line 99")
    assert diagnostic_tail("a\nb", lines=10) == "a\nb"
