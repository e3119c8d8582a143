"""vllm_kvcached resolution: GPU + Kubernetes only, per-model overrides, every error names its field."""
import os

import pytest
import yaml

from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models
from ansible_collections.llmops.platform.plugins.module_utils.kvcached import (
    USER_BASE,
    KvcachedError,
    check,
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
