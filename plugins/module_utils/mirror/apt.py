"""Debian packages for the mirror: dependency closures resolved by apt, and a flat repository.

apt runs with its own state directory and an empty dpkg status (`AptRoot`), so the closure is
what a bare node needs, whatever the build host has installed, and no root is needed. Sources
carry `signed-by`: the Debian archive keyring for Debian, for third-party repositories the
key fetched and refused unless it has the fingerprint pinned in versions.yml. apt verifies the
signed index; every .deb is then downloaded and checked against the sha256 of that index.

The mirror's `apt/` directory is a flat repository (`deb [...] <mirror>/apt ./`): the .deb
files, `Packages` (the archive's own stanzas, `Filename` pointing at the flat file),
`Packages.gz` and a `Release` with their sha256 (and an `InRelease` when a signing key is given).
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Iterable, Mapping, Optional

from ansible_collections.llmops.platform.plugins.module_utils.mirror import fetch as fetchmod
from ansible_collections.llmops.platform.plugins.module_utils.mirror import urls

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
URI_RE = re.compile(r"^'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+) SHA256:(?P<sha>[0-9a-f]{64})$")
INST_RE = re.compile(r"^Inst (?P<name>\S+) (?:\[[^\]]*\] )?\((?P<version>\S+) ")


class AptError(RuntimeError):
    pass


@dataclass
class Deb:
    package: str
    version: str
    filename: str
    url: str
    size: int
    sha256: str
    stanza: str = ""


@dataclass
class Repo:
    """One apt repository as a sources.list line, with the key it is signed with."""

    name: str
    line: str = ""
    error: str = ""  # why the repository is not usable here (its packages are then not fetched)
    key_path: str = ""


@dataclass
class AptRoot:
    """apt with a private state directory and an empty dpkg status, for one architecture."""

    workdir: str
    arch: str
    repos: list = field(default_factory=list)
    apt_get: str = "apt-get"
    apt_cache: str = "apt-cache"

    def options(self) -> list[str]:
        root = self.workdir
        return [
            "-o", f"Dir::Etc::SourceList={root}/sources.list",
            "-o", f"Dir::Etc::SourceParts={root}/sources.list.d",
            "-o", f"Dir::Etc::Preferences={root}/preferences",
            "-o", f"Dir::Etc::PreferencesParts={root}/preferences.d",
            "-o", f"Dir::State={root}/state",
            "-o", f"Dir::State::status={root}/status",
            "-o", f"Dir::Cache={root}/cache",
            "-o", f"APT::Architecture={self.arch}",
            "-o", f"APT::Architectures={self.arch}",
            "-o", "APT::Install-Recommends=false",
            "-o", "APT::Install-Suggests=false",
            "-o", "Acquire::Languages=none",
            "-o", "Acquire::ForceHash=SHA256",
            "-o", "Debug::NoLocking=true",
            # As root, apt would drop to _apt, which cannot write this private state directory.
            *(["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []),
        ]

    def prepare(self) -> None:
        for sub in ("sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"):
            os.makedirs(os.path.join(self.workdir, sub), exist_ok=True)
        open(os.path.join(self.workdir, "status"), "w").close()
        with open(os.path.join(self.workdir, "sources.list"), "w", encoding="utf-8") as handle:
            for repo in self.repos:
                if repo.line and not repo.error:
                    handle.write(repo.line + "\n")

    def _run(self, tool: str, args: list[str]) -> subprocess.CompletedProcess:
        if shutil.which(tool) is None:
            raise AptError(f"{tool} is not installed on the build host "
                           "(the mirror needs a Debian/Ubuntu host with apt)")
        return subprocess.run([tool, *self.options(), *args], capture_output=True, text=True, check=False,
                              env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})

    def update(self) -> str:
        """apt-get update; returns its warnings (an unreachable repository is a warning)."""
        self.prepare()
        done = self._run(self.apt_get, ["update", "-q"])
        problems = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith(("W:", "E:", "Err:"))]
        if done.returncode != 0 and not problems:
            problems = [f"apt-get update exited {done.returncode}"]
        return "\n".join(problems)

    def resolve(self, specs: list[str]) -> list[Deb]:
        """The closure of `specs` (name or name=version) for a bare node, with the index's
        sha256, size, URL and stanza of every package. Raises AptError with apt's message."""
        if not specs:
            return []
        uris = self._run(self.apt_get, ["install", "--print-uris", "-qq", "-y", *specs])
        if uris.returncode != 0:
            message = " ".join(line.strip() for line in uris.stderr.splitlines() if line.startswith("E:"))
            raise AptError(message or uris.stderr.strip() or f"apt-get exited {uris.returncode}")
        by_sha: dict[str, dict[str, Any]] = {}
        for line in uris.stdout.splitlines():
            match = URI_RE.match(line.strip())
            if match:
                by_sha[match["sha"]] = match.groupdict()
        sim = self._run(self.apt_get, ["install", "-s", "-qq", "-y", *specs])
        installs = [m.group("name", "version") for m in map(INST_RE.match, sim.stdout.splitlines()) if m]
        debs: list[Deb] = []
        if installs:
            show = self._run(self.apt_cache, ["show", *[f"{n.split(':')[0]}={v}" for n, v in installs]])
            for stanza in split_stanzas(show.stdout):
                fields = stanza_fields(stanza)
                sha = fields.get("SHA256", "")
                if sha in by_sha and all(d.sha256 != sha for d in debs):
                    item = by_sha[sha]
                    debs.append(Deb(fields["Package"], fields["Version"], item["file"], item["url"], int(item["size"]),
                                    sha, stanza))
        missing = sorted(set(by_sha) - {d.sha256 for d in debs})
        if missing:
            names = ", ".join(by_sha[s]["file"] for s in missing)
            raise AptError(f"apt listed files it has no index stanza for: {names}")
        return sorted(debs, key=lambda d: (d.package, d.version))


