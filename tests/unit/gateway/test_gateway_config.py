"""The config document the gateway role renders on both targets, and its upstream."""
from __future__ import annotations

import pytest

from ansible_collections.llmops.platform.plugins.filter.k8s_serving import k8s_service_url
from ansible_collections.llmops.platform.plugins.module_utils.gateway_config import (
    GatewayConfigError,
    build_gateway_config,
    gateway_upstream,
)
from llmops_gateway.config import parse_config

SETTINGS = {"connect_timeout_s": 5, "read_timeout_s": 300, "health_timeout_s": 2,
            "max_inflight_per_client": 0, "max_body_bytes": 4194304}
ROUTER = "http://llm-router.managed.svc.cluster.local:8080"


def test_the_document_has_the_types_the_gateway_reads_and_no_keys_file_without_keys():
    cfg = build_gateway_config("http://127.0.0.1:8000", SETTINGS, "127.0.0.1", "8080", "/srv/chat/index.html")
    assert cfg == {"upstream_url": "http://127.0.0.1:8000", "host": "127.0.0.1", "port": 8080,
                   "connect_timeout_s": 5.0, "read_timeout_s": 300.0, "health_timeout_s": 2.0,
                   "max_inflight_per_client": 0, "max_body_bytes": 4194304, "chat_page": "/srv/chat/index.html"}
    assert [type(cfg[k]) for k in ("port", "connect_timeout_s", "max_body_bytes")] == [int, float, int]
    # The key order is part of the local target's restart hash: it must not move.
    assert list(cfg)[:3] == ["upstream_url", "host", "port"] and list(cfg)[-1] == "chat_page"
    parsed = parse_config(cfg)
    assert parsed.port == 8080 and parsed.api_keys_file == ""


def test_keys_file_is_named_never_the_keys():
    cfg = build_gateway_config(ROUTER, SETTINGS, "0.0.0.0", 8080, "/c.html", "/etc/keys/api_keys")
    assert cfg["api_keys_file"] == "/etc/keys/api_keys"
    assert parse_config(cfg).api_keys_file == "/etc/keys/api_keys"


def test_strings_from_extra_vars_become_numbers():
    cfg = build_gateway_config(ROUTER, {**SETTINGS, "read_timeout_s": "60", "max_inflight_per_client": "4"},
                               "0.0.0.0", 8080, "/c.html")
    assert cfg["read_timeout_s"] == 60.0 and cfg["max_inflight_per_client"] == 4


@pytest.mark.parametrize(("change", "message"), [
    ({"read_timeout_s": "soon"}, "gateway_read_timeout_s: must be a number"),
    ({"connect_timeout_s": 0}, "gateway_connect_timeout_s: must be >= 0.01"),
    ({"max_inflight_per_client": 1.5}, "gateway_max_inflight_per_client: must be a whole number"),
    ({"max_body_bytes": True}, "gateway_max_body_bytes: must be a number"),
    ({"max_body_bytes": 0}, "gateway_max_body_bytes: must be >= 1"),
])
def test_bad_settings_name_the_role_variable(change, message):
    with pytest.raises(GatewayConfigError, match=message):
        build_gateway_config(ROUTER, {**SETTINGS, **change}, "0.0.0.0", 8080, "/c.html")


def test_bad_upstream_port_and_settings_keys():
    with pytest.raises(GatewayConfigError, match="gateway_upstream_url: an http"):
        build_gateway_config("", SETTINGS, "0.0.0.0", 8080, "/c.html")
    with pytest.raises(GatewayConfigError, match="port: must be 1-65535"):
        build_gateway_config(ROUTER, SETTINGS, "0.0.0.0", "http", "/c.html")
    with pytest.raises(GatewayConfigError, match=r"unknown \['api_keys'\], missing \['max_body_bytes'\]"):
        build_gateway_config(ROUTER, {**{k: v for k, v in SETTINGS.items() if k != "max_body_bytes"},
                                      "api_keys": ["sk-1"]}, "0.0.0.0", 8080, "/c.html")


def test_upstream_is_the_explicit_url_else_the_router_unless_there_is_none():
    assert gateway_upstream("https://api.example/", {"policy": "kube_proxy"}, ROUTER) == "https://api.example/"
    assert gateway_upstream("", {"policy": "round_robin"}, ROUTER) == ROUTER
    # The router's own default policy (queue_aware) runs a router.
    assert gateway_upstream(None, {}, ROUTER) == ROUTER
    # Gateway API Inference Extension: no router Service to forward to.
    assert gateway_upstream(None, {"implementation": "gateway_api_inference"}, ROUTER) == ""
    assert gateway_upstream(ROUTER, {"implementation": "gateway_api_inference"}, ROUTER) == ROUTER
    assert gateway_upstream(None, None, ROUTER) == ROUTER
    assert gateway_upstream("", {"policy": "kube_proxy"}, ROUTER) == ""


def test_service_url():
    assert k8s_service_url("llm-router", "managed", "8080", "cluster.local") == ROUTER


def test_filters_wrap_the_builder_and_report_the_inventory_error():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.llmops.platform.plugins.filter.llm_gateway import (
        FilterModule,
        llm_gateway_config,
        llm_gateway_upstream,
    )

    assert set(FilterModule().filters()) == {"llm_gateway_config", "llm_gateway_upstream"}
    assert llm_gateway_upstream("", None, ROUTER) == ROUTER
    assert llm_gateway_config(ROUTER, SETTINGS, "0.0.0.0", 8080, "/c.html", None)["port"] == 8080
    with pytest.raises(AnsibleFilterError, match="Invalid inventory: gateway_health_timeout_s"):
        llm_gateway_config(ROUTER, {**SETTINGS, "health_timeout_s": -1}, "0.0.0.0", 8080, "/c.html")
