"""`llm_router_config`: the router's config document; logic in module_utils.router_config."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.router_config import (
    RouterConfigError,
    build_router_config,
)


def llm_router_config(models, settings, replicas, host="127.0.0.1", port=8000):
    try:
        return build_router_config(list(models or []), dict(settings or {}), list(replicas or []), host, int(port))
    except RouterConfigError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


class FilterModule:
    def filters(self):
        return {"llm_router_config": llm_router_config}
