"""Every file the platform downloads is checked against a sha256 pinned in versions.yml.

Walks every task of roles/*/tasks, roles/*/handlers and playbooks/ (blocks included) and finds
each download: ansible.builtin.get_url, uri with a dest, unarchive of a URL, apt of a .deb URL,
a repository key by URL, shell/command/raw running curl or wget, and Helm charts from a chart
repository. A get_url must carry `checksum: sha256:{{ ... }}` whose expression reads a
`*_sha256` pin of platform_versions (directly, or through a role default that does), never a
checksum file fetched next to the download at run time. The exceptions are few and named:
repository signing keys refused unless their fingerprint is a pinned `*_fingerprint` (checked
the same way), K3s releases that have no pins yet, and the Helm chart (KNOWN_UNHASHED).
"""
from __future__ import annotations

import glob
import os
import re
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSIONS = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml"),
                               encoding="utf-8"))["platform_versions"]

GET_URL = {"ansible.builtin.get_url", "get_url"}
URI = {"ansible.builtin.uri", "uri"}
UNARCHIVE = {"ansible.builtin.unarchive", "unarchive"}
APT = {"ansible.builtin.apt", "apt"}
REPO_KEYS = {"ansible.builtin.apt_key", "apt_key", "ansible.builtin.rpm_key", "rpm_key"}
DEB822 = {"ansible.builtin.deb822_repository", "deb822_repository"}
SHELLS = {"ansible.builtin.shell", "shell", "ansible.builtin.command", "command", "ansible.builtin.raw", "raw",
          "ansible.builtin.script", "script"}
HELM = {"kubernetes.core.helm", "helm"}
COMMAND_DOWNLOAD = re.compile(r"\b(curl|wget)\b")
# Downloads no sha256 pin can cover, each with the reason; a new one fails until listed here.
KNOWN_UNHASHED = {
    ("roles/k8s_apply/tasks/main.yml", "Install the Helm charts at their pinned versions"):
        "kubernetes.core.helm has no checksum option: kube-prometheus-stack is pinned by exact chart "
        "version only (docs/security.md, supply chain)",
}
# K3s: for a release or arch without platform_versions.k3s_sha256 pins, the role verifies against
# the release's own sha256sum-<arch>.txt (docs/security.md says what that does and does not stop).
K3S_FALLBACK_FILES = {"roles/k3s/tasks/install.yml", "roles/k3s/tasks/upgrade.yml"}


def _task_files() -> list[str]:
    paths = glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "**", "*.yml"), recursive=True)
    paths += glob.glob(os.path.join(ROOT, "roles", "*", "handlers", "**", "*.yml"), recursive=True)
    paths += glob.glob(os.path.join(ROOT, "playbooks", "*.yml")) + [os.path.join(ROOT, "site.yml")]
    return sorted(os.path.relpath(p, ROOT) for p in paths)


def _flatten(tasks) -> list[dict]:
    out = []
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        out.append(task)
        for key in ("block", "rescue", "always"):
            out += _flatten(task.get(key))
    return out


def _tasks(path: str) -> list[dict]:
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or []
    if path.startswith(("playbooks/", "site.yml")):
        tasks = []
        for play in data:
            for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                tasks += _flatten(play.get(key))
        return tasks
    return _flatten(data)


def _module(task: dict, names: set[str]):
    for name in names:
        if name in task:
            return task[name] if task[name] is not None else {}
    return None


def _role_defaults(role: str) -> dict:
    out = {}
    paths = glob.glob(os.path.join(ROOT, "roles", role, "defaults", "main.yml"))
    paths += sorted(glob.glob(os.path.join(ROOT, "roles", role, "defaults", "main", "*.yml")))
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            out.update(yaml.safe_load(handle) or {})
    return out


def _pin_keys(expression: str, role: str, suffix: str) -> set[str]:
    """platform_versions keys ending in `suffix` that a Jinja expression reads, directly or
    through the role's defaults (one level: a default that is itself such an expression)."""
    keys = set(re.findall(r"platform_versions(?:\.|\[['\"])(\w+)", expression))
    defaults = _role_defaults(role)
    for name in re.findall(r"(?<![\w.'\"])([a-z_][a-z0-9_]*)", expression):
        value = defaults.get(name)
        if isinstance(value, str):
            keys |= set(re.findall(r"platform_versions(?:\.|\[['\"])(\w+)", value))
    return {k for k in keys if k.endswith(suffix) and k in VERSIONS}


def _role(path: str) -> str:
    return path.split("/")[1] if path.startswith("roles/") else ""


def _checked_by_fingerprint(path: str, tasks: list[dict], index: int, dest: str) -> bool:
    """A key file refused unless gpg shows a pinned fingerprint: a later task reads it with gpg,
    an assert after that requires a `*_fingerprint` that comes from platform_versions."""
    role = _role(path)
    read = next((i for i in range(index + 1, len(tasks))
                 if "gpg" in str(_module(tasks[i], SHELLS) or "") and dest in str(_module(tasks[i], SHELLS))), None)
    if read is None:
        return False
    for task in tasks[read + 1:]:
        check = _module(task, {"ansible.builtin.assert", "assert"})
        if check is not None and _pin_keys(str(check.get("that", "")), role, "_fingerprint"):
            return True
    return False


