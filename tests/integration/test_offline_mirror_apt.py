"""The Debian part of the mirror for real (deb.debian.org is reachable here): the local target's
pinned Prometheus and Alertmanager packages with their whole dependency closure, checked against
the signed index and against the sha256 pinned in versions.yml, then a bare apt (empty dpkg
status, the mirror its only source) resolves and downloads both from the mirror alone. A rebuild
downloads no package again. About a minute, most of it the first download (~40 MB)."""
import os
import shutil
import subprocess
import sys
import threading

import pytest
import yaml

from ansible_collections.llmops.platform.plugins.module_utils.mirror import apt, build, manifest, server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
from mirror_origin import free_port  # noqa: E402

VERSIONS = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs a Debian host (apt-get)")
def test_debian_packages_with_their_closure_from_the_mirror_alone(tmp_path):
    mirror = tmp_path / "mirror"
    options = build.Options(mirror_dir=str(mirror), collection_root=ROOT, timeout=60,
                            work_dir=str(tmp_path / "work"))
    selection = {"target": "local", "kinds": ["deb"], "monitoring": True}
    first = build.build(VERSIONS, selection, options)
    assert first["not_fetched"] == {}, first["not_fetched"]
    entries = manifest.by_name(manifest.load(str(mirror / "manifest.json")))
    prom = entries["deb:prometheus"]
    assert prom["version"] == VERSIONS["prometheus_debian"] and prom["sha256"] == VERSIONS["prometheus_debian_sha256"]
    closure = [e for e in entries.values() if e.get("required_by")]
    assert closure and all(e["status"] == "fetched" for e in closure)
    assert "libc6" in {e["name"].split(":")[1].split("@")[0] for e in closure}

    again = build.build(VERSIONS, selection, options)
    assert again["downloaded"] == [] and again["changed"] is False

    srv = server.make_server(str(mirror), "127.0.0.1", free_port(27400))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        node = apt.AptRoot(str(tmp_path / "node"), "amd64", [apt.Repo("mirror", f"deb [trusted=yes] {base}/apt/ ./")])
        assert node.update() == ""
        wanted = [f"prometheus={VERSIONS['prometheus_debian']}",
                  f"prometheus-alertmanager={VERSIONS['prometheus_alertmanager_debian']}"]
        debs = node.resolve(wanted)
        assert {d.url.split("/apt/")[0] for d in debs} == {base}  # every package from the mirror
        assert len(debs) == len(closure) + 2
        done = subprocess.run(["apt-get", *node.options(), "install", "-d", "-y", "-qq", *wanted],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        srv.shutdown()
        srv.server_close()
