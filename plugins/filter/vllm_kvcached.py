"""KVCached filters of the vllm and preflight roles (logic in module_utils.kvcached)."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.kvcached import KvcachedError, check, resolve


def vllm_kvcached_models(models, settings=None, device="gpu", target="kubernetes"):
    """Per model name: kvcached on or off and, when on, what the Deployment needs."""
    try:
        return resolve(settings, list(models or []), str(device), str(target))
    except KvcachedError as exc:
        raise AnsibleFilterError(f"Invalid KVCached settings: {exc}") from None


def vllm_kvcached_check(models, settings=None, device="gpu", target="kubernetes"):
    """Names of the models that use kvcached; fails where kvcached cannot run."""
    try:
        return check(settings, list(models or []), str(device), str(target))
    except KvcachedError as exc:
        raise AnsibleFilterError(f"Invalid KVCached settings: {exc}") from None


class FilterModule:
    def filters(self):
        return {"vllm_kvcached_models": vllm_kvcached_models, "vllm_kvcached_check": vllm_kvcached_check}
