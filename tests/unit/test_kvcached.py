"""vllm_kvcached resolution: GPU + Kubernetes only, per-model overrides, every error names its field."""
import os
import re
import stat
import subprocess

import pytest
import yaml

from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models
from ansible_collections.llmops.platform.plugins.module_utils.kvcached import (
    DEPENDENCY_LOCK,
    USER_BASE,
    KvcachedError,
    check,
    dependency_lock,
    install_script,
    resolve,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSIONS = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]
DEFAULTS = {"version": "0.1.6", "sha256": "a" * 64, "image": "docker.io/vllm/vllm-openai:v0.30.0", "install": "pip",
            "pip_index_url": "", "env": {}, "install_resources": {"requests": {"cpu": "1"}}}
MODELS = normalize_models([{"name": "chat", "source": "hf:org/chat", "gpus": 1},
                           {"name": "code", "source": "hf:org/code", "gpus": 1}], device="gpu")


def settings(**kw):
    return {**DEFAULTS, "enabled": False, "models": {}, **kw}


def test_off_by_default_renders_nothing():
    assert resolve(settings(), MODELS, "gpu", "kubernetes") == {"chat": {"enabled": False}, "code": {"enabled": False}}
    # Off is fine everywhere, CPU and the local target included, and needs no version or image.
    assert resolve({"enabled": False}, MODELS, "cpu", "local") == {"chat": {"enabled": False}, "code": {"enabled": False}}
    assert check(None, MODELS, "cpu", "local") == []


def test_enabled_gives_env_image_and_install():
    out = resolve(settings(enabled=True, env={"KVCACHED_LOG_LEVEL": "INFO"},
                           models={"code": {"env": {"KVCACHED_LOG_LEVEL": "DEBUG"}}}), MODELS, "gpu", "kubernetes")
    assert out["chat"]["env"] == {"ENABLE_KVCACHED": "true", "KVCACHED_AUTOPATCH": "1", "PYTHONUSERBASE": USER_BASE,
                                  "KVCACHED_LOG_LEVEL": "INFO"}
    assert out["code"]["env"]["KVCACHED_LOG_LEVEL"] == "DEBUG"
    assert out["chat"]["install"] == "pip" and out["chat"]["version"] == "0.1.6"
    assert out["chat"]["image"].endswith(":v0.30.0")
    image = resolve(settings(enabled=True, install="image", image="reg/vllm-kvcached:1"), MODELS, "gpu", "kubernetes")
    assert "PYTHONUSERBASE" not in image["chat"]["env"] and image["chat"]["install"] == "image"


def test_per_model_switch_both_ways():
    only_code = resolve(settings(models={"code": {"enabled": True}}), MODELS, "gpu", "kubernetes")
    assert (only_code["chat"]["enabled"], only_code["code"]["enabled"]) == (False, True)
    all_but_chat = resolve(settings(enabled=True, models={"chat": {"enabled": False}}), MODELS, "gpu", "kubernetes")
    assert (all_but_chat["chat"]["enabled"], all_but_chat["code"]["enabled"]) == (False, True)
    assert check(settings(models={"code": {"enabled": "yes"}}), MODELS, "gpu", "kubernetes") == ["code"]


@pytest.mark.parametrize("value, device, target, field, words", [
    (settings(enabled=True), "cpu", "kubernetes", "vllm_kvcached.enabled", "GPU-only"),
    (settings(models={"chat": {"enabled": True}}), "cpu", "kubernetes", "vllm_kvcached.models.chat.enabled", "GPU-only"),
    (settings(enabled=True), "gpu", "local", "vllm_kvcached.enabled", "local target"),
    (settings(enabled=True), "cpu", "local", "vllm_kvcached.enabled", "vllm_device: gpu"),
    (settings(enabled="maybe"), "gpu", "kubernetes", "vllm_kvcached.enabled", "true or false"),
    (settings(enabled=True, install="conda"), "gpu", "kubernetes", "vllm_kvcached.install", "pip, image"),
    (settings(enabled=True, version=">=0.1"), "gpu", "kubernetes", "vllm_kvcached.version", "exact version"),
    (settings(enabled=True, sha256="abc"), "gpu", "kubernetes", "vllm_kvcached.sha256", "64 hex"),
    (settings(enabled=True, image="ghcr.io/ovg-project/kvcached-vllm:latest"), "gpu", "kubernetes",
     "vllm_kvcached.image", "not pinned"),
    (settings(enabled=True, image="vllm/vllm-openai"), "gpu", "kubernetes", "vllm_kvcached.image", "not pinned"),
    (settings(enabled=True, env={"bad-name": 1}), "gpu", "kubernetes", "vllm_kvcached.env", "environment variable"),
    (settings(models={"chta": {"enabled": True}}), "gpu", "kubernetes", "vllm_kvcached.models.chta", "no model named"),
    (settings(models={"chat": {"image": "x:1"}}), "gpu", "kubernetes", "vllm_kvcached.models.chat", "only enabled, env"),
    (settings(enabel=True), "gpu", "kubernetes", "vllm_kvcached.enabel", "unknown key"),
])
def test_errors_name_the_field(value, device, target, field, words):
    with pytest.raises(KvcachedError) as err:
        resolve(value, MODELS, device, target)
    assert err.value.field == field and words in str(err.value)


