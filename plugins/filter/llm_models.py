"""Filters over the platform's inventory model; the logic lives in module_utils.inventory."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.inventory import (
    InventoryError,
    context_length_check,
    expand_replicas,
    normalize_models,
)


def llm_models_normalize(models, default_args=None, base_port=8100, port_stride=10, device="gpu", check_ports=True):
    try:
        return normalize_models(models, default_args, int(base_port), int(port_stride), device, bool(check_ports))
    except InventoryError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


def llm_models_context_check(models, model_dirs=None):
    try:
        return context_length_check(list(models or []), dict(model_dirs or {}))
    except InventoryError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


def llm_replicas(models, host="127.0.0.1", prefix="vllm"):
    return expand_replicas(list(models or []), host, prefix)


class FilterModule:
    def filters(self):
        return {"llm_models_normalize": llm_models_normalize, "llm_replicas": llm_replicas,
                "llm_models_context_check": llm_models_context_check}
