"""What an inventory downloads: every artifact, from platform_versions, for one selection.

`plan(versions, selection)` is the one list of artifacts. The mirror build fetches it, and
preflight (platform_offline) holds the mirror's manifest to it, so what is built and what is
required are computed by the same function. `selection` says which parts of the platform the
inventory uses (target, distribution, install methods, GPUs, models, venvs); `selection()`
normalizes it from the inventory's variables and names the variable when one is wrong.

Each artifact names the roles that fetch it, so a play checks only what its own roles need.
Versions come from platform_versions only (a role-level override such as kubeadm_version is
passed in the selection). Pure Python, no Ansible imports.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Optional

from ansible_collections.llmops.platform.plugins.module_utils.mirror import urls

KINDS = ("file", "deb", "wheels", "image", "chart", "model")
ARCHES = ("amd64", "arm64")
TARGETS = ("local", "kubernetes")
DISTRIBUTIONS = ("kubeadm", "k3s")
VENVS = ("control", "serving", "finetune", "mlflow", "scan")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Debian repositories the nodes layer's packages come from. `debian` is the archive (and its
# security suite); the others are the third-party repositories the roles add.
APT_REPOS = ("debian", "kubernetes", "kubernetes_upgrade", "nvidia_cuda", "nvidia_container_toolkit")
# Packages of the nodes layer's own roles (defaults of node_prep and kubeadm), by role.
NODE_PREP_PACKAGES = ("ca-certificates", "curl", "gnupg", "conntrack", "socat", "ebtables", "ethtool",
                      "iptables", "ipset", "kmod", "chrony")
KUBEADM_APT_PREREQUISITES = ("ca-certificates", "gnupg", "python3-debian")
KUBERNETES_PACKAGES = ("kubelet", "kubeadm", "kubectl")
NVIDIA_DEBIAN_PACKAGES = ("nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "libnvidia-ml1", "firmware-misc-nonfree")
NVIDIA_TOOLKIT_PACKAGES = ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                           "libnvidia-container1")
# Which venvs each role builds (platform_defaults' venv task, scripts/venv.sh).
VENV_ROLES = {"serving": ("vllm", "router", "gateway"), "finetune": ("llama_factory",),
              "mlflow": ("mlflow", "llama_factory"), "control": (), "scan": ()}


class PlanError(ValueError):
    """A bad selection value: the message starts with the inventory variable to fix."""


@dataclass
class Artifact:
    """One thing the platform downloads. `name` is unique and is what preflight reports."""

    name: str
    kind: str
    version: str
    source: str  # URL, image reference, hf:repo@revision, apt package spec, lock file
    sha256: str = ""  # pinned sha256 ("" when verified another way: see `verify`)
    verify: str = ""  # how its content is checked
    path: str = ""  # where it lives under platform_mirror_dir ("" until fetched, for apt/wheels)
    roles: tuple = ()  # the roles that fetch it
    arch: str = ""
    # kind-specific details: apt repository and package, lock name, image key, ...
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["roles"] = list(self.roles)
        return out


@dataclass(frozen=True)
class Selection:
    target: str = "local"
    nodes: bool = False  # Kubernetes nodes in the inventory (nodes and cluster layers)
    gpu: bool = False  # GPU nodes expected (driver, toolkit, device plugin)
    distribution: str = "kubeadm"
    containerd_install_method: str = "debian"
    nvidia_driver_source: str = "debian"
    arches: tuple = ("amd64",)
    upgrade: bool = True  # upgrade.yml's target versions too
    monitoring: bool = True
    router_implementation: str = "llmops"
    vllm_device: str = "cpu"
    finetune: bool = True  # the fine-tuning layer's images (kubernetes target)
    models: tuple = ()  # llm_models sources (hf: ones are mirrored)
    venvs: tuple = ()
    images: bool = True  # container images (kubernetes target)
    kinds: tuple = KINDS  # restrict the build to some kinds (e.g. wheels and models)
    kubernetes: str = ""  # role-level overrides ("" = platform_versions)
    kubernetes_package: str = ""
    kubernetes_upgrade: str = ""
    kubernetes_upgrade_package: str = ""
    k3s: str = ""
    k3s_upgrade: str = ""
    debian_kernel_headers: tuple = ("linux-headers-amd64",)
    extra_debs: tuple = ()  # more Debian packages for the nodes (name or name=version)
    extra_images: tuple = ()


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise PlanError(f"{name}: must be true or false, got {value!r}")


def _choice(value: Any, name: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise PlanError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def _strings(value: Any, name: str, choices: Optional[Iterable[str]] = None) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise PlanError(f"{name}: must be a list, got {value!r}")
    out = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise PlanError(f"{name}: every entry must be a non-empty string, got {item!r}")
        if choices is not None and item not in choices:
            raise PlanError(f"{name}: {item!r} is not one of {', '.join(choices)}")
        out.append(item)
    return tuple(out)


def selection(values: Mapping[str, Any]) -> Selection:
    """A Selection from a mapping (the mirror role's mirror_selection); unknown keys are refused."""
    known = set(Selection.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise PlanError(f"mirror_selection.{unknown[0]}: unknown key; the keys are {', '.join(sorted(known))}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"mirror_selection.{key}"
        if key in ("nodes", "gpu", "upgrade", "monitoring", "finetune", "images"):
            out[key] = _bool(value, name)
        elif key == "target":
            out[key] = _choice(value, name, TARGETS)
        elif key == "distribution":
            out[key] = _choice(value, name, DISTRIBUTIONS)
        elif key == "containerd_install_method":
            out[key] = _choice(value, name, ("debian", "release"))
        elif key == "nvidia_driver_source":
            out[key] = _choice(value, name, ("debian", "nvidia"))
        elif key == "vllm_device":
            out[key] = _choice(value, name, ("cpu", "gpu"))
        elif key == "arches":
            out[key] = _strings(value, name, ARCHES)
            if not out[key]:
                raise PlanError(f"{name}: name at least one architecture ({', '.join(ARCHES)})")
        elif key == "venvs":
            out[key] = _strings(value, name, VENVS)
        elif key == "kinds":
            out[key] = _strings(value, name, KINDS)
        elif key in ("models", "debian_kernel_headers", "extra_debs", "extra_images"):
            out[key] = _strings(value, name)
        else:
            out[key] = "" if value is None else str(value)
    return Selection(**out)


def _sha(value: Any, key: str) -> str:
    value = str(value or "")
    if value and not SHA256_RE.match(value):
        raise PlanError(f"platform_versions.{key}: {value!r} is not a sha256 (64 lowercase hex)")
    return value


def _need(versions: Mapping[str, Any], key: str) -> Any:
    if key not in versions or versions[key] in (None, ""):
        raise PlanError(f"platform_versions.{key}: missing; roles/platform_defaults/defaults/main/versions.yml pins it")
    return versions[key]


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _file(name: str, version: str, url: str, sha256: str, verify: str, roles: tuple, arch: str = "",
          **extra: Any) -> Artifact:
    return Artifact(name=name, kind="file", version=version, source=url, sha256=sha256, verify=verify,
                    path=urls.mirror_path(url), roles=roles, arch=arch, extra=dict(extra))


def _pinned(key: str) -> str:
    return f"sha256 pinned in versions.yml ({key})"


def _deb(package: str, version: str, repo: str, roles: tuple, sha256: str = "", sha_key: str = "",
         name: str = "") -> Artifact:
    spec = f"{package}={version}" if version else package
    verify = "sha256 from the repository's signed index (apt)"
    if sha256:
        verify += f", equal to the pin in versions.yml ({sha_key})"
    return Artifact(name=name or f"deb:{package}", kind="deb", version=version, source=spec, sha256=sha256,
                    verify=verify, roles=roles, extra={"repo": repo, "package": package})


def _image(key: str, ref: str, roles: tuple, digest: str = "") -> Artifact:
    from ansible_collections.llmops.platform.plugins.module_utils.k8s.images import split_registry

    registry, rest = split_registry(ref)
    repo, _sep, tag = rest.rpartition(":") if ":" in rest.split("/")[-1] else (rest, "", "latest")
    return Artifact(name=f"image:{registry}/{repo}:{tag}", kind="image", version=tag, source=ref,
                    sha256=digest.split(":", 1)[1] if digest else "",
                    verify="image digest from platform_image_digests" if digest else
                    "manifest digest recorded at copy (no digest pinned in platform_image_digests)",
                    path=f"{urls.IMAGES}/{registry}/{repo}", roles=roles,
                    extra={"key": key, "registry": registry, "repository": repo, "tag": tag})


def _k3s(versions: Mapping[str, Any], version: str, arch: str, roles: tuple, base_url: str) -> list[Artifact]:
    pins = ((versions.get("k3s_sha256") or {}).get(version) or {}).get(arch) or {}
    base = _fill(base_url, version=version.replace("+", "%2B"))
    binary = "k3s" if arch == "amd64" else f"k3s-{arch}"
    sums_url = f"{base}/sha256sum-{arch}.txt"
    out = []
    for part, filename in (("binary", binary), ("airgap_images", f"k3s-airgap-images-{arch}.tar.zst")):
        sha = _sha(pins.get(part), f"k3s_sha256.{version}.{arch}.{part}")
        verify = (_pinned(f"k3s_sha256.{version}.{arch}.{part}") if sha else
                  f"the release's sha256sum-{arch}.txt (no pin in versions.yml k3s_sha256)")
        out.append(_file(f"file:k3s-{part.replace('_', '-')}-{arch}@{version}", version, f"{base}/{filename}", sha,
                         verify, roles, arch, sums_url=sums_url, sums_name=filename))
    out.append(_file(f"file:k3s-sha256sum-{arch}@{version}", version, sums_url, "",
                     "the release's checksum list (read by the k3s role when no pin is set)", roles, arch,
                     checksum_list=True))
    return out


def _hf_models(sources: Iterable[str]) -> list[Artifact]:
    from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError, parse_source

    out, seen = [], set()
    for index, source in enumerate(sources):
        try:
            parsed = parse_source(source, f"llm_models[{index}].source")
        except InventoryError as exc:
            raise PlanError(str(exc)) from None
        if parsed["scheme"] != "hf":
            continue  # generated: is made on the host, path: is the operator's own storage
        key = (parsed["ref"], parsed["revision"])
        if key in seen:
            continue
        seen.add(key)
        out.append(Artifact(
            name=f"model:{parsed['ref']}@{parsed['revision']}", kind="model", version=parsed["revision"],
            source=f"hf:{parsed['ref']}@{parsed['revision']}",
            verify="each file's sha256 as the Hub lists it (LFS), else computed at download",
            path=f"{urls.HF}/{parsed['ref']}", roles=("vllm", "llama_factory"),
            extra={"repo": parsed["ref"], "revision": parsed["revision"]}))
    return out


def plan(versions: Mapping[str, Any], sel: Selection | Mapping[str, Any],
         image_digests: Optional[Mapping[str, str]] = None,
         locks: Optional[Mapping[str, str]] = None) -> list[Artifact]:
    """Every artifact `sel` needs, in a stable order. `locks` maps venv name to its lock file's
    sha256 (the wheels of a lock are one artifact: the lock pins them)."""
    if not isinstance(sel, Selection):
        sel = selection(sel)
    digests = dict(image_digests or {})
    out: list[Artifact] = []
    kube = sel.target == "kubernetes"
    nodes = sel.nodes
    debs, files = "deb" in sel.kinds, bool({"file", "chart"} & set(sel.kinds))

    # ---- Debian packages (nodes layer; the local target's Prometheus) ----
    if nodes and debs:
        for package in NODE_PREP_PACKAGES:
            out.append(_deb(package, "", "debian", ("node_prep",)))
        if sel.containerd_install_method == "debian":
            out.append(_deb("containerd", str(_need(versions, "containerd_debian")), "debian", ("containerd",)))
            out.append(_deb("runc", str(_need(versions, "runc_debian")), "debian", ("containerd",)))
        if sel.distribution == "kubeadm":
            for package in KUBEADM_APT_PREREQUISITES:
                if package not in NODE_PREP_PACKAGES:
                    out.append(_deb(package, "", "debian", ("kubeadm",)))
            package_version = sel.kubernetes_package or str(_need(versions, "kubernetes_package"))
            for package in KUBERNETES_PACKAGES:
                out.append(_deb(package, package_version, "kubernetes", ("kubeadm",)))
        if sel.gpu:
            if sel.nvidia_driver_source == "debian":
                # The role pins every nvidia-*/libnvidia-*/libcuda* package to this revision.
                driver = str(_need(versions, "nvidia_driver_debian"))
                for package in NVIDIA_DEBIAN_PACKAGES + sel.debian_kernel_headers:
                    pinned = package.startswith(("nvidia-", "libnvidia-", "libcuda"))
                    out.append(_deb(package, driver if pinned else "", "debian", ("nvidia_driver",)))
            else:
                for package in sel.debian_kernel_headers:
                    out.append(_deb(package, "", "debian", ("nvidia_driver",)))
                branch = str(_need(versions, "nvidia_driver_branch"))
                out.append(_deb(f"cuda-drivers-{branch}", "", "nvidia_cuda", ("nvidia_driver",)))
            toolkit = str(_need(versions, "nvidia_container_toolkit"))
            for package in NVIDIA_TOOLKIT_PACKAGES:
                out.append(_deb(package, toolkit, "nvidia_container_toolkit", ("nvidia_container_toolkit",)))
        for spec in sel.extra_debs:
            package, _sep, version = spec.partition("=")
            out.append(_deb(package, version, "debian", ("node_prep",)))
    if sel.target == "local" and sel.monitoring and debs:
        for package in ("prometheus", "prometheus-alertmanager"):
            key = package.replace("-", "_") + "_debian"
            out.append(_deb(package, str(_need(versions, key)), "debian", ("monitoring",),
                            _sha(versions.get(key + "_sha256"), key + "_sha256"), key + "_sha256"))
    if nodes and debs and sel.upgrade and sel.distribution == "kubeadm":
        package_version = sel.kubernetes_upgrade_package or str(_need(versions, "kubernetes_upgrade_package"))
        for package in KUBERNETES_PACKAGES:
            out.append(_deb(package, package_version, "kubernetes_upgrade", ("kubeadm",),
                            name=f"deb:{package}@upgrade"))

    # ---- Files fetched with get_url (pinned sha256) ----
    if nodes and files and sel.containerd_install_method == "release":
        for arch in sel.arches:
            for key in ("containerd", "runc"):
                version = str(_need(versions, f"{key}_release"))
                sha = _sha((versions.get(f"{key}_release_sha256") or {}).get(arch), f"{key}_release_sha256.{arch}")
                url = _fill(str(_need(versions, f"{key}_release_url")), version=version, arch=arch)
                out.append(_file(f"file:{key}-{arch}@{version}", version, url, sha,
                                 _pinned(f"{key}_release_sha256.{arch}") if sha else "", ("containerd",), arch,
                                 missing_pin=f"{key}_release_sha256.{arch}"))
    if nodes and files and sel.distribution == "k3s":
        base_url = str(_need(versions, "k3s_release_url"))
        wanted = [sel.k3s or str(_need(versions, "k3s"))]
        if sel.upgrade:
            wanted.append(sel.k3s_upgrade or str(_need(versions, "k3s_upgrade")))
        for version in wanted:
            for arch in sel.arches:
                out.extend(_k3s(versions, version, arch, ("k3s",), base_url))
    if nodes and files:
        version = str(_need(versions, "calico"))
        url = _fill(str(_need(versions, "calico_archive_url")), version=version)
        sha = _sha(versions.get("calico_archive_sha256"), "calico_archive_sha256")
        out.append(_file(f"file:calico-archive@{version}", version, url, sha, _pinned("calico_archive_sha256"),
                         ("calico",), missing_pin="calico_archive_sha256"))
    if kube and files and sel.monitoring:
        version = str(_need(versions, "helm"))
        for arch in sel.arches:
            url = _fill(str(_need(versions, "helm_url")), version=version, arch=arch)
            sha = _sha((versions.get("helm_sha256") or {}).get(arch), f"helm_sha256.{arch}")
            out.append(_file(f"file:helm-{arch}@{version}", version, url, sha,
                             _pinned(f"helm_sha256.{arch}") if sha else "", ("monitoring",), arch,
                             missing_pin=f"helm_sha256.{arch}"))
        version = str(_need(versions, "kube_prometheus_stack_chart"))
        url = _fill(str(_need(versions, "kube_prometheus_stack_chart_url")), version=version)
        sha = _sha(versions.get("kube_prometheus_stack_chart_sha256"), "kube_prometheus_stack_chart_sha256")
        chart = _file(f"chart:kube-prometheus-stack@{version}", version, url, sha,
                      _pinned("kube_prometheus_stack_chart_sha256") if sha else "", ("monitoring",),
                      missing_pin="kube_prometheus_stack_chart_sha256")
        chart.kind = "chart"
        out.append(chart)
    if kube and files and sel.router_implementation == "gateway_api_inference":
        version = str(_need(versions, "gateway_api_inference_extension"))
        url = _fill(str(_need(versions, "gateway_api_inference_extension_crd_url")), version=version)
        key = "gateway_api_inference_extension_crd_sha256"
        sha = _sha(versions.get(key), key)
        out.append(_file(f"file:inferencepool-crd@{version}", version, url, sha,
                         _pinned("gateway_api_inference_extension_crd_sha256"), ("router",),
                         missing_pin="gateway_api_inference_extension_crd_sha256"))

    # ---- Container images (Kubernetes) ----
    if sel.images and "image" in sel.kinds and (kube or nodes):
        wanted_images: list[tuple[str, tuple]] = []
        if nodes:
            wanted_images.append(("containerd_sandbox_image", ("containerd", "kubeadm")))
            if sel.gpu:
                wanted_images += [("nvidia_device_plugin_image", ("nvidia_device_plugin",)),
                                  ("gpu_smoke_test_image", ("nvidia_device_plugin",))]
        if kube:
            serving = "vllm_gpu_image" if sel.vllm_device == "gpu" else "vllm_cpu_image"
            wanted_images.append((serving, ("vllm", "router", "gateway")))
            if sel.monitoring and sel.gpu:
                wanted_images.append(("dcgm_exporter_image", ("monitoring",)))
            if sel.router_implementation == "gateway_api_inference":
                wanted_images.append(("gateway_api_inference_extension_epp_image", ("router",)))
            if sel.finetune:
                wanted_images.append(("llama_factory_image", ("llama_factory",)))
                if "vllm_gpu_image" not in [k for k, _r in wanted_images]:
                    wanted_images.append(("vllm_gpu_image", ("llama_factory",)))
        seen = set()
        for key, roles in wanted_images:
            if key in seen:
                continue
            seen.add(key)
            out.append(_image(key, str(_need(versions, key)), roles, str(digests.get(key, ""))))
        for ref in sel.extra_images:
            out.append(_image("", ref, ()))

    # ---- Python wheels: one artifact per lock (the lock pins every file) ----
    for venv in sel.venvs:
        lock_sha = (locks or {}).get(venv, "")
        out.append(Artifact(name=f"wheels:{venv}", kind="wheels", version=lock_sha[:16],
                            source=f"requirements/{venv}.lock",
                            sha256=lock_sha, verify="pip: --require-hashes when the lock has hashes, else the "
                            "files' sha256 recorded at download", path=urls.PYPI, roles=VENV_ROLES.get(venv, ()),
                            extra={"venv": venv}))

    # ---- Models ----
    out.extend(_hf_models(sel.models) if "model" in sel.kinds else [])

    out = [a for a in out if a.kind in sel.kinds]
    names = [a.name for a in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PlanError(f"mirror_selection: artifacts listed twice: {', '.join(duplicates)}")
    return out


def for_roles(artifacts: Iterable[Artifact | Mapping[str, Any]], roles: Iterable[str]) -> list:
    """The artifacts any of `roles` fetches (role names with or without the collection prefix)."""
    short = {str(r).rsplit(".", 1)[-1] for r in roles}
    out = []
    for item in artifacts:
        item_roles = item.roles if isinstance(item, Artifact) else item.get("roles", ())
        if short & set(item_roles):
            out.append(item)
    return out