def test_kv_cache_events_are_refused_for_kvcached_models_only():
    models = normalize_models([{"name": "chat", "source": "hf:org/chat", "gpus": 1,
                                "vllm_args": {"kv_events_config": '{"enable_kv_cache_events": true}'}}], device="gpu")
    assert resolve(settings(), models, "gpu", "kubernetes")["chat"] == {"enabled": False}
    with pytest.raises(KvcachedError) as err:
        resolve(settings(enabled=True), models, "gpu", "kubernetes")
    assert err.value.field == "llm_models[chat].vllm_args.kv_events_config"


def test_pins_in_the_versions_file():
    assert VERSIONS["kvcached"] == "0.1.6"
    assert len(VERSIONS["kvcached_sha256"]) == 64
    # kvcached 0.1.6's vLLM adapter covers vLLM 0.29 and 0.30 (engine start refuses >= 0.31).
    assert VERSIONS["vllm_kvcached_image"] == "docker.io/vllm/vllm-openai:v0.30.0"
    assert resolve(settings(enabled=True, version=VERSIONS["kvcached"], sha256=VERSIONS["kvcached_sha256"],
                            image=VERSIONS["vllm_kvcached_image"]), MODELS, "gpu", "kubernetes")["chat"]["enabled"]


def test_the_dependency_lock_pins_kvcacheds_dependencies_with_hashes():
    # kvcached 0.1.6: numpy>=1.26.0 (the image's own, vLLM's), posix_ipc>=1.0, wrapt>=1.15.
    assert set(DEPENDENCY_LOCK) == {"posix-ipc", "wrapt"}
    for name, (version, hashes) in DEPENDENCY_LOCK.items():
        assert re.fullmatch(r"\d+(\.\d+)+", version), name
        # A wheel per CPython 3.10-3.13 and x86_64/aarch64, each a distinct file.
        assert len(hashes) == len(set(hashes)) == 8 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    lines = dependency_lock().splitlines()
    assert [line.split(" ")[0] for line in lines] == ["posix-ipc==1.3.2", "wrapt==2.5.2"]
    assert all(line.count(" --hash=sha256:") == 8 for line in lines)


FAKE_PYTHON = """#!/bin/sh
# python3 of a fake image: pip check answers from $STATE/check until pip installs, then from $STATE/after.
echo "$*" >> "$STATE/calls"
case "$*" in
  "-m pip check") if [ -f "$STATE/installed" ]; then cat "$STATE/after"; else cat "$STATE/check"; fi ;;
  "-m pip install"*"--no-deps --require-hashes --only-binary :all: -r "*)
    eval "req=\\${$#}"; cp "$req" "$STATE/requested"; touch "$STATE/installed" ;;
  "-m pip install"*) ;;
  "-m site --user-site") echo "$STATE/site" ;;
  "-m pip show kvcached") echo "Version: 0.1.6" ;;
esac
"""


def _run_install(tmp_path, check, after="", with_sha256=True):
    """Run the initContainer script against a fake python3 whose `pip check` reports `check`."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "kvcached_autopatch.pth").write_text("import kvcached\n")
    python = tmp_path / "bin" / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "check").write_text(check)
    (tmp_path / "after").write_text(after)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", STATE=str(tmp_path),
               TMPDIR=str(tmp_path), KVCACHED_VERSION="0.1.6", KVCACHED_SHA256="a" * 64)
    return subprocess.run(["sh", "-ec", install_script(with_sha256)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_install_adds_only_the_missing_dependencies_from_the_hashed_pins(tmp_path):
    result = _run_install(tmp_path, "kvcached 0.1.6 requires posix_ipc, which is not installed.\n"
                                    "kvcached 0.1.6 has requirement wrapt>=1.15, but you have wrapt 1.14.1.\n"
                                    "torchvision 0.1 requires something, which is not installed.\n")
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "-m pip install --user --no-build-isolation --no-deps --require-hashes -r " + str(tmp_path / "kvcached.txt") \
        in calls
    # The image's numpy (not reported) is kept; posix_ipc and wrapt come only from the lock.
    assert (tmp_path / "requested").read_text() == dependency_lock()
    assert (tmp_path / "kvcached.txt").read_text() == f"kvcached==0.1.6 --hash=sha256:{'a' * 64}\n"
    assert not any("kvcached==0.1.6" in call and "--no-deps" not in call for call in calls)


def test_install_with_every_dependency_in_the_image_installs_none(tmp_path):
    result = _run_install(tmp_path, "torchvision 0.1 requires something, which is not installed.\n",
                          with_sha256=False)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert not (tmp_path / "requested").exists()
    assert '-m pip install --user --no-build-isolation --no-deps kvcached==0.1.6' in calls


@pytest.mark.parametrize("check, after, message", [
    ("kvcached 0.1.6 requires cuda-bindings, which is not installed.\n", "",
     "needs cuda-bindings, which this image lacks and the platform does not pin"),
    ("kvcached 0.1.6 requires posix_ipc, which is not installed.\n",
     "kvcached 0.1.6 has requirement numpy>=1.26.0, but you have numpy 1.24.0.\n", "dependencies are not satisfied"),
])
def test_install_fails_for_a_dependency_it_cannot_satisfy_from_pins(tmp_path, check, after, message):
    result = _run_install(tmp_path, check, after)
    assert result.returncode == 1 and message in result.stderr, result.stderr
