"""A mirror build against a fake upstream on loopback: every file checked against its pin, the
manifest written, and a second build fetches nothing (not one request reaches the upstream)."""
import json
import os
import subprocess
import sys

import pytest
from mirror_origin import Origin, index_page, sha256, wheel

from ansible_collections.llmops.platform.plugins.module_utils.mirror import build, manifest, urls

CALICO = b"calico archive bytes"
HELM = b"helm tarball bytes"
CHART = b"chart bytes"
K3S = b"k3s binary"
K3S_IMAGES = b"k3s airgap images"
WHEELS = dict([wheel("llmops-fake-one", "1.0"), wheel("llmops-fake-two", "2.1")])


def versions(origin: str, **overrides) -> dict:
    sums = f"{sha256(K3S)}  k3s\n{sha256(K3S_IMAGES)}  k3s-airgap-images-amd64.tar.zst\n".encode()
    out = {
        "calico": "v3.29.3", "calico_archive_url": origin + "/calico/archive/{version}.tar.gz",
        "calico_archive_sha256": sha256(CALICO),
        "helm": "3.18.4", "helm_url": origin + "/helm/helm-v{version}-linux-{arch}.tar.gz",
        "helm_sha256": {"amd64": sha256(HELM)},
        "kube_prometheus_stack_chart": "80.7.0",
        "kube_prometheus_stack_chart_url": origin + "/charts/kube-prometheus-stack-{version}.tgz",
        "k3s": "v1.36.4+k3s1", "k3s_upgrade": "v1.37.1+k3s1", "k3s_sha256": {},
        "k3s_release_url": origin + "/k3s/{version}",
    }
    out.update(overrides)
    return out, {
        "/calico/archive/v3.29.3.tar.gz": CALICO,
        "/helm/helm-v3.18.4-linux-amd64.tar.gz": HELM,
        "/charts/kube-prometheus-stack-80.7.0.tgz": CHART,
        "/k3s/v1.36.4+k3s1/k3s": K3S,
        "/k3s/v1.36.4+k3s1/k3s-airgap-images-amd64.tar.zst": K3S_IMAGES,
        "/k3s/v1.36.4+k3s1/sha256sum-amd64.txt": sums,
        "/wheels/": index_page(WHEELS),
        **{f"/wheels/{name}": data for name, data in WHEELS.items()},
    }


SELECTION = {"target": "kubernetes", "nodes": True, "distribution": "k3s", "upgrade": False, "gpu": False,
             "kinds": ["file", "chart", "wheels"], "venvs": ["scan"], "router_implementation": "llmops"}


@pytest.fixture
def collection(tmp_path):
    """A collection root whose scan lock pins the two fake wheels, with their hashes."""
    root = tmp_path / "collection"
    (root / "requirements").mkdir(parents=True)
    lines = [f"{n.split('-')[0].replace('_', '-')}=={n.split('-')[1]} --hash=sha256:{sha256(d)}"
             for n, d in WHEELS.items()]
    (root / "requirements" / "scan.lock").write_text("\n".join(lines) + "\n")
    return root


def run(mirror, collection, vers, kinds=("file", "chart", "wheels"), **options):
    """A build; tests about files leave pip out (kinds), it is the slow part."""
    opts = build.Options(mirror_dir=str(mirror), collection_root=str(collection), timeout=10,
                         venv_python=lambda _venv: sys.executable, **options)
    return build.build(vers, {**SELECTION, "kinds": list(kinds)}, opts)


def pip_env(origin):
    # pip reads only the fake index: no config file, no PyPI.
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": origin.url + "/wheels/"}


