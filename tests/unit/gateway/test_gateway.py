"""The gateway against a fixture upstream over real loopback sockets."""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest
from fake_openai import SENTENCE, FakeOpenAI, free_port
from prometheus_client.parser import text_string_to_metric_families
from servers import Loop

from llmops_gateway.auth import ApiKeys, parse_keys
from llmops_gateway.config import ConfigError, parse_config

KEY = "sk-test-0123456789abcdef"


def fake_upstream(itl: float) -> FakeOpenAI:
    """The router as the gateway sees it: the answer word by word, model `slow` takes 2 s."""
    return FakeOpenAI("fixture-0", ttft=0.0, itl=itl, answer=SENTENCE, models=["fixture-chat", "slow"],
                      slow_s=2.0, replica_header=True)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    loop = Loop()
    upstream = fake_upstream(itl=0.0)
    up = loop.start_upstream(upstream)
    # 0.25 s between words: shows whether the gateway passes a stream through or buffers it.
    paced = loop.start_upstream(fake_upstream(itl=0.25))
    key_file = tmp_path_factory.mktemp("keys") / "api_keys"
    key_file.write_text(f"# gateway keys\n{KEY}\nsk-other-key\n")
    ports = {
        "open": loop.start_gateway({"upstream_url": up, "read_timeout_s": 0.8}),
        "paced": loop.start_gateway({"upstream_url": paced}),
        # The fake drops the connection after two tokens (its /cut path prefix); small bodies only.
        "cut": loop.start_gateway({"upstream_url": up + "/cut", "max_body_bytes": 200}),
        "keys": loop.start_gateway({"upstream_url": up, "max_inflight_per_client": 1},
                                   ApiKeys(str(key_file), "")),
        # Nothing listens on a port the kernel just handed out and took back.
        "down": loop.start_gateway({"upstream_url": f"http://127.0.0.1:{free_port()}", "connect_timeout_s": 1}),
    }
    yield {"upstream": upstream, "url": {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}}
    loop.stop()


