"""`llm_gateway_config`, `llm_gateway_upstream`: the gateway's config document; logic in
module_utils.gateway_config."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.gateway_config import (
    GatewayConfigError,
    build_gateway_config,
    gateway_upstream,
)


def llm_gateway_config(upstream_url, settings, host, port, chat_page, api_keys_file=""):
    try:
        return build_gateway_config(upstream_url, dict(settings or {}), host, port, chat_page, api_keys_file or "")
    except GatewayConfigError as exc:
        raise AnsibleFilterError(f"Invalid inventory: {exc}") from None


def llm_gateway_upstream(explicit, router_settings, router_url):
    return gateway_upstream(explicit, dict(router_settings or {}), router_url)


class FilterModule:
    def filters(self):
        return {"llm_gateway_config": llm_gateway_config, "llm_gateway_upstream": llm_gateway_upstream}
