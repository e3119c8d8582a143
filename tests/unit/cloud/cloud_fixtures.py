"""The default topologies of inventories/aws and inventories/gcp, as test inputs."""
from __future__ import annotations

import copy

import pytest


@pytest.fixture()
def pubkey(tmp_path):
    path = tmp_path / "id_ed25519.pub"
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests admin@test\n")
    return str(path)


def aws_cloud(pubkey: str, **overrides) -> dict:
    cloud = {
        "provider": "aws", "region": "us-east-1", "cluster_name": "llmops",
        "admin_cidrs": ["203.0.113.0/24"], "ssh_public_key_file": pubkey,
        "nodes": [{"role": "control_plane", "type": "t3.medium", "count": 1, "disk_gib": 50},
                  {"role": "worker", "type": "t3.medium", "count": 1, "disk_gib": 50},
                  {"role": "gpu_worker", "type": "g4dn.xlarge", "count": 1, "disk_gib": 200}],
    }
    cloud.update(copy.deepcopy(overrides))
    return cloud


def gcp_cloud(pubkey: str, **overrides) -> dict:
    cloud = {
        "provider": "gcp", "region": "us-central1", "project": "llmops-demo-123", "cluster_name": "llmops",
        "azs": ["us-central1-a"], "admin_cidrs": ["203.0.113.0/24"], "ssh_public_key_file": pubkey,
        "nodes": [{"role": "control_plane", "type": "e2-standard-4", "count": 1},
                  {"role": "worker", "type": "e2-standard-4", "count": 1},
                  {"role": "gpu_worker", "type": "g2-standard-96", "count": 1, "disk_gib": 500}],
    }
    cloud.update(copy.deepcopy(overrides))
    return cloud
