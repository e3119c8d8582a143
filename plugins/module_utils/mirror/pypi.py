"""Python wheels of the venv locks, and the page pip reads them from.

`pip download --no-deps -r LOCK` with the interpreter the venv is built with (scripts/venv.sh
python NAME), so the files fit that venv's Python and platform. A lock whose pins carry
`--hash=sha256:` is downloaded with `--require-hashes` (pip refuses any other file); a lock
without hashes gets each file's sha256 recorded in the manifest at download.

`pypi/index.html` links every file with `#sha256=`, which pip checks: the venv tasks install
with `--no-index --find-links <mirror>/pypi/`.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import tempfile
from typing import Iterable, Optional

from ansible_collections.llmops.platform.plugins.module_utils.mirror import fetch as fetchmod

SAVED_RE = re.compile(r"(?:Saved|File was already downloaded) (?P<path>\S+)")
PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
DIST_EXT = (".whl", ".tar.gz", ".zip", ".tar.bz2")


class PypiError(RuntimeError):
    pass


def lock_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def lock_pins(path: str) -> list[tuple[str, str]]:
    """(normalized name, version) of every pinned line."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = PIN_RE.match(line.strip())
            if match:
                out.append((normalize(match.group(1)), match.group(3)))
    return out


def lock_has_hashes(path: str) -> bool:
    with open(path, encoding="utf-8") as handle:
        return "--hash=sha256:" in handle.read()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_chunks(path: str, parts: int) -> list[list[str]]:
    """The lock's requirement lines (continuations joined) in up to `parts` chunks; option lines
    (--index-url, -f, ...) go into every chunk."""
    with open(path, encoding="utf-8") as handle:
        text = re.sub(r"\\\n\s*", " ", handle.read())
    options, pins = [], []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line or line.startswith("#"):
            continue
        (options if line.startswith("-") else pins).append(line)
    parts = max(1, min(parts, len(pins)))
    return [options + pins[i::parts] for i in range(parts)] if pins else []


def download(python: str, lock: str, dest: str, timeout: float = 180.0, env: Optional[dict] = None,
             parallel: int = 4) -> list[str]:
    """pip download every pin of `lock` into `dest`, `parallel` pip processes at once (each
    file is a request of its own: latency, not bandwidth, makes a lock slow); returns the files."""
    os.makedirs(dest, exist_ok=True)
    hashes = ["--require-hashes"] if lock_has_hashes(lock) else []
    chunks = lock_chunks(lock, parallel)
    if not chunks:
        raise PypiError(f"{lock} pins no package")
    with tempfile.TemporaryDirectory(prefix="llmops-pip-") as work:
        procs = []
        for index, lines in enumerate(chunks):
            chunk = os.path.join(work, f"chunk{index}.txt")
            with open(chunk, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            cmd = [python, "-m", "pip", "download", "--disable-pip-version-check", *hashes, "--no-deps",
                   "--progress-bar", "off", "--timeout", str(int(timeout)), "-d", dest, "-r", chunk]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env={**os.environ, **(env or {})}))
        outputs = []
        for proc in procs:
            out, err = proc.communicate()
            outputs.append((proc.returncode, out, err))
    failed = [err for code, _out, err in outputs if code != 0]
    if failed:
        errors = [line for err in failed for line in err.splitlines() if "ERROR" in line or "error" in line.lower()]
        raise PypiError("pip download failed: " + (" ".join(errors[-3:]) or failed[0].strip()[-500:]))
    files = []
    for _code, out, err in outputs:
        for match in SAVED_RE.finditer(out + "\n" + err):
            files.append(os.path.basename(match.group("path")))
    if not files:
        raise PypiError(f"pip download of {lock} reported no file")
    return sorted(set(files))


def write_index(pypi_dir: str, files: Iterable[tuple[str, str]]) -> bool:
    """index.html linking every (filename, sha256) with #sha256=; True when it changed."""
    rows = sorted(set(files))
    body = "".join(f'<a href="{html.escape(name)}#sha256={sha}">{html.escape(name)}</a><br>\n' for name, sha in rows)
    text = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>llmops.platform wheels</title></head>"
            f"<body>\n{body}</body></html>\n")
    path = os.path.join(pypi_dir, "index.html")
    if os.path.isfile(path) and open(path, encoding="utf-8").read() == text:
        return False
    os.makedirs(pypi_dir, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    return True


def file_records(pypi_dir: str, names: Iterable[str]) -> list[dict]:
    out = []
    for name in sorted(set(names)):
        path = os.path.join(pypi_dir, name)
        out.append({"file": name, "sha256": fetchmod.sha256_file(path), "size": os.path.getsize(path)})
    return out
