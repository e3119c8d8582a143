"""The gateway role on the local target for real: a supervised `python -m llmops_gateway`
from the serving venv in front of the fake OpenAI server (tests/fakes), with an API key; a second
run changes nothing; `gateway_state: stopped` stops it. Ports come from the kernel's free ones;
everything is stopped at the end.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
from fake_openai import SENTENCE, free_port, running  # noqa: E402

KEY = "sk-local-test-key-0123"
PLAY = """- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: llmops.platform.platform_defaults
    - role: llmops.platform.gateway
"""


def _run(tmp_path, extra: dict) -> str:
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           str(tmp_path / "play.yml"), "-e", "@" + str(tmp_path / "extra.json")],
                          cwd=ROOT, env=env, text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def _changed(out: str) -> int:
    return int(re.search(r"localhost\s*:.*changed=(\d+)", out).group(1))


@pytest.fixture
def upstream():
    with running(["--answer", SENTENCE, "--ttft-ms", "0", "--itl-ms", "10", "--model", "fixture-chat"]) as url:
        yield url


def test_gateway_role_local(tmp_path, upstream):
    url = upstream
    gw_port = free_port()
    extra = {"platform_target": "local", "platform_home": str(tmp_path / "home"), "gateway_port": gw_port,
             "gateway_upstream_url": url, "gateway_api_keys": [KEY]}
    try:
        out = _run(tmp_path, extra)
        assert KEY not in out
        keys_file = tmp_path / "home" / "gateway" / "gateway.api_keys"
        assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
        assert KEY not in (tmp_path / "home" / "gateway" / "gateway.json").read_text()
        base = f"http://127.0.0.1:{gw_port}"
        body = json.dumps({"model": "fixture-chat", "messages": [{"role": "user", "content": "hi"}]}).encode()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(base + "/v1/chat/completions", body,
                                                          {"Content-Type": "application/json"}), timeout=10)
        assert err.value.code == 401
        req = urllib.request.Request(base + "/v1/chat/completions", body, {"Content-Type": "application/json",
                                                                           "Authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp)["choices"][0]["message"]["content"] == SENTENCE
        assert _changed(_run(tmp_path, extra)) == 0  # idempotent
    finally:
        _run(tmp_path, {**extra, "gateway_state": "stopped"})
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{gw_port}/health", timeout=2)
