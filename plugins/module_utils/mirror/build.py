"""Build (or refresh) a mirror directory from the plan: fetch, verify, index, write the manifest.

Nothing is downloaded twice: a file whose sha256 is pinned (or was recorded by the previous
build, for what has no pin) and is present is kept; a lock whose wheels are all present with
the recorded sha256 is not passed to pip; a model or image complete in the mirror is not
fetched. What cannot be fetched from this host is recorded as `not fetched here: <reason>`
and the build carries on, so the manifest always says exactly what the mirror holds.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from ansible_collections.llmops.platform.plugins.module_utils.mirror import apt as aptmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import fetch as fetchmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import hf as hfmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import images as imagesmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import manifest as manifestmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import plan as planmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import pypi as pypimod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import urls


@dataclass
class Options:
    mirror_dir: str
    collection_root: str
    timeout: float = 60.0
    trust_on_first_use: bool = False
    apt_sign_key: str = ""
    debian_archive_url: str = "http://deb.debian.org/debian"
    debian_security_url: str = "http://deb.debian.org/debian-security"
    debian_suite: str = "bookworm"
    debian_components: tuple = ("main", "non-free", "non-free-firmware")
    hf_token: str = ""
    hf_upstream: str = ""  # "" = huggingface.co
    publish_models: list = field(default_factory=list)  # [{repo, revision, path}]
    image_digests: dict = field(default_factory=dict)
    work_dir: str = ""  # apt state; default <mirror_dir>/.work
    venv_python: Optional[Callable[[str], str]] = None
    pip_env: dict = field(default_factory=dict)
    check_mode: bool = False


def _not_fetched(reason: str) -> str:
    return manifestmod.NOT_FETCHED + " ".join(str(reason).split())


def _record(artifact: planmod.Artifact, **values: Any) -> dict[str, Any]:
    out = artifact.to_dict()
    out.pop("extra", None)
    out.update({"size": None, "status": _not_fetched("not attempted")})
    out.update(values)
    return out


def venv_python_from(collection_root: str) -> Callable[[str], str]:
    def find(venv: str) -> str:
        done = subprocess.run([os.path.join(collection_root, "scripts", "venv.sh"), "python", venv],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise pypimod.PypiError(done.stderr.strip() or f"scripts/venv.sh python {venv} failed")
        return done.stdout.strip()
    return find


class Builder:
    def __init__(self, versions: Mapping[str, Any], selection: planmod.Selection, options: Options):
        self.versions = versions
        self.sel = selection
        self.opt = options
        self.root = options.mirror_dir
        self.old = manifestmod.by_name(manifestmod.load(os.path.join(self.root, urls.MANIFEST_JSON)))
        self.records: list[dict[str, Any]] = []
        self.downloaded: list[str] = []
        self.changed = False

    # -- helpers --
    def known_sha(self, name: str, path: str) -> str:
        old = self.old.get(name)
        if old and old.get("status") == manifestmod.FETCHED and old.get("path") == path:
            return old.get("sha256") or ""
        return ""

    def _fetch(self, url: str, path: str, sha256: str, known: str = "", size: Optional[int] = None) -> fetchmod.Fetched:
        got = fetchmod.fetch(url, os.path.join(self.root, path), sha256, timeout=self.opt.timeout,
                             expected_size=size, known_sha256=known)
        if got.downloaded:
            self.downloaded.append(path)
            self.changed = True
        return got

    # -- files and charts --
    def files(self, artifacts: list[planmod.Artifact]) -> None:
        lists: dict[str, str] = {}
        for art in sorted(artifacts, key=lambda a: not a.extra.get("checksum_list")):
            if self.opt.check_mode:
                self.records.append(_record(art, status=_not_fetched("check mode")))
                continue
            sha, verify = art.sha256, art.verify
            try:
                if art.extra.get("checksum_list"):
                    got = self._fetch(art.source, art.path, "", self.known_sha(art.name, art.path))
                    with open(got.path, encoding="utf-8", errors="replace") as handle:
                        lists[art.source] = handle.read()
                elif sha:
                    got = self._fetch(art.source, art.path, sha)
                elif art.extra.get("sums_url"):
                    if art.extra["sums_url"] not in lists:
                        raise fetchmod.FetchError(f"its checksum list {art.extra['sums_url']} was not fetched")
                    sha = fetchmod.sha256sum_lookup(lists[art.extra["sums_url"]], art.extra["sums_name"])
                    if not sha:
                        raise fetchmod.FetchError(f"{art.extra['sums_name']} is not listed in {art.extra['sums_url']}")
                    got = self._fetch(art.source, art.path, sha)
                elif self.opt.trust_on_first_use:
                    got = self._fetch(art.source, art.path, "", self.known_sha(art.name, art.path))
                    verify = "trust on first use (no sha256 pinned; mirror_trust_on_first_use): sha256 recorded here"
                else:
                    pin = art.extra.get("missing_pin", "")
                    raise fetchmod.FetchError(f"no sha256 pinned in versions.yml ({pin}); pin it, or set "
                                              "mirror_trust_on_first_use: true to record the one downloaded")
                self.records.append(_record(art, sha256=got.sha256, size=got.size, verify=verify,
                                            status=manifestmod.FETCHED))
            except (fetchmod.FetchError, OSError) as exc:
                self.records.append(_record(art, status=_not_fetched(exc)))

    # -- Debian packages --
    def debs(self, artifacts: list[planmod.Artifact]) -> None:
        if not artifacts:
            return
        if self.opt.check_mode:
            self.records += [_record(a, status=_not_fetched("check mode")) for a in artifacts]
            return
        apt_dir = os.path.join(self.root, urls.APT)
        closure: dict[str, dict[str, Any]] = {}
        results: dict[str, dict[str, Any]] = {}
        for arch in self.sel.arches:
            work = os.path.join(self.opt.work_dir or os.path.join(self.root, ".work"), f"apt-{arch}")
            wanted = ["debian"] + sorted({a.extra["repo"] for a in artifacts} - {"debian"})
            repos = aptmod.repositories(self.versions, arch, work, self.opt.debian_archive_url,
                                        self.opt.debian_security_url, self.opt.debian_suite,
                                        self.opt.debian_components, wanted, timeout=self.opt.timeout)
            root = aptmod.AptRoot(work, arch, list(repos.values()))
            try:
                warnings = root.update()
            except aptmod.AptError as exc:
                for art in artifacts:
                    results.setdefault(art.name, {"error": str(exc)})
                continue
            groups: dict[str, list[planmod.Artifact]] = {}
            for art in artifacts:
                groups.setdefault(art.extra["repo"], []).append(art)
            for repo_name, group in sorted(groups.items()):
                repo = repos[repo_name]
                if repo.error:
                    for art in group:
                        results[art.name] = {"error": f"repository {repo_name} not usable: {repo.error}"}
                    continue
                fetched_by_sha: dict[str, Any] = {}
                for art, debs in self._resolve(root, group, warnings, results):
                    todo = [d for d in debs if d.sha256 not in fetched_by_sha]
                    for deb, got in aptmod.fetch_debs(todo, apt_dir, self.opt.timeout):
                        fetched_by_sha[deb.sha256] = got
                    fetched = [(d, fetched_by_sha[d.sha256]) for d in debs]
                    errors = [f"{d.filename}: {r}" for d, r in fetched if isinstance(r, str)]
                    for deb, got in fetched:
                        if isinstance(got, fetchmod.Fetched):
                            if got.downloaded:
                                self.downloaded.append(aptmod.mirror_path(deb.filename))
                                self.changed = True
                            entry = closure.setdefault(deb.filename, {"deb": deb, "required_by": set()})
                            entry["required_by"].add(art.name)
                    own = next((d for d in debs if d.package == art.extra["package"]), None)
                    if errors:
                        results[art.name] = {"error": "; ".join(errors)}
                    elif own is None:
                        results[art.name] = {"error": f"apt resolved no {art.extra['package']} package"}
                    elif art.sha256 and own.sha256 != art.sha256:
                        results[art.name] = {"error": f"{own.filename} has sha256 {own.sha256} in the signed index, "
                                                      f"versions.yml pins {art.sha256}; update the pin"}
                    else:
                        results[art.name] = {"deb": own, "closure": len(debs)}
        previous = aptmod.read_flat_repo(apt_dir)
        for art in artifacts:
            res = results.get(art.name, {"error": "not resolved"})
            if "deb" in res:
                deb = res["deb"]
                self.records.append(_record(art, version=deb.version, sha256=deb.sha256, size=deb.size,
                                            path=aptmod.mirror_path(deb.filename), status=manifestmod.FETCHED,
                                            source=deb.url, closure=res["closure"]))
                continue
            kept = self._keep_previous_deb(art, previous, closure)
            self.records.append(kept or _record(art, status=_not_fetched(res["error"])))
        top_files = {r.get("path") for r in self.records if r["kind"] == "deb"}
        for filename, entry in sorted(closure.items()):
            deb = entry["deb"]
            if aptmod.mirror_path(filename) in top_files:
                continue
            name = f"deb:{deb.package}@{deb.version}"
            self.records.append({"name": name, "kind": "deb", "version": deb.version, "source": deb.url,
                                 "sha256": deb.sha256, "verify": "sha256 from the repository's signed index (apt)",
                                 "path": aptmod.mirror_path(filename), "roles": [], "arch": "", "size": deb.size,
                                 "status": manifestmod.FETCHED, "required_by": sorted(entry["required_by"])})
        all_debs = [entry["deb"] for entry in closure.values()]
        if all_debs and aptmod.write_flat_repo(apt_dir, all_debs, self.opt.apt_sign_key):
            self.changed = True

    def _keep_previous_deb(self, art: planmod.Artifact, previous: dict, closure: dict) -> Optional[dict]:
        """A package this build could not resolve or fetch (an unreachable archive on a refresh)
        stays as the previous build left it, with its dependencies, when all their files are
        still there with their sha256: a failed refresh never empties the mirror's repository."""
        old = self.old.get(art.name)
        if not old or old.get("status") != manifestmod.FETCHED or (art.version and old.get("version") != art.version):
            return None
        members = [old] + [r for r in self.old.values() if art.name in r.get("required_by", [])]
        apt_dir = os.path.join(self.root, urls.APT)
        for member in members:
            filename = os.path.basename(member.get("path", ""))
            path = os.path.join(apt_dir, filename)
            if filename not in previous or not fetchmod.present(path, member.get("sha256", "")):
                return None
        for member in members:
            filename = os.path.basename(member["path"])
            deb = dataclasses.replace(previous[filename], url=member.get("source", ""))
            entry = closure.setdefault(filename, {"deb": deb, "required_by": set()})
            entry["required_by"].update(member.get("required_by", []) or [art.name])
        return dict(old)

    def _resolve(self, root: aptmod.AptRoot, group: list, warnings: str, results: dict) -> list:
        """[(artifact, closure)]: the group's closure in one apt call; when that fails, each
        package alone, so the error names the package apt could not resolve."""
        try:
            debs = root.resolve([a.source for a in group])
            return [(art, debs) for art in group]
        except aptmod.AptError:
            pass
        out = []
        for art in group:
            try:
                out.append((art, root.resolve([art.source])))
            except aptmod.AptError as exc:
                hint = f" (apt-get update said: {warnings.splitlines()[0]})" if warnings else ""
                results[art.name] = {"error": f"{exc}{hint}"}
        return out

    # -- wheels --
    def wheels(self, artifacts: list[planmod.Artifact]) -> list[tuple[str, str]]:
        pypi_dir = os.path.join(self.root, urls.PYPI)
        finder = self.opt.venv_python or venv_python_from(self.opt.collection_root)
        for art in artifacts:
            lock = os.path.join(self.opt.collection_root, art.source)
            old = self.old.get(art.name)
            if old and old.get("status") == manifestmod.FETCHED and old.get("sha256") == art.sha256 and all(
                    fetchmod.present(os.path.join(pypi_dir, f["file"]), f["sha256"]) for f in old.get("files", [])):
                self.records.append(_record(art, size=old.get("size"), files=old["files"],
                                            verify=old.get("verify", art.verify), status=manifestmod.FETCHED))
                continue
            if self.opt.check_mode:
                self.records.append(_record(art, status=_not_fetched("check mode")))
                continue
            try:
                before = set(os.listdir(pypi_dir)) if os.path.isdir(pypi_dir) else set()
                names = pypimod.download(finder(art.extra["venv"]), lock, pypi_dir, self.opt.timeout, self.opt.pip_env)
                files = pypimod.file_records(pypi_dir, names)
                new = [f["file"] for f in files if f["file"] not in before]
                if new:
                    self.downloaded += [f"{urls.PYPI}/{n}" for n in new]
                    self.changed = True
                hashes = "the lock's hashes, checked by pip (--require-hashes)" if pypimod.lock_has_hashes(lock) else \
                    "the lock has no hashes: each file's sha256 recorded at download"
                self.records.append(_record(art, size=sum(f["size"] for f in files), files=files,
                                            verify=hashes, status=manifestmod.FETCHED))
            except (pypimod.PypiError, OSError) as exc:
                self.records.append(_record(art, status=_not_fetched(exc)))
        return [(f["file"], f["sha256"]) for r in self.records if r["kind"] == "wheels" for f in r.get("files", [])]

    # -- images --
    def images(self, artifacts: list[planmod.Artifact]) -> None:
        for art in artifacts:
            if self.opt.check_mode:
                self.records.append(_record(art, status=_not_fetched("check mode")))
                continue
            digest = f"sha256:{art.sha256}" if art.sha256 else ""
            try:
                got = imagesmod.copy(art.source, os.path.join(self.root, art.path), art.extra["tag"], digest,
                                     timeout=max(self.opt.timeout * 10, 600))
                if got["changed"]:
                    self.downloaded.append(art.path)
                    self.changed = True
                self.records.append(_record(art, sha256=got["digest"].split(":", 1)[1], size=got["size"],
                                            status=manifestmod.FETCHED))
            except (imagesmod.ImageError, OSError) as exc:
                self.records.append(_record(art, status=_not_fetched(exc)))

    # -- models --
    def models(self, artifacts: list[planmod.Artifact]) -> None:
        for art in artifacts:
            if self.opt.check_mode:
                self.records.append(_record(art, status=_not_fetched("check mode")))
                continue
            repo, revision = art.extra["repo"], art.extra["revision"]
            try:
                got = hfmod.fetch_hub(self.root, repo, revision, self.opt.hf_token, self.opt.hf_upstream or None,
                                      self.opt.timeout)
                self._model_record(art, got)
            except (hfmod.HfError, OSError) as exc:
                self.records.append(_record(art, status=_not_fetched(exc)))
        for index, item in enumerate(self.opt.publish_models):
            field_name = f"mirror_publish_models[{index}]"
            repo, revision, path = item.get("repo", ""), item.get("revision", "main"), item.get("path", "")
            art = planmod.Artifact(name=f"model:{repo}@{revision}", kind="model", version=revision,
                                   source=f"path:{path}", verify="each file's sha256 recorded when published",
                                   path=f"{urls.HF}/{repo}", roles=("vllm", "llama_factory"))
            if any(r["name"] == art.name for r in self.records):
                self.records = [r for r in self.records if r["name"] != art.name]
            if self.opt.check_mode:
                self.records.append(_record(art, status=_not_fetched("check mode")))
                continue
            try:
                if not repo or "/" not in repo:
                    raise hfmod.HfError(f"{field_name}.repo: {repo!r} is not an <org>/<name> repo id")
                self._model_record(art, hfmod.publish(self.root, repo, revision, path))
            except (hfmod.HfError, OSError) as exc:
                self.records.append(_record(art, status=_not_fetched(exc)))

    def _model_record(self, art: planmod.Artifact, got: Mapping[str, Any]) -> None:
        if got.get("changed"):
            self.downloaded.append(f"{art.path}/commits/{got['commit']}")
            self.changed = True
        self.records.append(_record(art, sha256="", commit=got["commit"], size=got["size"],
                                    files=[{"file": f["path"], "sha256": f["sha256"], "size": f["size"]}
                                           for f in got["files"]],
                                    status=manifestmod.FETCHED))

    # -- all --
    def run(self, artifacts: list[planmod.Artifact]) -> dict[str, Any]:
        by_kind: dict[str, list[planmod.Artifact]] = {}
        for art in artifacts:
            by_kind.setdefault(art.kind, []).append(art)
        os.makedirs(self.root, exist_ok=True)
        self.files(by_kind.get("file", []) + by_kind.get("chart", []))
        self.debs(by_kind.get("deb", []))
        wheel_files = self.wheels(by_kind.get("wheels", []))
        if wheel_files and not self.opt.check_mode:
            self.changed |= pypimod.write_index(os.path.join(self.root, urls.PYPI), wheel_files)
        self.images(by_kind.get("image", []))
        self.models(by_kind.get("model", []))
        doc = manifestmod.document(self.records, {
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "selection": summary_selection(self.sel),
            "selection_summary": describe(self.sel),
        })
        if not self.opt.check_mode and manifestmod.write(self.root, doc, urls.MANIFEST_JSON, urls.MANIFEST_TABLE):
            self.changed = True
        fetched = [r for r in self.records if r["status"] == manifestmod.FETCHED]
        return {
            "changed": self.changed,
            "downloaded": sorted(set(self.downloaded)),
            "fetched": len(fetched),
            "not_fetched": {r["name"]: r["status"][len(manifestmod.NOT_FETCHED):] for r in self.records
                            if r["status"] != manifestmod.FETCHED},
            "size": sum(r.get("size") or 0 for r in fetched),
            "manifest": os.path.join(self.root, urls.MANIFEST_JSON),
            "table": os.path.join(self.root, urls.MANIFEST_TABLE),
            "artifacts": len(self.records),
        }