def split_stanzas(text: str) -> list[str]:
    return [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]


def stanza_fields(stanza: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in stanza.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, _sep, value = line.partition(":")
            out[key] = value.strip()
    return out


def flat_stanza(stanza: str, filename: str) -> str:
    """The archive's stanza with Filename pointing into the flat repository."""
    lines = [f"Filename: ./{filename}" if line.startswith("Filename:") else line for line in stanza.splitlines()]
    return "\n".join(lines)


def read_flat_repo(apt_dir: str) -> dict[str, Deb]:
    """The packages a previous build indexed in `apt_dir`, by file name."""
    path = os.path.join(apt_dir, "Packages")
    if not os.path.isfile(path):
        return {}
    out = {}
    with open(path, encoding="utf-8") as handle:
        for stanza in split_stanzas(handle.read()):
            fields = stanza_fields(stanza)
            filename = os.path.basename(fields.get("Filename", ""))
            if filename and fields.get("SHA256"):
                out[filename] = Deb(fields.get("Package", ""), fields.get("Version", ""), filename, "",
                                    int(fields.get("Size", "0") or 0), fields["SHA256"], stanza)
    return out


def key_fingerprints(path: str) -> list[str]:
    if shutil.which("gpg") is None:
        raise AptError("gpg is not installed on the build host (needed to check repository keys)")
    done = subprocess.run(["gpg", "--show-keys", "--with-colons", path], capture_output=True, text=True, check=False)
    return [line.split(":")[9] for line in done.stdout.splitlines() if line.startswith("fpr:")]


def third_party_key(url: str, fingerprint: str, dest: str, timeout: float) -> str:
    """Fetch a repository key and refuse it unless it has the pinned fingerprint."""
    data = fetchmod.read_url(url, timeout=timeout)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as handle:
        handle.write(data)
    if fingerprint.upper() not in [f.upper() for f in key_fingerprints(dest)]:
        os.unlink(dest)
        raise AptError(f"the key at {url} is not {fingerprint} (the fingerprint pinned in versions.yml)")
    return dest


def repositories(versions: Mapping[str, Any], arch: str, workdir: str, debian_archive_url: str,
                 debian_security_url: str, suite: str, components: Iterable[str], wanted: Iterable[str],
                 timeout: float = 60.0) -> dict[str, Repo]:
    """The repositories `wanted` (plan.APT_REPOS names) as sources lines with checked keys."""
    out: dict[str, Repo] = {}
    components = " ".join(components)
    keys = os.path.join(workdir, "keys")
    for name in dict.fromkeys(wanted):
        repo = Repo(name)
        try:
            if name == "debian":
                if not os.path.isfile(DEBIAN_KEYRING):
                    raise AptError(f"{DEBIAN_KEYRING} is missing (apt-get install debian-archive-keyring)")
                repo.line = "\n".join([
                    f"deb [signed-by={DEBIAN_KEYRING}] {debian_archive_url} {suite} {components}",
                    f"deb [signed-by={DEBIAN_KEYRING}] {debian_archive_url} {suite}-updates {components}",
                    f"deb [signed-by={DEBIAN_KEYRING}] {debian_security_url} {suite}-security {components}",
                ])
            elif name in ("kubernetes", "kubernetes_upgrade"):
                version = versions["kubernetes" if name == "kubernetes" else "kubernetes_upgrade"]
                minor = ".".join(str(version).split(".")[:2])
                base = f"{str(versions['kubernetes_apt_repo_url']).rstrip('/')}/v{minor}/deb/"
                key = third_party_key(base + "Release.key", str(versions["kubernetes_apt_key_fingerprint"]),
                                      os.path.join(keys, f"kubernetes-v{minor}.asc"), timeout)
                repo.line, repo.key_path = f"deb [signed-by={key}] {base} /", key
            elif name == "nvidia_cuda":
                base = str(versions["nvidia_cuda_repo_url"])
                fingerprint = str(versions["nvidia_cuda_repo_key_fingerprint"])
                key = third_party_key(f"{base}{fingerprint[-8:].lower()}.pub", fingerprint,
                                      os.path.join(keys, "nvidia-cuda.asc"), timeout)
                repo.line, repo.key_path = f"deb [signed-by={key}] {base} /", key
            elif name == "nvidia_container_toolkit":
                base = str(versions["nvidia_container_toolkit_repo_url"]).replace("$(ARCH)", arch)
                key = third_party_key(str(versions["nvidia_container_toolkit_key_url"]),
                                      str(versions["nvidia_container_toolkit_key_fingerprint"]),
                                      os.path.join(keys, "nvidia-container-toolkit.asc"), timeout)
                repo.line, repo.key_path = f"deb [signed-by={key}] {base} /", key
            else:
                raise AptError(f"unknown apt repository {name}")
        except (AptError, fetchmod.FetchError, KeyError) as exc:
            repo.error = str(exc)
        out[name] = repo
    return out


def write_flat_repo(apt_dir: str, debs: Iterable[Deb], sign_key: str = "",
                    origin: str = "llmops.platform mirror") -> bool:
    """Packages, Packages.gz and Release for the .deb files in `apt_dir`; returns True when a
    file changed. The output depends only on the packages (a rebuild changes nothing)."""
    os.makedirs(apt_dir, exist_ok=True)
    stanzas = sorted({(d.package, d.version, d.filename): flat_stanza(d.stanza, d.filename) for d in debs}.items())
    packages = "".join(stanza + "\n\n" for _key, stanza in stanzas).encode("utf-8")
    changed = _write_if_changed(os.path.join(apt_dir, "Packages"), packages)
    gz = gzip.compress(packages, mtime=0)
    if changed or not os.path.isfile(os.path.join(apt_dir, "Packages.gz")):
        _write_if_changed(os.path.join(apt_dir, "Packages.gz"), gz)
    arches = sorted({stanza_fields(s).get("Architecture", "") for _k, s in stanzas} - {"", "all"}) or ["amd64"]
    hashes = [(fetchmod.sha256_file(os.path.join(apt_dir, n)), os.path.getsize(os.path.join(apt_dir, n)), n)
              for n in ("Packages", "Packages.gz")]
    body = "".join(f" {sha} {size} {name}\n" for sha, size, name in hashes)
    release_path = os.path.join(apt_dir, "Release")
    old = open(release_path, encoding="utf-8").read() if os.path.isfile(release_path) else ""
    if not old.endswith("SHA256:\n" + body) or f"Architectures: {' '.join(arches)}\n" not in old:
        release = (f"Origin: {origin}\nLabel: {origin}\nSuite: llmops\nCodename: llmops\n"
                   f"Date: {formatdate(usegmt=True)}\nArchitectures: {' '.join(arches)}\n"
                   f"Description: Debian packages for an offline llmops.platform installation\n"
                   f"SHA256:\n{body}")
        with open(release_path, "w", encoding="utf-8") as handle:
            handle.write(release)
        changed = True
    if sign_key:
        changed |= sign_release(apt_dir, sign_key, force=changed)
    return changed


def sign_release(apt_dir: str, key: str, force: bool = False) -> bool:
    """InRelease (clear-signed Release) and the public key as mirror-key.asc."""
    inrelease = os.path.join(apt_dir, "InRelease")
    if not force and os.path.isfile(inrelease):
        return False
    for args in (["--clearsign", "-o", inrelease, os.path.join(apt_dir, "Release")],
                 ["--armor", "--export", "-o", os.path.join(apt_dir, "mirror-key.asc"), key]):
        done = subprocess.run(["gpg", "--batch", "--yes", "--local-user", key, *args], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise AptError(f"gpg could not sign with {key!r} (mirror_apt_sign_key): {done.stderr.strip()[:300]}")
    return True


def _write_if_changed(path: str, data: bytes) -> bool:
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return True


def fetch_debs(debs: Iterable[Deb], apt_dir: str, timeout: float, known: Optional[Mapping[str, str]] = None) -> list:
    """Download every .deb into `apt_dir` against the index's sha256; [(deb, Fetched | error)]."""
    out = []
    for deb in debs:
        try:
            got = fetchmod.fetch(deb.url, os.path.join(apt_dir, deb.filename), deb.sha256, timeout=timeout,
                                 expected_size=deb.size)
            out.append((deb, got))
        except fetchmod.FetchError as exc:
            out.append((deb, str(exc)))
    return out


def mirror_path(filename: str) -> str:
    return f"{urls.APT}/{filename}"