def _downloads():
    """(file, task name, kind, task args, tasks of the file, index) of every download."""
    for path in _task_files():
        tasks = _tasks(path)
        for index, task in enumerate(tasks):
            name = task.get("name", "?")
            found = []
            if (args := _module(task, GET_URL)) is not None:
                found.append(("get_url", args))
            if (args := _module(task, URI)) is not None and "dest" in args:
                found.append(("uri", args))
            if (args := _module(task, UNARCHIVE)) is not None and "://" in str(args.get("src", "")):
                found.append(("unarchive", args))
            if (args := _module(task, APT)) is not None and args.get("deb"):
                found.append(("apt deb", args))
            if (args := _module(task, REPO_KEYS)) is not None and args.get("url"):
                found.append(("repository key", args))
            if (args := _module(task, DEB822)) is not None and "://" in str(args.get("signed_by", "")):
                found.append(("repository key", args))
            if (args := _module(task, SHELLS)) is not None and COMMAND_DOWNLOAD.search(str(args)):
                found.append(("curl/wget", args))
            if (args := _module(task, HELM)) is not None and args.get("chart_repo_url"):
                found.append(("helm chart", args))
            for kind, args in found:
                yield path, name, kind, args, tasks, index


def _problem(path, name, kind, args, tasks, index) -> str | None:
    if (path, name) in KNOWN_UNHASHED:
        return None if kind != "helm chart" or args.get("chart_version") else "a chart without chart_version"
    if kind != "get_url":
        return f"{kind}: no way to check a pinned sha256; download with get_url and a pinned checksum"
    checksum = str(args.get("checksum", ""))
    if not checksum:
        dest = str(args.get("dest", ""))
        if dest and _checked_by_fingerprint(path, tasks, index, dest):
            return None
        return "get_url without checksum: add checksum: sha256:{{ platform_versions.<name>_sha256 }}"
    match = re.fullmatch(r"sha256:\{\{(.+)\}\}", checksum.strip())
    if not match:
        return f"checksum {checksum!r} is not sha256:{{{{ <a pinned value> }}}}"
    expression = match.group(1)
    if not _pin_keys(expression, _role(path), "_sha256"):
        return f"checksum {checksum!r} reads no *_sha256 pin of platform_versions"
    if re.search(r"\bor\b|://|sha256sum|_url\b", expression):
        # A checksum URL fetched at run time: only K3s releases without pins (documented).
        if path not in K3S_FALLBACK_FILES or "sha256sum-" not in expression:
            return f"checksum {checksum!r} falls back to a checksum fetched at run time"
    return None


DOWNLOADS = list(_downloads())


def test_the_walk_finds_the_platforms_downloads():
    found = {(path, kind) for path, _, kind, *_ in DOWNLOADS}
    assert {("roles/calico/tasks/apply.yml", "get_url"), ("roles/containerd/tasks/install_release.yml", "get_url"),
            ("roles/k3s/tasks/install.yml", "get_url"), ("roles/k3s/tasks/upgrade.yml", "get_url"),
            ("roles/monitoring/tasks/helm_binary.yml", "get_url"), ("roles/kubeadm/tasks/repo.yml", "get_url"),
            ("roles/router/tasks/kubernetes_gie_crds.yml", "get_url"),
            ("roles/nvidia_driver/tasks/repo_nvidia.yml", "get_url"),
            ("roles/nvidia_container_toolkit/tasks/install.yml", "get_url"),
            ("roles/k8s_apply/tasks/main.yml", "helm chart")} <= found
    assert len(DOWNLOADS) >= 11


@pytest.mark.parametrize("download", DOWNLOADS, ids=[f"{d[0]}:{d[1]}" for d in DOWNLOADS])
def test_every_download_is_checked_against_a_pinned_sha256(download):
    problem = _problem(*download)
    assert problem is None, f"{download[0]} ({download[1]}): {problem}"


@pytest.mark.parametrize("task, expected", [
    ({"ansible.builtin.get_url": {"url": "https://x/k3s", "dest": "/k3s"}}, "without checksum"),
    ({"ansible.builtin.get_url": {"url": "https://x/k3s", "dest": "/k3s", "checksum": "sha256:https://x/sums.txt"}},
     "is not sha256"),
    ({"ansible.builtin.get_url": {"url": "u", "dest": "d", "checksum": "sha256:{{ platform_versions.helm }}"}},
     "reads no *_sha256 pin"),
    ({"ansible.builtin.get_url": {"url": "u", "dest": "d",
                                  "checksum": "sha256:{{ platform_versions.helm_sha256.amd64 or (u ~ '/sha256sum.txt') }}"}},
     "fetched at run time"),
    ({"ansible.builtin.shell": "curl -fsSL https://get.k3s.io | sh -"}, "curl/wget"),
    ({"ansible.builtin.uri": {"url": "https://x/f", "dest": "/f"}}, "uri"),
    ({"ansible.builtin.unarchive": {"src": "https://x/f.tgz", "dest": "/f", "remote_src": True}}, "unarchive"),
])
def test_an_unpinned_download_is_caught(task, expected, monkeypatch):
    task = {"name": "a download", **task}
    monkeypatch.setattr(sys.modules[__name__], "_task_files", lambda: ["roles/example/tasks/main.yml"])
    monkeypatch.setattr(sys.modules[__name__], "_tasks", lambda path: [task])
    (download,) = list(_downloads())
    assert expected in _problem(*download)


def test_the_pins_are_sha256_values():
    for key in (k for k in VERSIONS if k.endswith("_sha256")):
        values = VERSIONS[key]
        flat = []
        stack = [values]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack += list(value.values())
            else:
                flat.append(value)
        assert all(isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in flat), key


def test_the_default_k3s_release_is_pinned_for_amd64():
    """The run-time checksum file is only the fallback: the default release has amd64 pins."""
    sums = VERSIONS["k3s_sha256"][VERSIONS["k3s"]]["amd64"]
    assert set(sums) == {"binary", "airgap_images"}
