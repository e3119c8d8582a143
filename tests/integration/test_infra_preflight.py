"""Preflight of the infra layer through the real playbook, for both clouds' inventories.

`--tags preflight` runs only validation: no cloud API is called, so this needs neither
credentials nor an emulator. Errors name the field (and the inventory config file).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def _cloud(cloud_provider: str, key: str, **overrides) -> dict:
    if cloud_provider == "aws":
        cloud = {"provider": "aws", "region": "us-east-1", "cluster_name": "llmops",
                 "nodes": [{"role": "control_plane", "type": "t3.medium"}, {"role": "gpu_worker", "type": "g4dn.xlarge"}]}
    else:
        cloud = {"provider": "gcp", "project": "my-llmops-project", "region": "us-central1", "azs": ["us-central1-a"],
                 "cluster_name": "llmops",
                 "nodes": [{"role": "control_plane", "type": "e2-standard-4"}, {"role": "gpu_worker", "type": "g2-standard-96"}]}
    cloud.update({"admin_cidrs": ["192.0.2.10/32"], "ssh_public_key_file": key}, **overrides)
    return cloud


def _preflight(tmp_path, provider: str, cloud: dict) -> tuple[int, str]:
    extra = tmp_path / "cloud.json"
    extra.write_text(json.dumps({"cloud": cloud}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", provider),
                             "playbooks/infra.yml", "--tags", "preflight", "-e", f"@{extra}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    # The YAML callback folds long messages: compare with whitespace collapsed.
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.fixture()
def key(tmp_path):
    path = tmp_path / "id_ed25519.pub"
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n")
    return str(path)


@pytest.mark.parametrize("provider", ["aws", "gcp"])
def test_the_shipped_inventory_passes_preflight(tmp_path, key, provider):
    code, out = _preflight(tmp_path, provider, _cloud(provider, key))
    assert code == 0, out[-3000:]
    assert "Validate the cloud model" in out


@pytest.mark.parametrize("provider, overrides, expected", [
    ("aws", {"admin_cidrs": ["0.0.0.0/0"]}, "cloud.admin_cidrs[0]: 0.0.0.0/0 opens the API server"),
    ("aws", {"provider": "azure"}, "cloud.provider: 'azure' is not supported; use aws or gcp"),
    ("aws", {"cluster_name": "prod"}, "aws_ec2.yml: filters.tag:llmops-cluster is 'llmops' but cloud.cluster_name is 'prod'"),
    ("aws", {"region": "eu-central-2"}, "cloud.nodes[1].type: g4dn.xlarge is not offered in eu-central-2"),
    ("gcp", {"nodes": [{"role": "control_plane", "type": "e2-standard-4"}, {"role": "gpu_worker", "type": "e2-standard-8"}]},
     "cloud.nodes[1].type: e2-standard-8 has no GPU"),
    ("gcp", {"nodes": [{"role": "control_plane", "type": "e2-standard-4", "count": 0}]}, "cloud.nodes[0].count: must be between 1"),
])
def test_bad_fields_fail_naming_the_field(tmp_path, key, provider, overrides, expected):
    code, out = _preflight(tmp_path, provider, _cloud(provider, key, **overrides))
    assert code != 0 and expected in out, out[-3000:]
