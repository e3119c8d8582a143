import os
import sys

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.inventory import vllm_cli_args
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.base import classify_exit
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.docker import (
    LABEL_TUNER,
    DockerRuntime,
    container_spec,
    to_sdk,
)
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.k8s_manifests import (
    pod_failure,
    trial_manifests,
)
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.local import LocalRuntime
from ansible_collections.llmops.platform.plugins.module_utils.tune.runtimes.ports import allocate
from ansible_collections.llmops.platform.plugins.module_utils.vllm_command import server_argv

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "render"))
from k8s_validate import validate_object  # noqa: E402

ARGS = {"max_num_seqs": 16, "enable_chunked_prefill": True, "block_size": 32}


def test_server_argv_matches_the_vllm_role():
    # roles/vllm/tasks/local.yml: python -m vllm.entrypoints.openai.api_server --model DIR
    # --served-model-name NAME --host H --port P + vllm_argv(vllm_args)
    argv = server_argv("/v/bin/python", "/m", "chat", "127.0.0.1", 8100, ARGS)
    assert argv == ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", "/m",
                    "--served-model-name", "chat", "--host", "127.0.0.1", "--port", "8100"] + vllm_cli_args(ARGS)
    assert "--enable-chunked-prefill" in argv and "--max-num-seqs" in argv


def test_local_runtime_builds_the_role_process_spec(tmp_path):
    rt = LocalRuntime("generated:tiny-llama", str(tmp_path / "run"), str(tmp_path / "logs"), str(tmp_path),
                      python="/v/bin/python", served_name="chat")
    rt.model_dir, rt.task = "/m", "t"
    spec = rt._spec_for("tune-t-t000", rt.argv(19001, ARGS), 19001)
    assert spec.env["VLLM_CPU_KVCACHE_SPACE"] == "1" and spec.env["HF_HUB_OFFLINE"] == "1"
    assert spec.env["VLLM_NO_USAGE_STATS"] == "1"
    assert spec.start_retries == 0, "a bad flag must fail the trial, not restart"
    assert spec.ready_url == "http://127.0.0.1:19001/health" and spec.port == 19001


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


SPEC = dict(image="llmops/vllm-cpu:0.32.0", task="demo", trial_id="t003", served_name="chat",
            model_dir="/models/tiny", host_port=19010, vllm_args={"tensor_parallel_size": 2, "max_num_seqs": 8})


def test_container_spec_gpu():
    spec = container_spec(**SPEC, gpu_ids=["0", "1"])
    assert spec["entrypoint"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert isinstance(spec["command"], list)  # 004: a command string breaks accelerator detection
    assert spec["command"][:8] == ["--model", "/model", "--served-model-name", "chat", "--host", "0.0.0.0",
                                   "--port", "8000"]
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


@pytest.mark.parametrize("gpus", [0, 2])
def test_k8s_trial_manifests_validate(gpus):
    objs = trial_manifests("demo", "t003", "llm-platform", "img:1", "chat",
                           {"max_num_seqs": 8, "tensor_parallel_size": max(gpus, 1)}, "llm-models", gpus=gpus)
    for obj in objs:
        assert validate_object(obj) == [], obj["kind"]
    deploy, svc = objs
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deploy["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert set(svc["spec"]["selector"].items()) <= set(deploy["spec"]["template"]["metadata"]["labels"].items())
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["limits"].get("nvidia.com/gpu") == (str(gpus) if gpus else None)
    assert "--max-num-seqs" in container["args"] and container["command"][-1] == "vllm.entrypoints.openai.api_server"
    assert deploy["metadata"]["labels"]["llmops.platform/tuner"] == "demo"


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