def call(url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 10):
    """(status, headers, body bytes) without raising on HTTP errors."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


CHAT = {"model": "fixture-chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def test_stream_is_passed_through_chunk_by_chunk(env):
    req = urllib.request.Request(env["url"]["paced"] + "/v1/chat/completions", json.dumps(CHAT).encode(),
                                 {"Content-Type": "application/json"})
    started = time.monotonic()
    arrivals, text = [], ""
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["X-Llmops-Replica"] == "fixture-0"
        for line in resp:  # one SSE line at a time, as it arrives
            if line.startswith(b"data: {"):
                arrivals.append(time.monotonic() - started)
                chunk = json.loads(line[6:])
                if chunk["choices"]:
                    text += chunk["choices"][0]["delta"]["content"]
    assert text == SENTENCE
    words = len(SENTENCE.split(" "))
    # The upstream sleeps 0.25 s between words: a buffering proxy would deliver everything at
    # the end; a pass-through one delivers the first word ~(words-1)*0.25 s before the last.
    assert arrivals[0] < 0.5 * (words - 1) * 0.25
    assert arrivals[-1] - arrivals[0] >= 0.8 * (words - 1) * 0.25


def test_models_and_completions_are_proxied_and_formatted(env):
    status, headers, body = call(env["url"]["open"] + "/v1/models")
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["fixture-chat", "slow"]
    status, _, body = call(env["url"]["open"] + "/v1/completions", {"model": "fixture-chat", "prompt": "x"})
    assert status == 200 and json.loads(body)["choices"][0]["text"] == SENTENCE
    status, _, body = call(env["url"]["open"] + "/v1/chat/completions", {**CHAT, "stream": False})
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == SENTENCE


def test_bad_body_is_a_400_openai_error(env):
    req = urllib.request.Request(env["url"]["open"] + "/v1/chat/completions", b"not json",
                                 {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400 and json.loads(err.value.read())["error"]["code"] == "invalid_json"


def test_api_key_required_when_configured(env):
    url = env["url"]["keys"] + "/v1/chat/completions"
    body = {**CHAT, "stream": False}
    status, headers, raw = call(url, body)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(raw)["error"]["code"] == "invalid_api_key"
    assert call(url, body, {"Authorization": "Bearer sk-wrong"})[0] == 401
    assert call(url, body, {"Authorization": KEY})[0] == 401  # no Bearer scheme
    assert call(env["url"]["keys"] + "/v1/models")[0] == 401
    status, _, raw = call(url, body, {"Authorization": f"Bearer {KEY}"})
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == SENTENCE
    # The gateway's key is not forwarded to the upstream.
    assert "Authorization" not in env["upstream"].last_headers
    assert call(url, body, {"Authorization": "Bearer sk-other-key"})[0] == 200
    # Health, metrics and the page itself stay open (the page asks for the key).
    assert call(env["url"]["keys"] + "/health")[0] == 200
    assert call(env["url"]["keys"] + "/")[0] == 200


def test_per_client_inflight_limit(env):
    import threading
    url = env["url"]["keys"] + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {KEY}"}
    first = threading.Thread(target=call, args=(url, {**CHAT, "model": "slow"}, auth))
    first.start()
    time.sleep(0.4)
    status, headers, raw = call(url, {**CHAT, "stream": False}, auth)
    first.join(10)
    assert status == 429 and headers["Retry-After"] == "1"
    assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
    # Another key is another client.
    assert call(url, {**CHAT, "stream": False}, {"Authorization": "Bearer sk-other-key"})[0] == 200


def test_upstream_down_is_a_502_and_health_503(env):
    status, headers, raw = call(env["url"]["down"] + "/v1/chat/completions", CHAT)
    assert status == 502
    error = json.loads(raw)["error"]
    assert error["code"] == "upstream_unavailable" and "unreachable" in error["message"]
    status, _, raw = call(env["url"]["down"] + "/health")
    assert status == 503 and json.loads(raw)["status"] == "unavailable"
    assert call(env["url"]["down"] + "/health/live")[0] == 200


def test_upstream_timeout_is_a_504(env):
    started = time.monotonic()
    status, _, raw = call(env["url"]["open"] + "/v1/chat/completions", {**CHAT, "model": "slow"})
    assert status == 504 and json.loads(raw)["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 1.8  # read_timeout_s 0.8, upstream would take 2 s


def test_upstream_503_is_passed_through_and_health_follows_it(env):
    env["upstream"].healthy = False
    try:
        status, _, raw = call(env["url"]["open"] + "/health")
        assert status == 503 and "503" in json.loads(raw)["reason"]
    finally:
        env["upstream"].healthy = True
    assert call(env["url"]["open"] + "/health")[0] == 200


def test_metrics_count_requests_by_route_and_status(env):
    base = env["url"]["down"]
    route = "/v1/chat/completions"
    before = call(base + "/metrics")[2].decode()
    for _ in range(3):
        call(base + "/v1/chat/completions", CHAT)
    status, headers, raw = call(base + "/metrics")
    text = raw.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    for name, labels in (("llmops_gateway_requests_total", {"route": route, "status": "502"}),
                         ("llmops_gateway_upstream_errors_total", {"route": route, "kind": "connect"})):
        assert sample(text, name, **labels) == sample(before, name, **labels) + 3
    assert sample(text, "llmops_gateway_request_duration_seconds_count", route=route) >= 3
    assert sample(text, "llmops_gateway_inflight_requests") == 0
    keyed = call(env["url"]["keys"] + "/metrics")[2].decode()
    assert 'llmops_gateway_auth_failures_total{route="/v1/chat/completions"}' in keyed


def test_chat_page_is_served_with_a_strict_csp(env):
    status, headers, raw = call(env["url"]["open"] + "/")
    page = raw.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "llmops chat" in page and "/v1/chat/completions" in page
    csp = headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp and "connect-src 'self'" in csp
    assert "http://" not in page and "https://" not in page  # no CDN: the network is closed


def test_config_rejects_keys_and_bad_urls():
    with pytest.raises(ConfigError, match="upstream_url"):
        parse_config({"upstream_url": "router:8000"})
    with pytest.raises(ConfigError, match="api_keys"):
        parse_config({"upstream_url": "http://r:8000", "api_keys": ["sk-x"]})
    assert parse_config({"upstream_url": "http://r:8000/"}).upstream_url == "http://r:8000"


def test_keys_from_env_and_a_missing_file_locks_everything(tmp_path, monkeypatch):
    assert parse_keys("a, b\n# c\n\nd # note\n") == ["a", "b", "d"]
    monkeypatch.setenv("GW_KEYS", "sk-env")
    keys = ApiKeys("", "GW_KEYS")
    assert keys.enabled and keys.check("Bearer sk-env") == "key0" and keys.check("Bearer sk-x") is None
    missing = ApiKeys(str(tmp_path / "nope"), "")
    assert missing.enabled and missing.check("Bearer ") is None and missing.check("Bearer x") is None
    # A rotated file is picked up without a restart.
    path = tmp_path / "keys"
    path.write_text("sk-one\n")
    rotating = ApiKeys(str(path), "", recheck_s=0)
    assert rotating.check("Bearer sk-one")
    path.write_text("sk-two\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert rotating.check("Bearer sk-two") and not rotating.check("Bearer sk-one")


def test_a_stream_broken_midway_ends_with_an_error_event(env):
    status, headers, raw = call(env["url"]["cut"] + "/v1/chat/completions", CHAT)
    events = [json.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b"data: {")]
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert [e["choices"][0]["delta"]["content"] for e in events[1:3]] == ["Hello ", "from "]
    assert events[-1]["error"]["code"] == "upstream_disconnected" and b"[DONE]" not in raw
    metrics = call(env["url"]["cut"] + "/metrics")[2].decode()
    assert sample(metrics, "llmops_gateway_upstream_errors_total", route="/v1/chat/completions", kind="midstream") == 1


def test_a_body_over_the_limit_is_a_413_openai_error(env):
    status, _, raw = call(env["url"]["cut"] + "/v1/chat/completions", {**CHAT, "padding": "x" * 300})
    assert status == 413 and json.loads(raw)["error"]["code"] == "request_too_large"
    status, _, raw = call(env["url"]["cut"] + "/v1/nothing-here")
    assert status == 404 and json.loads(raw)["error"]["code"] == "not_found"
