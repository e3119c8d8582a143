"""scripts/venv.sh with LLMOPS_PIP_FIND_LINKS builds a venv from the mirror's wheels only
(--no-index, no pip config): two wheels that exist nowhere but in the mirror, installed with the
lock's hashes (--require-hashes). One venv build: about 10 s on an idle machine."""
import os
import shutil
import subprocess
import threading

import pytest
from mirror_origin import free_port, sha256, wheel

from ansible_collections.llmops.platform.plugins.module_utils.mirror import pypi, server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def collection(tmp_path):
    """A copy of scripts/venv.sh next to a scan lock pinning two wheels only the mirror has."""
    root = tmp_path / "collection"
    (root / "scripts").mkdir(parents=True)
    (root / "requirements").mkdir()
    shutil.copy(os.path.join(ROOT, "scripts", "venv.sh"), root / "scripts" / "venv.sh")
    mirror = tmp_path / "mirror"
    (mirror / "pypi").mkdir(parents=True)
    files = dict([wheel("llmops-offline-one", "1.0"), wheel("llmops-offline-two", "3.2")])
    for name, data in files.items():
        (mirror / "pypi" / name).write_bytes(data)
    pypi.write_index(str(mirror / "pypi"), [(n, sha256(d)) for n, d in files.items()])
    (root / "requirements" / "scan.lock").write_text(
        "llmops-offline-one==1.0 --hash=sha256:%s\nllmops-offline-two==3.2 --hash=sha256:%s\n"
        % tuple(sha256(d) for d in files.values()))
    return root, mirror


def venv_sh(root, cache, **env):
    full = {**os.environ, "LLMOPS_CACHE": str(cache), "PIP_CONFIG_FILE": os.devnull, **env}
    full.pop("PIP_FIND_LINKS", None)
    return subprocess.run([str(root / "scripts" / "venv.sh"), "ensure", "scan"], capture_output=True, text=True,
                          env=full, timeout=300)


def test_venv_from_the_mirror_only(tmp_path, collection):
    root, mirror = collection
    srv = server.make_server(str(mirror), "127.0.0.1", free_port())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/pypi/"
        done = venv_sh(root, tmp_path / "cache", LLMOPS_PIP_FIND_LINKS=url)
    finally:
        srv.shutdown()
        srv.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    venv = done.stdout.strip()
    check = subprocess.run([f"{venv}/bin/python", "-c", "import llmops_offline_one, llmops_offline_two; "
                            "print(llmops_offline_one.VERSION, llmops_offline_two.VERSION)"],
                           capture_output=True, text=True)
    assert check.stdout.split() == ["1.0", "3.2"]
