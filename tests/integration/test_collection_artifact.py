"""The collection artifact: what `ansible-galaxy collection build` packs, and what installing it brings.

No Galaxy is reachable here, so a Galaxy v3 server on loopback (local_galaxy.py) publishes
the collections bundled with the `ansible` package. Ansible is then told not to look at that
bundle (ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false), so an install into an empty collections
path has exactly what ansible-galaxy's resolver downloaded for galaxy.yml's `dependencies`.
What this proves: the declared dependencies (and theirs) resolve to the pinned bundle and
install cleanly; the installed tree alone passes `--syntax-check` of site.yml and every
playbook (which resolves every statically imported module, action, role and plugin name);
an unsatisfiable declaration fails the install. What it cannot prove: that a real Galaxy
serves these versions (ranges are checked against the bundle by a unit test).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile

import ansible
import pytest
import yaml
from local_galaxy import LocalGalaxy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
BUNDLE_ROOT = os.path.dirname(os.path.dirname(ansible.__file__))
# Files a developer's checkout accumulates that must never reach the artifact.
JUNK = [".ansible/tmp/x.json", "molecule/default/.ansible/x", "reports/bench/run.json",
        "tests/output/junit/x.xml", ".pytest_cache/v/cache", ".ruff_cache/x", ".cache/x",
        "plugins/module_utils/__pycache__/x.cpython-312.pyc", "llmops-platform-0.0.1.tar.gz"]


def _env(tmp: str, collections_path: str) -> dict[str, str]:
    config = os.path.join(tmp, "ansible.cfg")
    if not os.path.exists(config):
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("[defaults]\n")
    return dict(os.environ, ANSIBLE_CONFIG=config, ANSIBLE_HOME=os.path.join(tmp, "ansible-home"),
                ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{os.environ.get('PATH', '')}")


def _run(cmd: list[str], tmp: str, collections_path: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(tmp, collections_path), capture_output=True,
                          text=True, timeout=600, check=False)


def _source_tree(dest: str) -> None:
    """The checkout's files (tracked and new, not ignored), plus junk a checkout collects."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listing):
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src):
            continue  # deleted in the working tree, not yet committed
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)
    for rel in JUNK:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        with open(os.path.join(dest, rel), "w", encoding="utf-8") as handle:
            handle.write("junk\n")


def _build(src: str, out: str, tmp: str) -> str:
    result = _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", src, "--output-path", out],
                  tmp, os.path.join(tmp, "none"), cwd=tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    (artifact,) = glob.glob(os.path.join(out, "llmops-platform-*.tar.gz"))
    return artifact


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("artifact"))
    src = os.path.join(tmp, "src")
    _source_tree(src)
    return tmp, src, _build(src, os.path.join(tmp, "dist"), tmp)


def test_artifact_leaves_out_state_caches_and_reports(built):
    _, _, artifact = built
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert not names & set(JUNK)
    junk_dirs = (".ansible", ".collections", ".cache", ".pytest_cache", ".ruff_cache", "reports", "tests/output")
    leaked = [n for n in names if any(n == d or n.startswith(d + "/") for d in junk_dirs) or "/.ansible/" in n
              or "__pycache__" in n or n.endswith((".pyc", ".tar.gz"))]
    assert not leaked, f"junk in the artifact: {leaked[:10]}"
    for needed in ("MANIFEST.json", "FILES.json", "site.yml", "playbooks/serving.yml",
                   "roles/vllm/meta/argument_specs.yml", "plugins/module_utils/vllm_server.py",
                   "meta/runtime.yml", "README.md"):
        assert needed in names, f"{needed} missing from the artifact"


def test_install_pulls_in_declared_dependencies_and_playbooks_parse(built):
    tmp, _, artifact = built
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        declared = yaml.safe_load(handle)["dependencies"]
    assert declared, "galaxy.yml declares no dependencies"
    target = os.path.join(tmp, "installed")
    with LocalGalaxy([BUNDLE_ROOT]) as galaxy:
        result = _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-cache",
                       "-s", galaxy.url, "-p", target, artifact], tmp, target, cwd=tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = {os.path.relpath(os.path.dirname(m), os.path.join(target, "ansible_collections")).replace(os.sep, ".")
                 for m in glob.glob(os.path.join(target, "ansible_collections", "*", "*", "MANIFEST.json"))}
    assert set(declared) | {"llmops.platform"} <= installed, result.stdout
    # Nothing the declarations do not lead to (community.general brings its own dependency).
    downloaded = {p.rsplit("/", 1)[1].rsplit("-", 1)[0].replace("-", ".", 1)
                  for p in galaxy.requests if p.startswith("/download/")}
    assert set(declared) <= downloaded <= installed

    collection = os.path.join(target, "ansible_collections", "llmops", "platform")
    playbooks = [os.path.join(collection, "site.yml")]
    playbooks += sorted(glob.glob(os.path.join(collection, "playbooks", "*.yml")))
    for playbook in playbooks:
        check = _run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook],
                     tmp, target, cwd=tmp)
        assert check.returncode == 0, f"{playbook}:\n{check.stdout}{check.stderr}"
    # Playbooks are addressable by name from the installed collection.
    check = _run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                  "llmops.platform.serving"], tmp, target, cwd=tmp)
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_unsatisfiable_declaration_fails_the_install(built, tmp_path):
    """The control: the resolver reads galaxy.yml's dependencies (a range nothing meets fails)."""
    tmp, src, _ = built
    broken = str(tmp_path / "src")
    shutil.copytree(src, broken, symlinks=True)
    with open(os.path.join(broken, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy_yml = yaml.safe_load(handle)
    galaxy_yml["dependencies"]["kubernetes.core"] = ">=99.0.0"
    with open(os.path.join(broken, "galaxy.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(galaxy_yml, handle)
    artifact = _build(broken, str(tmp_path / "dist"), str(tmp_path))
    target = str(tmp_path / "installed")
    with LocalGalaxy([BUNDLE_ROOT]) as galaxy:
        result = _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-cache",
                       "-s", galaxy.url, "-p", target, artifact], str(tmp_path), target, cwd=str(tmp_path))
    assert result.returncode != 0
    assert "kubernetes.core" in result.stdout + result.stderr
