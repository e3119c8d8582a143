"""What the mirror serves: the manifest (and what preflight reads from it), the Hub API that
huggingface_hub downloads from (HF_ENDPOINT), the read-only registry API containerd pulls from,
and the flat apt repository apt reads."""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest
from mirror_origin import free_port

from ansible_collections.llmops.platform.plugins.filter import mirror as mirror_filters
from ansible_collections.llmops.platform.plugins.module_utils.mirror import apt, hf, manifest, server


@pytest.fixture
def serve():
    servers = []

    def start(root):
        srv = server.make_server(str(root), "127.0.0.1", free_port())
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"
    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def get(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# ---- manifest ----

ENTRIES = [
    {"name": "deb:containerd", "kind": "deb", "version": "1.6.20~ds1-1+deb12u3", "source": "http://deb/containerd.deb",
     "sha256": "a" * 64, "size": 25903404, "status": "fetched"},
    {"name": "wheels:serving", "kind": "wheels", "version": "abc", "source": "requirements/serving.lock",
     "sha256": "b" * 64, "size": 10, "status": "fetched"},
    {"name": "file:k3s-binary-amd64@v1.36.4+k3s1", "kind": "file", "version": "v1.36.4+k3s1", "source": "https://x/k3s",
     "sha256": "", "size": None, "status": "not fetched here: https://x/k3s: unreachable (Name or service not known)"},
]


def test_manifest_table_lists_every_artifact_with_its_status():
    doc = manifest.document(ENTRIES, {"built_at": "2026-01-01T00:00:00Z", "selection_summary": "target local"})
    table = manifest.table(doc)
    lines = table.splitlines()
    assert "| artifact | kind | version | source | sha256 | size | status |" in lines
    assert "2 fetched (24.7 MiB), 1 not fetched." in lines
    # Not fetched first: what is missing is what a reader looks for.
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| artifact")]
    assert rows[0].startswith("| file:k3s-binary-amd64@v1.36.4+k3s1 | file |") and "not fetched here: " in rows[0]
    assert f"| deb:containerd | deb | 1.6.20~ds1-1+deb12u3 | http://deb/containerd.deb | {'a' * 64} | 24.7 MiB | fetched |" in rows


def test_missing_names_each_artifact_and_why():
    doc = manifest.document(ENTRIES, {})
    expected = [
        {"name": "deb:containerd", "kind": "deb", "version": "1.6.20~ds1-1+deb12u4", "source": "containerd=..."},
        {"name": "wheels:serving", "kind": "wheels", "sha256": "c" * 64, "source": "requirements/serving.lock"},
        {"name": "file:k3s-binary-amd64@v1.36.4+k3s1", "kind": "file", "sha256": "", "source": "https://x/k3s"},
        {"name": "model:org/m@main", "kind": "model", "source": "hf:org/m@main"},
    ]
    out = manifest.missing(expected, doc)
    assert out == [
        "deb:containerd: the mirror has 1.6.20~ds1-1+deb12u3, the play installs 1.6.20~ds1-1+deb12u4",
        "wheels:serving: requirements/serving.lock changed since the mirror was built (rebuild it)",
        "file:k3s-binary-amd64@v1.36.4+k3s1: not fetched here: https://x/k3s: unreachable (Name or service not known)",
        "model:org/m@main (hf:org/m@main) is not in the mirror's manifest",
    ]
    assert manifest.missing(expected[:1] and [{**expected[0], "version": "1.6.20~ds1-1+deb12u3"}], doc) == []


def test_missing_filter_takes_the_roles_of_the_play_and_the_manifest_text():
    doc = json.dumps(manifest.document(ENTRIES, {}))
    expected = [{"name": "wheels:serving", "kind": "wheels", "sha256": "b" * 64, "roles": ["vllm"]},
                {"name": "model:org/m@main", "kind": "model", "source": "hf:org/m@main", "roles": ["vllm"]},
                {"name": "file:calico", "kind": "file", "roles": ["calico"]}]
    assert mirror_filters.mirror_missing(expected, doc, ["llmops.platform.vllm"]) == [
        "model:org/m@main (hf:org/m@main) is not in the mirror's manifest"]
    assert mirror_filters.mirror_missing(expected, "", ["calico"]) == ["file:calico (): the mirror has no manifest"]


def test_a_manifest_of_another_format_is_refused():
    with pytest.raises(ValueError, match="rebuild the mirror"):
        manifest.load('{"format": 99, "artifacts": []}')


# ---- the Hub API (HF_ENDPOINT) ----

def tiny_model(path):
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model.safetensors").write_bytes(os.urandom(4096))
    (path / "tokenizer.json").write_text("{}")
    (path / "nested").mkdir()
    (path / "nested" / "extra.txt").write_text("x")
    return path


def test_published_model_downloads_with_huggingface_hub(tmp_path, serve):
    model = tiny_model(tmp_path / "model")
    root = tmp_path / "mirror"
    first = hf.publish(str(root), "llmops/tiny", "v1", str(model))
    assert first["changed"] is True and hf.publish(str(root), "llmops/tiny", "v1", str(model))["changed"] is False
    base = serve(root)
    status, headers, _body = get(f"{base}/hf/llmops/tiny/resolve/v1/model.safetensors", "HEAD")
    digest = hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    assert status == 200 and headers["X-Repo-Commit"] == first["commit"] and headers["ETag"] == f'"{digest}"'
    assert get(f"{base}/hf/llmops/tiny/resolve/v2/config.json")[0] == 404
    code = ("import os, sys; from huggingface_hub import snapshot_download; "
            "print(snapshot_download('llmops/tiny', revision='v1', cache_dir=sys.argv[1]))")
    env = {**os.environ, "HF_ENDPOINT": f"{base}/hf", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cache")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = done.stdout.strip().splitlines()[-1]
    assert got.endswith(f"snapshots/{first['commit']}")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "nested/extra.txt"):
        assert open(os.path.join(got, name), "rb").read() == (model / name).read_bytes(), name


def test_publish_refuses_a_directory_that_is_no_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(hf.HfError, match="no config.json"):
        hf.publish(str(tmp_path / "m"), "a/b", "main", str(tmp_path / "empty"))


# ---- the registry API (containerd hosts.toml, K3s registries.yaml) ----

def oci_layout(path, tag):
    """An OCI layout with one image: config, one layer, a manifest, tagged `tag`."""
    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "blobs" / "sha256" / digest).write_bytes(data)
        return f"sha256:{digest}"
    layer = b"layer bytes"
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    image_manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(layer), "size": len(layer)}],
    }).encode()
    digest = blob(image_manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(image_manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return digest, image_manifest, hashlib.sha256(layer).hexdigest()


def test_registry_api_serves_layouts_by_tag_and_digest(tmp_path, serve):
    from ansible_collections.llmops.platform.plugins.module_utils.mirror import images

    layout = tmp_path / "mirror" / "images" / "registry.k8s.io" / "pause"
    digest, body, layer = oci_layout(layout, "3.10.2")
    assert images.layout_digest(str(layout), "3.10.2") == digest
    base = serve(tmp_path / "mirror")
    status, headers, _ = get(f"{base}/v2/")
    assert status == 200 and headers["Docker-Distribution-API-Version"] == "registry/2.0"
    # containerd asks a mirror with ?ns=<upstream registry>
    status, headers, got = get(f"{base}/v2/pause/manifests/3.10.2?ns=registry.k8s.io")
    assert status == 200 and got == body
    assert headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    assert headers["Docker-Content-Digest"] == digest
    assert get(f"{base}/v2/pause/manifests/{digest}?ns=registry.k8s.io", "HEAD")[0] == 200
    status, _h, got = get(f"{base}/v2/pause/blobs/sha256:{layer}?ns=registry.k8s.io")
    assert status == 200 and got == b"layer bytes"
    assert get(f"{base}/v2/pause/manifests/3.9?ns=registry.k8s.io")[0] == 404
    assert get(f"{base}/v2/pause/manifests/3.10.2?ns=docker.io")[0] == 404  # another registry's pause
    # An incomplete layout is not taken for a mirrored image.
    os.unlink(layout / "blobs" / "sha256" / layer)
    assert images.layout_digest(str(layout), "3.10.2") is None


# ---- the flat apt repository ----

def fake_deb(name, version, tmp):
    data = f"{name} {version}".encode()
    filename = f"{name}_{version}_amd64.deb"
    (tmp / filename).write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    stanza = (f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: t <t@example.org>\n"
              f"Depends: libc6\nFilename: pool/main/{name[0]}/{name}/{filename}\nSize: {len(data)}\n"
              f"SHA256: {sha}\nDescription: test package")
    return apt.Deb(name, version, filename, f"http://deb/{filename}", len(data), sha, stanza)


def test_flat_repository_index_is_stable_and_points_at_the_flat_files(tmp_path):
    debs = [fake_deb("runc", "1.1.5+ds1-1+deb12u1", tmp_path), fake_deb("containerd", "1.6.20~ds1-1+deb12u3", tmp_path)]
    assert apt.write_flat_repo(str(tmp_path), debs) is True
    packages = (tmp_path / "Packages").read_text()
    assert packages.index("Package: containerd") < packages.index("Package: runc")
    assert "Filename: ./containerd_1.6.20~ds1-1+deb12u3_amd64.deb" in packages and "pool/main" not in packages
    assert gzip.decompress((tmp_path / "Packages.gz").read_bytes()).decode() == packages
    release = (tmp_path / "Release").read_text()
    assert f" {hashlib.sha256(packages.encode()).hexdigest()} {len(packages.encode())} Packages\n" in release
    assert apt.write_flat_repo(str(tmp_path), list(reversed(debs))) is False  # a rebuild changes nothing


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not on this host")
def test_apt_reads_the_flat_repository_as_a_source(tmp_path, serve):
    repo = tmp_path / "mirror" / "apt"
    repo.mkdir(parents=True)
    debs = [fake_deb("containerd", "1.6.20~ds1-1+deb12u3", repo)]
    apt.write_flat_repo(str(repo), debs)
    base = serve(tmp_path / "mirror")
    root = apt.AptRoot(str(tmp_path / "aptroot"), "amd64", [apt.Repo("mirror", f"deb [trusted=yes] {base}/apt/ ./")])
    assert root.update() == ""
    done = subprocess.run(["apt-cache", *root.options(), "show", "containerd"], capture_output=True, text=True)
    fields = apt.stanza_fields(done.stdout)
    assert fields["Version"] == "1.6.20~ds1-1+deb12u3" and fields["SHA256"] == debs[0].sha256
    assert fields["Filename"] == "./containerd_1.6.20~ds1-1+deb12u3_amd64.deb"


def test_apt_output_parsing():
    line = ("'http://deb.debian.org/debian/pool/main/c/containerd/containerd_1.6.20%7eds1-1%2bdeb12u3_amd64.deb' "
            "containerd_1.6.20~ds1-1+deb12u3_amd64.deb 25903404 SHA256:" + "8" * 64)
    match = apt.URI_RE.match(line)
    assert match["file"] == "containerd_1.6.20~ds1-1+deb12u3_amd64.deb" and match["size"] == "25903404"
    inst = apt.INST_RE.match("Inst libgcc-s1 (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64]) []")
    assert inst.group("name", "version") == ("libgcc-s1", "12.2.0-14+deb12u1")
    assert apt.INST_RE.match("Inst conntrack [1:1.4.6-2] (1:1.4.7-1+b2 Debian:12.15/oldstable [amd64])") \
        .group("version") == "1:1.4.7-1+b2"


@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("gpg") is None, reason="needs apt-get and gpg")
def test_a_signed_repository_is_read_with_signed_by_and_a_tampered_index_is_refused(tmp_path, serve, monkeypatch):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "llmops mirror test <t@example.org>",
                    "ed25519", "sign", "1d"], check=True, capture_output=True)
    repo = tmp_path / "mirror" / "apt"
    repo.mkdir(parents=True)
    apt.write_flat_repo(str(repo), [fake_deb("runc", "1.1.5+ds1-1+deb12u1", repo)], sign_key="t@example.org")
    assert (repo / "InRelease").read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    key = repo / "mirror-key.asc"
    assert key.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    base = serve(tmp_path / "mirror")
    root = apt.AptRoot(str(tmp_path / "aptroot"), "amd64", [apt.Repo("mirror", f"deb [signed-by={key}] {base}/apt/ ./")])
    assert root.update() == ""
    # An index changed after signing no longer matches the signed Release: apt refuses it.
    (repo / "Packages").write_text((repo / "Packages").read_text().replace("1.1.5", "9.9.9"))
    (repo / "Packages.gz").unlink()
    problems = apt.AptRoot(str(tmp_path / "aptroot2"), "amd64", root.repos).update()
    assert "Hash Sum mismatch" in problems or "File has unexpected size" in problems, problems
