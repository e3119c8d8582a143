"""The NVIDIA container toolkit's config.toml: the role's own tasks (tasks/config.yml) run
for real on localhost against a stand-in of the file the package ships (its device list keys
commented out at their defaults), twice: the first run sets the keys, the second changes
nothing, and the result is TOML with the keys the device plugin's strategy needs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The top of the file nvidia-container-toolkit 1.17 installs (the rest is sections).
SHIPPED = """#accept-nvidia-visible-devices-as-volume-mounts = false
#accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"
#swarm-resource = "DOCKER_RESOURCE_GPU"

[nvidia-container-cli]
environment = []
ldconfig = "@/sbin/ldconfig"
load-kmods = true

[nvidia-container-runtime]
log-level = "info"
mode = "auto"
runtimes = ["docker-runc", "runc", "crun"]
"""
PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: llmops.platform.nvidia_container_toolkit
        tasks_from: config
"""


def _run(tmp_path, extra: dict) -> dict:
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")),
               ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           str(play), "-e", json.dumps(extra)]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return json.loads(result.stdout)["stats"]["localhost"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the tasks set root ownership")
@pytest.mark.parametrize("strategy,envvar,mounts", [("volume-mounts", False, True), ("envvar", True, False)])
def test_config_keys_match_the_device_list_strategy_and_are_idempotent(tmp_path, strategy, envvar, mounts):
    config = tmp_path / "nvidia-container-runtime" / "config.toml"
    config.parent.mkdir()
    config.write_text(SHIPPED)
    extra = {"nvidia_container_toolkit_config_file": str(config), "platform_nvidia_device_list_strategy": strategy,
             "ansible_python_interpreter": sys.executable}
    first = _run(tmp_path, extra)
    assert first["changed"] == 1 and first["failures"] == 0  # one loop task, both keys
    assert _run(tmp_path, extra)["changed"] == 0
    text = config.read_text()
    parsed = tomllib.loads(text)
    # The commented defaults are replaced in place, not left next to the setting.
    assert "#accept-nvidia-visible-devices" not in text
    assert parsed["accept-nvidia-visible-devices-envvar-when-unprivileged"] is envvar
    assert parsed["accept-nvidia-visible-devices-as-volume-mounts"] is mounts
    # Everything else is as shipped.
    assert parsed["supported-driver-capabilities"] == "compat32,compute,display,graphics,ngx,utility,video"
    assert parsed["nvidia-container-runtime"]["runtimes"] == ["docker-runc", "runc", "crun"]
    assert oct(config.stat().st_mode & 0o777) == "0o644"