def test_build_verifies_writes_the_manifest_and_a_rebuild_fetches_nothing(tmp_path, collection):
    mirror = tmp_path / "mirror"
    with Origin({}) as origin:
        vers, files = versions(origin.url)
        origin.files.update(files)
        first = run(mirror, collection, vers, pip_env=pip_env(origin))
        assert first["changed"] is True
        doc = manifest.load(str(mirror / urls.MANIFEST_JSON))
        entries = manifest.by_name(doc)
        calico = entries["file:calico-archive@v3.29.3"]
        assert calico["status"] == "fetched" and calico["sha256"] == sha256(CALICO) and calico["size"] == len(CALICO)
        assert (mirror / calico["path"]).read_bytes() == CALICO
        # K3s without pins: checked against the release's sha256sum file, fetched with it.
        k3s = entries["file:k3s-binary-amd64@v1.36.4+k3s1"]
        assert k3s["status"] == "fetched" and k3s["sha256"] == sha256(K3S)
        assert (mirror / "files/127.0.0.1:{}/k3s/v1.36.4+k3s1/k3s".format(origin.port)).read_bytes() == K3S
        # The chart has no pin: not fetched, and the reason names the pin to add.
        chart = entries["chart:kube-prometheus-stack@80.7.0"]
        assert chart["status"].startswith("not fetched here: no sha256 pinned in versions.yml "
                                          "(kube_prometheus_stack_chart_sha256)")
        assert first["not_fetched"] == {"chart:kube-prometheus-stack@80.7.0": chart["status"][len("not fetched here: "):]}
        wheels = entries["wheels:scan"]
        assert wheels["status"] == "fetched" and sorted(f["file"] for f in wheels["files"]) == sorted(WHEELS)
        assert all(f["sha256"] == sha256(WHEELS[f["file"]]) for f in wheels["files"])
        page = (mirror / "pypi" / "index.html").read_text()
        assert all(f'{name}#sha256={sha256(data)}' in page for name, data in WHEELS.items())
        table = (mirror / urls.MANIFEST_TABLE).read_text()
        assert "| artifact | kind | version | source | sha256 | size | status |" in table
        assert f"| file:calico-archive@v3.29.3 | file | v3.29.3 | {origin.url}/calico/archive/v3.29.3.tar.gz" in table

        served = len(origin.requests)
        stamp = os.stat(mirror / urls.MANIFEST_JSON).st_mtime_ns
        second = run(mirror, collection, vers, pip_env=pip_env(origin))
        assert origin.requests[served:] == []  # nothing fetched, not even an index page
        assert second["changed"] is False and second["downloaded"] == []
        assert os.stat(mirror / urls.MANIFEST_JSON).st_mtime_ns == stamp
        assert manifest.load(str(mirror / urls.MANIFEST_JSON))["artifacts"] == doc["artifacts"]


def test_a_tampered_download_is_refused_and_not_kept(tmp_path, collection):
    mirror = tmp_path / "mirror"
    with Origin({}) as origin:
        vers, files = versions(origin.url)
        files["/calico/archive/v3.29.3.tar.gz"] = b"not the pinned bytes"
        origin.files.update(files)
        result = run(mirror, collection, vers, kinds=("file", "chart"))
    reason = result["not_fetched"]["file:calico-archive@v3.29.3"]
    assert "does not match the pinned " + sha256(CALICO) in reason
    assert not (mirror / urls.mirror_path(vers["calico_archive_url"].replace("{version}", "v3.29.3"))).exists()
    assert not [p for p in (mirror / "files").rglob("*") if p.name.startswith(".")]  # no temporary left


def test_a_file_changed_on_disk_is_fetched_again(tmp_path, collection):
    mirror = tmp_path / "mirror"
    with Origin({}) as origin:
        vers, files = versions(origin.url)
        origin.files.update(files)
        run(mirror, collection, vers, kinds=("file", "chart"))
        path = mirror / urls.mirror_path(origin.url + "/helm/helm-v3.18.4-linux-amd64.tar.gz")
        path.write_bytes(b"corrupted")
        served = len(origin.requests)
        again = run(mirror, collection, vers, kinds=("file", "chart"))
        assert origin.requests[served:] == [("GET", "/helm/helm-v3.18.4-linux-amd64.tar.gz")]
        assert path.read_bytes() == HELM and again["downloaded"] == [str(path.relative_to(mirror))]


def test_trust_on_first_use_fetches_an_unpinned_file_and_keeps_its_sha256(tmp_path, collection):
    mirror = tmp_path / "mirror"
    with Origin({}) as origin:
        vers, files = versions(origin.url)
        origin.files.update(files)
        run(mirror, collection, vers, trust_on_first_use=True, kinds=("file", "chart"))
        entry = manifest.by_name(manifest.load(str(mirror / urls.MANIFEST_JSON)))["chart:kube-prometheus-stack@80.7.0"]
        assert entry["status"] == "fetched" and entry["sha256"] == sha256(CHART)
        assert "trust on first use" in entry["verify"]
        served = len(origin.requests)
        run(mirror, collection, vers, trust_on_first_use=True, kinds=("file", "chart"))
        assert origin.requests[served:] == []


def test_an_unreachable_upstream_is_recorded_not_fatal(tmp_path, collection):
    vers, _files = versions("http://127.0.0.1:9")  # discard port: connection refused
    result = run(tmp_path / "mirror", collection, vers,
                 pip_env={"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_RETRIES": "0",
                          "PIP_FIND_LINKS": "http://127.0.0.1:9/"})
    assert "unreachable" in result["not_fetched"]["file:calico-archive@v3.29.3"]
    assert "pip download failed" in result["not_fetched"]["wheels:scan"]
    assert result["fetched"] == 0


def test_a_changed_lock_downloads_its_wheels_again(tmp_path, collection):
    mirror = tmp_path / "mirror"
    with Origin({}) as origin:
        vers, files = versions(origin.url)
        origin.files.update(files)
        run(mirror, collection, vers, pip_env=pip_env(origin))
        lock = collection / "requirements" / "scan.lock"
        lock.write_text(lock.read_text().splitlines()[0] + "\n")  # one pin left
        served = len(origin.requests)
        run(mirror, collection, vers, pip_env=pip_env(origin))
        assert ("GET", "/wheels/") in origin.requests[served:]
        entry = manifest.by_name(manifest.load(str(mirror / urls.MANIFEST_JSON)))["wheels:scan"]
        assert [f["file"] for f in entry["files"]] == ["llmops_fake_one-1.0-py3-none-any.whl"]


