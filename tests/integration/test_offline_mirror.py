"""playbooks/mirror.yml for real, for what these machines can reach: the wheels of one lock
(requirements/scan.lock, hashed, from PyPI) and a model published from a directory (the
generated tiny Llama, as "bring your own weights"). Then the mirror_server role serves it on
loopback and the two clients use it with nothing else: pip (--no-index, no pip config) gets
every pin of the lock with its hash, huggingface_hub (HF_ENDPOINT) the model's exact files.
A rerun of the build changes nothing. About 2 minutes on 2 idle cores (most of it pip).
"""
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.llmops.platform.plugins.module_utils import tiny_llama

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
from mirror_origin import free_port  # noqa: E402


def ansible(args, env, timeout=600):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def setup(tmp_path):
    model = tmp_path / "tiny"
    tiny_llama.write_tiny_llama(str(model), seed=0)
    port = free_port(27300)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"mirror_servers": {"hosts": {"localhost": {}}}}}}))
    extra = {"platform_home": str(tmp_path / "home"), "platform_mirror_dir": str(tmp_path / "mirror"),
             "platform_target": "local", "platform_mirror_venvs": ["scan"], "mirror_kinds": ["wheels", "model"],
             "mirror_publish_models": [{"repo": "llmops/tiny-llama", "revision": "v1", "path": str(model)}],
             "mirror_server_port": port, "mirror_server_python": sys.executable}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=os.path.join(ROOT, ".ansible"), LLMOPS_HOME=str(tmp_path / "home"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    args = ["-i", str(inventory), "playbooks/mirror.yml", "-e", json.dumps(extra)]
    yield {"tmp": tmp_path, "model": model, "url": f"http://127.0.0.1:{port}", "args": args, "env": env}
    ansible(args + ["--tags", "mirror_server", "-e", "mirror_server_state=stopped"], env)


def test_mirror_build_serve_and_use_offline(setup):
    started = time.monotonic()
    built = ansible(setup["args"], setup["env"])
    assert built.returncode == 0, built.stdout[-4000:]
    doc = json.load(open(setup["tmp"] / "mirror" / "manifest.json"))
    entries = {a["name"]: a for a in doc["artifacts"]}
    assert entries["wheels:scan"]["status"] == "fetched"
    pins = [line for line in open(os.path.join(ROOT, "requirements", "scan.lock")) if "==" in line]
    assert len(entries["wheels:scan"]["files"]) == len(pins)
    assert entries["model:llmops/tiny-llama@v1"]["status"] == "fetched"
    url = setup["url"]

    # pip: every pin of the lock from the mirror alone, hashes checked.
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    env.pop("PIP_FIND_LINKS", None)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-index", "--find-links", f"{url}/pypi/",
                           "--require-hashes", "--no-deps", "-r", os.path.join(ROOT, "requirements", "scan.lock"),
                           "-d", str(setup["tmp"] / "got")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(os.listdir(setup["tmp"] / "got")) == len(pins)

    # huggingface_hub: the published model through the mirror's Hub API.
    code = ("import sys; from huggingface_hub import snapshot_download; "
            "print(snapshot_download('llmops/tiny-llama', revision='v1', cache_dir=sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", code, str(setup["tmp"] / "hf")], capture_output=True, text=True,
                          env={**os.environ, "HF_ENDPOINT": f"{url}/hf", "HF_HUB_DISABLE_TELEMETRY": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    snapshot = done.stdout.strip().splitlines()[-1]
    for name in os.listdir(setup["model"]):
        assert open(os.path.join(snapshot, name), "rb").read() == open(setup["model"] / name, "rb").read(), name

    # A second build downloads nothing and changes nothing.
    again = ansible(setup["args"] + ["--tags", "mirror_build"], setup["env"])
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    print(f"mirror.yml build + serve + offline use + rebuild: {time.monotonic() - started:.0f} s")