def summary_selection(sel: planmod.Selection) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(sel).items()}


def describe(sel: planmod.Selection) -> str:
    parts = [f"target {sel.target}"]
    if sel.nodes:
        parts.append(f"Kubernetes nodes ({sel.distribution}, containerd {sel.containerd_install_method}"
                     + (", GPUs" if sel.gpu else "") + ")")
    if sel.venvs:
        parts.append("venvs " + ", ".join(sel.venvs))
    models = [m for m in sel.models if m.startswith("hf:")]
    if models:
        parts.append("models " + ", ".join(models))
    parts.append("arch " + ", ".join(sel.arches))
    return "; ".join(parts)


def lock_hashes(collection_root: str, venvs) -> dict[str, str]:
    out = {}
    for venv in venvs:
        path = os.path.join(collection_root, "requirements", f"{venv}.lock")
        if os.path.isfile(path):
            out[venv] = pypimod.lock_sha256(path)
    return out


def build(versions: Mapping[str, Any], selection: planmod.Selection | Mapping[str, Any],
          options: Options) -> dict[str, Any]:
    sel = selection if isinstance(selection, planmod.Selection) else planmod.selection(selection)
    artifacts = planmod.plan(versions, sel, options.image_digests, lock_hashes(options.collection_root, sel.venvs))
    return Builder(versions, sel, options).run(artifacts)
