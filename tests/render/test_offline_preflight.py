"""platform_offline: preflight fails, naming the artifact, when the play would fetch something the
mirror's manifest does not hold; with everything there it passes. Runs the real serving play
(--tags preflight: nothing is installed or started) against a mirror served on loopback."""
import hashlib
import json
import os
import subprocess
import sys
import threading

import pytest
from mirror_origin import free_port

from ansible_collections.llmops.platform.plugins.module_utils.mirror import manifest, server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = "hf:llmops-test/tiny@0123456789abcdef0123456789abcdef01234567"


def lock_sha(name):
    with open(os.path.join(ROOT, "requirements", f"{name}.lock"), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def entry(name, kind, **extra):
    return {"name": name, "kind": kind, "version": "", "source": "", "sha256": "", "size": 1, "status": "fetched",
            **extra}


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    srv = server.make_server(str(root), "127.0.0.1", free_port())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def run_preflight(tmp_path, mirror_url, hosts=None, **extra):
    """hosts: {name: host variables}; default one localhost, with llm_models given as an extra var."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {"localhost": {}} if hosts is None else hosts
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {name: {**local, **hostvars} for name, hostvars in hosts.items()},
                                             "children": {"llm_serving_hosts": {"hosts": dict.fromkeys(hosts, {})}}}}))
    extra = {"platform_home": str(tmp_path / "home"), "platform_target": "local", "platform_offline": True,
             "platform_mirror_url": mirror_url, "platform_mirror_venvs": ["serving"], **extra}
    if not any("llm_models" in hostvars for hostvars in hosts.values()):
        extra.setdefault("llm_models", [{"name": "chat", "source": MODEL}])
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
                           "playbooks/serving.yml", "--tags", "preflight", "-e", json.dumps(extra)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def write_manifest(root, entries):
    (root / "manifest.json").write_text(json.dumps(manifest.document(entries, {"built_at": "x"})))


def test_offline_preflight_names_what_the_mirror_lacks_and_passes_when_complete(tmp_path, mirror):
    root, url = mirror
    write_manifest(root, [entry("wheels:serving", "wheels", sha256=lock_sha("serving"))])
    failed = run_preflight(tmp_path, url)
    assert failed.returncode != 0
    assert "does not hold what this play" in failed.stdout
    assert f"model:{MODEL[3:]} ({MODEL}) is not in the mirror's manifest" in failed.stdout

    write_manifest(root, [entry("wheels:serving", "wheels", sha256=lock_sha("serving")),
                          entry(f"model:{MODEL[3:]}", "model")])
    passed = run_preflight(tmp_path, url)
    assert passed.returncode == 0, passed.stdout[-3000:]


def test_offline_preflight_without_a_mirror_url_says_what_to_set(tmp_path):
    done = run_preflight(tmp_path, "")
    assert done.returncode != 0
    assert "platform_offline is true but platform_mirror_url is empty" in done.stdout


def test_offline_preflight_checks_each_host_with_its_own_variables(tmp_path, mirror):
    """The manifest holds the model the first host serves; the second host's own llm_models asks
    for another one: preflight fails for that host and names its model."""
    root, url = mirror
    other = "hf:llmops-test/other@89abcdef0123456789abcdef0123456789abcdef"
    write_manifest(root, [entry("wheels:serving", "wheels", sha256=lock_sha("serving")),
                          entry(f"model:{MODEL[3:]}", "model")])
    done = run_preflight(tmp_path, url, hosts={
        "localhost": {"llm_models": [{"name": "chat", "source": MODEL}]},
        "node2": {"llm_models": [{"name": "chat", "source": other}]}})
    assert done.returncode != 0
    assert f"fetches for node2: model:{other[3:]} ({other}) is not in the mirror's manifest" in done.stdout
    assert "fetches for localhost" not in done.stdout
    assert "ok: [localhost]" in done.stdout
