"""KVCached settings of the vllm role (`vllm_kvcached`), resolved per model and validated.

Pure Python, no Ansible imports: the vllm role and the preflight role call it through the
`vllm_kvcached_models` filter, the tests call it directly. Every error names the field
and the fix. Facts this relies on (kvcached 0.1.6, docs/kvcached.md has the sources):
- it is a source-only package whose setup.py builds a CUDA (or ROCm) extension against the
  installed torch and stops on a CPU torch, so it cannot run on vLLM's CPU build;
- ENABLE_KVCACHED=true plus KVCACHED_AUTOPATCH=1 switch it on: a .pth file it installs
  into site-packages patches vLLM when vLLM is imported, in every process vLLM starts;
- its ElasticBlockPool asserts that KV cache events are off (vLLM's --kv-events-config).
"""
from __future__ import annotations

import re
from typing import Any

SETTING_KEYS = {"enabled", "version", "sha256", "image", "install", "pip_index_url", "env",
                "install_resources", "models"}
MODEL_KEYS = {"enabled", "env"}
INSTALL_MODES = ("pip", "image")
# Where the initContainer installs kvcached (`pip install --user` with this PYTHONUSERBASE):
# Python adds the user site-packages below it, and processes the kvcached .pth file there,
# in every interpreter that inherits the variable, the engine and worker processes included.
USER_BASE = "/opt/kvcached"
# kvcached 0.1.6's dependencies (numpy>=1.26.0, posix_ipc>=1.0, wrapt>=1.15), locked: a
# dependency the image does not already satisfy is installed only from these pins, in pip's
# hash-checking mode, as wheels (no build). numpy is left to the image (vLLM's own; it must
# stay the version vLLM was built with), so it is not pinned here. The hashes are PyPI's files
# for CPython 3.10-3.13 (kvcached's range; vLLM's images use 3.12), manylinux x86_64 and
# aarch64. To refresh: `pip download --no-deps --only-binary=:all: --implementation cp
# --python-version 3.1X --abi cp31X --platform manylinux2014_<arch> --platform
# manylinux_2_28_<arch> NAME==VERSION -d DIR` for each minor and arch, then sha256sum DIR/*.
DEPENDENCY_LOCK = {
    "posix-ipc": ("1.3.2", (
        "a3ccddc7a892135a59b0377a97e30cb1b4ed681330594187c6ca3ab7714fd54b",  # cp310 x86_64
        "0eae38de775bade7131b6f4638c634591db2740239581ef9d7b7baebeeac72b9",  # cp310 aarch64
        "95042c14254c80c320f4fad037789fa62693562a275ff266c8672f276b73fcd2",  # cp311 x86_64
        "8e30eb7b65f9d2a3da75cea0c9bfe32be285808744ce05379f8d037a29a782ec",  # cp311 aarch64
        "8a4b05d7c1e8e4d9b09e5887bdd2c31cf031ff79e7a01786ef758bdd6cbc8237",  # cp312 x86_64
        "5829f8f0d028a1673439a5e1ce121abbae9ef88a5fb5fdd0997998603b08f778",  # cp312 aarch64
        "fe311eb00c27d7f34d34cc7bd6f5e60d65b2ad7ed35692519eae9f4c5b233dc2",  # cp313 x86_64
        "6485ef684c327125dc3f9db29c396554fddf2f37e495ef1409d6b5f8ce9cfb43",  # cp313 aarch64
    )),
    "wrapt": ("2.5.2", (
        "0fa61d2f1033039aa47f8f1b4e076ca3c9d0fc08e448c4b1bd06d8b59da89cbf",  # cp310 x86_64
        "51465dcbab69d9c02e8ca943befa1eabc37ccb07f9335c240d78a78330285a2d",  # cp310 aarch64
        "0743950d3dda9940e56f81f5334ba051c4fe2e1421e4e4a4ef8eb8fb86a90894",  # cp311 x86_64
        "594c6d10b9cfb951a09f7338531a41d31194e7eee9dee206c0a8992421682719",  # cp311 aarch64
        "092472b7b1494deef40dac5e9f6295013a9d51b112b5fbc4350f64dc2574e46a",  # cp312 x86_64
        "d108bd98ab2c5ccbf55cf2154e0a73341df930030df2e01ee35d71a44a99d3ad",  # cp312 aarch64
        "8b039b3a296762db1908d6108365225393c4fb33c1dbc5f00aa36f8302eaeaa0",  # cp313 x86_64
        "e1af6136ac5bcfab17190a70b25d8437eb8d8f9ca2b821a0655d39275a8cb7e7",  # cp313 aarch64
    )),
}
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VERSION_RE = re.compile(r"^\d+(\.\d+)*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class KvcachedError(ValueError):
    """A bad vllm_kvcached value: `field` is the dotted path, the message says how to fix it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    raise KvcachedError(field, f"must be true or false, got {value!r}")


def _env(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and ENV_NAME_RE.match(k) for k in value):
        raise KvcachedError(field, "must be a mapping of environment variable names to values, "
                                   "e.g. {KVCACHED_LOG_LEVEL: INFO}")
    return {k: str(v) for k, v in value.items()}


def _pinned(image: Any, field: str) -> str:
    if not isinstance(image, str) or not image:
        raise KvcachedError(field, "is empty; set a vLLM image (with kvcached when install is image)")
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if "@sha256:" not in image and (not tag or tag == "latest"):
        raise KvcachedError(field, f"{image} is not pinned; use a fixed tag or @sha256: digest, never latest")
    return image


def _refuse_where_unsupported(field: str, device: str, target: str) -> None:
    if device != "gpu":
        raise KvcachedError(
            field,
            f"kvcached is GPU-only (it builds a CUDA/ROCm extension against the serving torch) and "
            f"vllm_device is {device!r}; set {field}: false, or serve on GPUs with vllm_device: gpu",
        )
    if target != "kubernetes":
        raise KvcachedError(
            field,
            "kvcached is not supported on the local target yet (its serving venv is vLLM's CPU build, "
            f"requirements/serving.lock); set {field}: false, or use platform_target: kubernetes "
            "with vllm_device: gpu",
        )


def _common(settings: dict[str, Any]) -> dict[str, Any]:
    """The global part, checked only when some model uses kvcached."""
    install = settings.get("install", "pip")
    if install not in INSTALL_MODES:
        raise KvcachedError("vllm_kvcached.install", f"{install!r} is not one of {', '.join(INSTALL_MODES)}: "
                                                     "pip installs the pinned kvcached in an initContainer, "
                                                     "image means the image already has it")
    version = str(settings.get("version") or "")
    if not VERSION_RE.match(version):
        raise KvcachedError("vllm_kvcached.version", f"{version!r} is not an exact version such as 0.1.6")
    sha256 = str(settings.get("sha256") or "")
    if sha256 and not SHA256_RE.match(sha256):
        raise KvcachedError("vllm_kvcached.sha256", "must be the 64 hex digits of the sdist's sha256, or empty")
    resources = settings.get("install_resources") or {}
    if not isinstance(resources, dict):
        raise KvcachedError("vllm_kvcached.install_resources", "must be a mapping with requests and limits")
    return {
        "install": install,
        "version": version,
        "sha256": sha256,
        "image": _pinned(settings.get("image"), "vllm_kvcached.image"),
        "pip_index_url": str(settings.get("pip_index_url") or ""),
        "install_resources": resources,
    }


def _enabled_models(settings: Any, models: list[dict[str, Any]], device: str, target: str) -> dict[str, dict]:
    """Model name -> its override ({} if none) for every model that uses kvcached; refusals here."""
    settings = settings or {}
    if not isinstance(settings, dict):
        raise KvcachedError("vllm_kvcached", "must be a mapping, e.g. {enabled: true}")
    unknown = sorted(set(settings) - SETTING_KEYS)
    if unknown:
        raise KvcachedError(f"vllm_kvcached.{unknown[0]}",
                            f"unknown key; allowed keys are {', '.join(sorted(SETTING_KEYS))}")
    default_on = _flag(settings.get("enabled", False), "vllm_kvcached.enabled")
    overrides = settings.get("models") or {}
    if not isinstance(overrides, dict):
        raise KvcachedError("vllm_kvcached.models", "must map model names to {enabled: ..., env: {...}}")
    names = [m["name"] for m in models]
    for name, override in overrides.items():
        where = f"vllm_kvcached.models.{name}"
        if name not in names:
            raise KvcachedError(where, f"no model named {name!r} in llm_models ({', '.join(names) or 'none'})")
        if not isinstance(override, dict) or set(override) - MODEL_KEYS:
            raise KvcachedError(where, f"must be a mapping with only {', '.join(sorted(MODEL_KEYS))}")
    enabled: dict[str, dict] = {}
    for model in models:
        name = model["name"]
        override = overrides.get(name) or {}
        if "enabled" in override:
            field = f"vllm_kvcached.models.{name}.enabled"
            on = _flag(override["enabled"], field)
        else:
            field, on = "vllm_kvcached.enabled", default_on
        if not on:
            continue
        _refuse_where_unsupported(field, device, target)
        if "kv_events_config" in (model.get("vllm_args") or {}):
            raise KvcachedError(f"llm_models[{name}].vllm_args.kv_events_config",
                                "kvcached's block pool does not support KV cache events; remove it or disable kvcached")
        enabled[name] = override
    return enabled


def check(settings: Any, models: list[dict[str, Any]], device: str, target: str) -> list[str]:
    """Names of the models that use kvcached; raises where kvcached cannot run (preflight)."""
    return list(_enabled_models(settings, models, device, target))


def resolve(settings: Any, models: list[dict[str, Any]], device: str, target: str) -> dict[str, dict[str, Any]]:
    """Model name -> {enabled, and when enabled: image, install, version, sha256, env, ...}.

    `models` are normalised llm_models entries; `settings` is vllm_kvcached_defaults combined
    with vllm_kvcached. `vllm_kvcached.models.<name>` overrides `enabled` and adds `env`.
    """
    enabled = _enabled_models(settings, models, device, target)
    common = _common(settings) if enabled else {}
    global_env = _env(settings.get("env"), "vllm_kvcached.env") if enabled else {}
    resolved: dict[str, dict[str, Any]] = {}
    for model in models:
        name = model["name"]
        if name not in enabled:
            resolved[name] = {"enabled": False}
            continue
        env = {"ENABLE_KVCACHED": "true", "KVCACHED_AUTOPATCH": "1"}
        if common["install"] == "pip":
            env["PYTHONUSERBASE"] = USER_BASE
        env.update(global_env)
        env.update(_env(enabled[name].get("env"), f"vllm_kvcached.models.{name}.env"))
        resolved[name] = {"enabled": True, "env": env, "user_base": USER_BASE, **common}
    return resolved


def dependency_lock() -> str:
    """DEPENDENCY_LOCK as requirement lines for `pip install --require-hashes -r`."""
    return "".join(f"{name}=={version}" + "".join(f" --hash=sha256:{h}" for h in hashes) + "\n"
                   for name, (version, hashes) in sorted(DEPENDENCY_LOCK.items()))


def install_script(with_sha256: bool) -> str:
    """The initContainer's shell script: pip-install the pinned kvcached into PYTHONUSERBASE.

    kvcached is only an sdist on PyPI: it is built here against the image's CUDA torch
    (--no-build-isolation, as kvcached documents) into the pod's kvcached volume; the server
    finds it through PYTHONUSERBASE, whose site-packages Python reads .pth files from, in
    every vLLM process. It is installed without its dependencies; then every dependency the
    image does not satisfy (as `pip check` names them) is installed from DEPENDENCY_LOCK in
    hash-checking mode, and one the lock does not pin fails the container.
    """
    tmp = '"${TMPDIR:-/tmp}'
    lines = [
        "# The server reads kvcached from the user site-packages: a venv Python ignores them.",
        "python3 -c 'import site, sys; sys.exit(not site.ENABLE_USER_SITE)' || { echo \"this image's Python "
        "ignores user site-packages (a venv?): use an image with kvcached and vllm_kvcached.install: image\" >&2; "
        "exit 1; }",
        "# No GPU here, so no libcuda: link against CUDA's stubs (kvcached's Dockerfile.vllm does too).",
        'export LIBRARY_PATH="/usr/local/cuda/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"',
    ]
    if with_sha256:
        lines += [
            "# The pinned sdist, checked against its sha256, without its dependencies (below).",
            "printf 'kvcached==%s --hash=sha256:%s\\n' \"$KVCACHED_VERSION\" \"$KVCACHED_SHA256\" > "
            f'{tmp}/kvcached.txt"',
            "python3 -m pip install --user --no-build-isolation --no-deps --require-hashes -r "
            f'{tmp}/kvcached.txt"',
        ]
    else:
        lines += [
            "# vllm_kvcached.sha256 is empty: the version is pinned, its bytes are not checked.",
            'python3 -m pip install --user --no-build-isolation --no-deps "kvcached==$KVCACHED_VERSION"',
        ]
    lines += [
        "# Its dependencies the image lacks (or has too old), only from the platform's hashed pins.",
        f"cat > {tmp}/kvcached-deps.lock\" <<'LOCK'",
        *dependency_lock().splitlines(),
        "LOCK",
        f'python3 -m pip check > {tmp}/kvcached-check.txt" 2>&1 || true',
        "needed=$(sed -n -e 's/^kvcached [^ ]* requires \\([A-Za-z0-9_.-]*\\).*/\\1/p' "
        "-e 's/^kvcached [^ ]* has requirement \\([A-Za-z0-9_.-]*\\).*/\\1/p' "
        f'{tmp}/kvcached-check.txt" | tr \'A-Z\' \'a-z\' | tr \'_.\' \'--\' | sort -u)',
        f': > {tmp}/kvcached-needed.txt"',
        "for name in $needed; do",
        f'  grep "^$name==" {tmp}/kvcached-deps.lock" >> {tmp}/kvcached-needed.txt" || {{ echo "kvcached '
        '$KVCACHED_VERSION needs $name, which this image lacks and the platform does not pin: use '
        'vllm_kvcached.install: image with an image that has it" >&2; exit 1; }',
        "done",
        f'if [ -s {tmp}/kvcached-needed.txt" ]; then',
        "  python3 -m pip install --user --no-deps --require-hashes --only-binary :all: -r "
        f'{tmp}/kvcached-needed.txt"',
        "fi",
        f'python3 -m pip check > {tmp}/kvcached-check.txt" 2>&1 || true',
        f'if grep "^kvcached " {tmp}/kvcached-check.txt" >&2; then echo "kvcached\'s dependencies are not '
        'satisfied (above)" >&2; exit 1; fi',
        'site="$(python3 -m site --user-site)"',
        'test -f "$site/kvcached_autopatch.pth" || { echo "kvcached_autopatch.pth is not in $site" >&2; exit 1; }',
        "python3 -m pip show kvcached | grep \"^Version: $KVCACHED_VERSION\\$\"",
    ]
    return "\n".join(lines) + "\n"


def install_container(kv: dict[str, Any], image: str, pull_policy: str, security: dict[str, Any],
                      cache_mount: str, home: str) -> dict[str, Any]:
    """The kvcached-install initContainer of a model resolved with install pip."""
    env = [{"name": "KVCACHED_VERSION", "value": kv["version"]}]
    if kv["sha256"]:
        env.append({"name": "KVCACHED_SHA256", "value": kv["sha256"]})
    env += [
        {"name": "PYTHONUSERBASE", "value": kv["user_base"]},
        {"name": "HOME", "value": home},
        {"name": "PIP_NO_CACHE_DIR", "value": "1"},
        {"name": "PIP_DISABLE_PIP_VERSION_CHECK", "value": "1"},
        # PEP 668 markers refuse --user installs too; this one writes only the pod's own volume.
        {"name": "PIP_BREAK_SYSTEM_PACKAGES", "value": "1"},
    ]
    if kv["pip_index_url"]:
        env.append({"name": "PIP_INDEX_URL", "value": kv["pip_index_url"]})
    return {
        "name": "kvcached-install",
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["sh", "-ec"],
        "args": [install_script(bool(kv["sha256"]))],
        "env": env,
        "resources": dict(kv["install_resources"]),
        "securityContext": dict(security),
        "volumeMounts": [{"name": "kvcached", "mountPath": kv["user_base"]},
                         {"name": "cache", "mountPath": cache_mount}],
    }