def test_the_module_runs_the_build(tmp_path, collection):
    """plugins/modules/llm_mirror.py is a thin face: arguments in, the build's result out."""
    with Origin({}) as origin:
        vers, files = versions(origin.url)
        origin.files.update(files)
        args = {"ANSIBLE_MODULE_ARGS": {"dir": str(tmp_path / "m"), "versions": vers, "collection_root": str(collection),
                                        "selection": {**SELECTION, "kinds": ["file"]}, "timeout": 10}}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run([sys.executable, "-m", "ansible_collections.llmops.platform.plugins.modules.llm_mirror"],
                              input=json.dumps(args), capture_output=True, text=True, env=env, timeout=60)
    result = json.loads(done.stdout)
    assert result["changed"] is True and result["fetched"] == 5, result
    assert result["not_fetched"] == {}  # the chart is not of kind file


def test_lock_chunks_keep_options_and_hashes_together(tmp_path):
    from ansible_collections.llmops.platform.plugins.module_utils.mirror import pypi

    lock = tmp_path / "x.lock"
    lock.write_text("# comment\n--index-url https://pypi.example/simple\na==1 \\\n    --hash=sha256:aa\nb==2 --hash=sha256:bb\n"
                    "c==3 --hash=sha256:cc\n")
    chunks = pypi.lock_chunks(str(lock), 2)
    assert chunks == [["--index-url https://pypi.example/simple", "a==1 --hash=sha256:aa", "c==3 --hash=sha256:cc"],
                      ["--index-url https://pypi.example/simple", "b==2 --hash=sha256:bb"]]
    assert len(pypi.lock_chunks(str(lock), 10)) == 3


def test_debian_packages_closure_flat_repo_and_a_failed_refresh_keeps_them(tmp_path, collection, monkeypatch):
    """The apt step with apt itself replaced by a fake resolver (the real one runs in
    tests/integration/test_offline_mirror_apt.py): every package of the closure is downloaded
    and checked, indexed in the flat repository, dependencies say which package needs them, and
    a refresh that cannot reach the archive keeps what the mirror had."""
    from ansible_collections.llmops.platform.plugins.module_utils.mirror import apt

    debs = {"containerd": b"containerd deb", "runc": b"runc deb", "libc6": b"libc6 deb"}
    with Origin({f"/pool/{name}.deb": data for name, data in debs.items()}) as origin:
        closure = [apt.Deb(name, "1.0", f"{name}_1.0_amd64.deb", f"{origin.url}/pool/{name}.deb", len(data), sha256(data),
                           f"Package: {name}\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/{name}.deb\n"
                           f"Size: {len(data)}\nSHA256: {sha256(data)}")
                   for name, data in debs.items()]
        reachable = {"yes": True}

        def resolve(self, specs):
            if not reachable["yes"]:
                raise apt.AptError("E: Unable to locate package containerd")
            return closure

        monkeypatch.setattr(apt, "repositories", lambda *a, **k: {"debian": apt.Repo("debian", "deb http://x bookworm main")})
        monkeypatch.setattr(apt.AptRoot, "update", lambda self: "")
        monkeypatch.setattr(apt.AptRoot, "resolve", resolve)
        vers = {"containerd_debian": "1.0", "runc_debian": "1.0", "calico": "v1", "calico_archive_url": "x",
                "k3s": "v1", "k3s_release_url": "x"}
        opts = build.Options(mirror_dir=str(tmp_path / "m"), collection_root=str(collection), timeout=10)
        selection = {"nodes": True, "distribution": "k3s", "kinds": ["deb"], "upgrade": False, "target": "local",
                     "monitoring": False}
        monkeypatch.setattr(build.planmod, "NODE_PREP_PACKAGES", ())
        first = build.build(vers, selection, opts)
        assert first["not_fetched"] == {} and len(first["downloaded"]) == 3
        doc = manifest.by_name(manifest.load(str(tmp_path / "m" / urls.MANIFEST_JSON)))
        assert doc["deb:containerd"]["path"] == "apt/containerd_1.0_amd64.deb"
        assert doc["deb:libc6@1.0"]["required_by"] == ["deb:containerd", "deb:runc"]
        packages = (tmp_path / "m" / "apt" / "Packages").read_text()
        assert packages.count("Package: ") == 3 and "Filename: ./libc6_1.0_amd64.deb" in packages

        reachable["yes"] = False
        served = len(origin.requests)
        again = build.build(vers, selection, opts)
        assert origin.requests[served:] == []
        assert again["not_fetched"] == {} and again["changed"] is False
        assert (tmp_path / "m" / "apt" / "Packages").read_text() == packages
