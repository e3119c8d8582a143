"""Check-mode runs of cluster.yml, upgrade.yml and reset.yml against a real Debian 12
systemd container (the Molecule image of the nodes layer): apt, files and services are
evaluated on a real host, the render directory is written, and steps that need the
cluster (package installs from pkgs.k8s.io, kubeadm, the API) are shown as a plan.

Needs a running Docker daemon and the image built by scripts/build-molecule-image.sh
(LLMOPS_MOLECULE_IMAGE, or any local/llmops-debian12-systemd tag), which `make molecule`
provides; skipped otherwise, and a failure with CI=true.
The container is started here and removed afterwards. Check mode changes nothing in it,
so the runs go in parallel. ~3 min on 2 busy cores.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml"), encoding="utf-8") as _handle:
    VERSIONS = yaml.safe_load(_handle)["platform_versions"]
INVENTORY = os.path.join(ROOT, "tests", "render", "inventories", "check")


def _docker(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def _image() -> str | None:
    if os.environ.get("LLMOPS_MOLECULE_IMAGE"):
        return os.environ["LLMOPS_MOLECULE_IMAGE"]
    try:
        out = _docker("images", "--format", "{{.Repository}}:{{.Tag}}", "local/llmops-debian12-systemd").stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0] if out else None


@pytest.fixture(scope="module")
def container():
    image = _image()
    if image is None or _docker("info", check=False, timeout=30).returncode != 0:
        pytest.skip("needs dockerd and the Molecule image (scripts/build-molecule-image.sh)")
    name = f"llmops-cluster-check-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "--name", name, "--hostname", "cluster-check", "--cap-add", "SYS_ADMIN",
            "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined", "--security-opt",
            "apparmor=unconfined", "--cgroupns=host", "--tmpfs", "/run", "--tmpfs", "/run/lock",
            "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", image, "/lib/systemd/systemd")
    try:
        # What a node prepared by the nodes layer has: apt lists, and python3-debian
        # (deb822_repository needs it even in check mode).
        # Retried: the Debian mirror answers most, not all, requests from these machines.
        prepare = ("for i in 1 2 3; do apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                   "apt-get install -y -qq python3-debian >/dev/null && exit 0; sleep 5; done; exit 1")
        result = _docker("exec", name, "sh", "-c", prepare, check=False, timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        yield name
    finally:
        _docker("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def airgap(tmp_path_factory):
    """A stand-in airgap directory: files plus the sha256sum file that vouches for them."""
    directory = tmp_path_factory.mktemp("airgap")
    (directory / "k3s").write_bytes(b"#!/bin/sh\necho k3s\n")
    (directory / "k3s-airgap-images-amd64.tar.zst").write_bytes(os.urandom(4096))
    sums = "".join(f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in ("k3s", "k3s-airgap-images-amd64.tar.zst"))
    (directory / "sha256sum-amd64.txt").write_text(sums)
    bad = tmp_path_factory.mktemp("airgap-bad")
    for name in ("k3s", "sha256sum-amd64.txt"):
        (bad / name).write_bytes((directory / name).read_bytes())
    (bad / "k3s-airgap-images-amd64.tar.zst").write_bytes(b"tampered")
    return str(directory), str(bad)


RUNS = {
    "kubeadm": ("cluster.yml", {}),
    "upgrade": ("upgrade.yml", {}),
    "reset_unconfirmed": ("reset.yml", {}),
    "reset": ("reset.yml", {"reset_confirm": "yes"}),
    # The stand-in files as a release without pins (k3s_sha256 {}): checked against their
    # sha256sum file. With the default release's pins they are refused.
    "k3s_airgap": ("cluster.yml", {"cluster_distribution": "k3s", "k3s_sha256": {}}),
    "k3s_airgap_tampered": ("cluster.yml", {"cluster_distribution": "k3s", "k3s_sha256": {}}),
    "k3s_airgap_pinned": ("cluster.yml", {"cluster_distribution": "k3s"}),
}


@pytest.fixture(scope="module")
def runs(container, airgap, tmp_path_factory):
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, LLMOPS_CHECK_CONTAINER=container, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")), ANSIBLE_NOCOLOR="1",
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    procs = {}
    for name, (playbook, extra) in RUNS.items():
        home = str(tmp_path_factory.mktemp(name))
        extra = {"platform_home": home, "platform_render_dir": os.path.join(home, "rendered"), **extra}
        if name.startswith("k3s"):
            extra["k3s_airgap_dir"] = airgap[1] if name.endswith("tampered") else airgap[0]
        cmd = [os.path.join(bin_dir, "ansible-playbook"), "-i", INVENTORY, f"playbooks/{playbook}", "--check",
               "-e", json.dumps(extra)]
        procs[name] = (home, subprocess.Popen(cmd, cwd=ROOT, env=env, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    results = {}
    for name, (home, proc) in procs.items():
        out, _ = proc.communicate(timeout=900)
        results[name] = (proc.returncode, out, home)
    return results


def test_cluster_check_mode_reaches_the_end(runs):
    rc, out, home = runs["kubeadm"]
    assert rc == 0, out[-4000:]
    assert out.count("would install and hold kubelet=1.36.4-1.1, kubeadm=1.36.4-1.1, kubectl=1.36.4-1.1") == 3
    assert "would apply" in out and "would patch the Nodes" in out
    rendered = os.path.join(home, "rendered", "cluster")
    assert sorted(os.listdir(rendered)) == ["calico", "kubeadm", "nodes", "nvidia-device-plugin"]


def test_upgrade_check_mode_plans_one_minor_node_by_node(runs):
    rc, out, _ = runs["upgrade"]
    assert rc == 0, out[-4000:]
    assert "kubeadm upgrade apply v1.37.1" in out
    assert out.count("run kubeadm upgrade node") == 2
    # serial: 1 -> one play batch per node.
    assert out.count("PLAY [Upgrade the workers, node by node]") == 2


def test_reset_needs_confirmation(runs):
    rc, out, _ = runs["reset_unconfirmed"]
    assert rc != 0 and "reset_confirm=yes" in out
    rc, out, _ = runs["reset"]
    assert rc == 0, out[-4000:]


def test_k3s_airgap_check_mode_and_checksum_guard(runs):
    rc, out, home = runs["k3s_airgap"]
    assert rc == 0, out[-4000:]
    assert sorted(os.listdir(os.path.join(home, "rendered", "cluster", "k3s"))) == ["cp1", "cpu1", "gpu1"]
    rc, out, _ = runs["k3s_airgap_tampered"]
    # No pins for the stand-in release: checked against its sha256sum file, and refused.
    assert rc != 0 and "is missing or does not match the sha256 of" in out
    # The default release's pins win over the shipped sha256sum file: the stand-ins are refused,
    # naming the pinned value.
    rc, out, _ = runs["k3s_airgap_pinned"]
    pinned = VERSIONS["k3s_sha256"][VERSIONS["k3s"]]["amd64"]["binary"]
    assert rc != 0 and f"does not match the sha256 of {VERSIONS['k3s']} ({pinned})" in out
