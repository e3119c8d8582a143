"""Download one file into the mirror, verified, atomically, and only when it is not there yet.

A file already present with the expected sha256 is not downloaded again (the second build of
a mirror fetches nothing). A download goes to a temporary file beside the destination and is
renamed only after its sha256 matched, so an interrupted or tampered download never leaves a
file that looks complete.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional

CHUNK = 1 << 20
USER_AGENT = "llmops-platform-mirror/1"


class FetchError(RuntimeError):
    pass


@dataclass
class Fetched:
    path: str
    sha256: str
    size: int
    downloaded: bool  # False: the file was already there with this sha256


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def present(path: str, sha256: str) -> bool:
    """True when `path` exists and its content has `sha256` (never true for an empty pin)."""
    return bool(sha256) and os.path.isfile(path) and sha256_file(path) == sha256


def fetch(url: str, dest: str, sha256: str = "", timeout: float = 60.0, expected_size: Optional[int] = None,
          known_sha256: str = "") -> Fetched:
    """Fetch `url` to `dest`. With `sha256` the content must match it. Without one, a file
    already at `dest` whose sha256 is `known_sha256` (what an earlier build recorded) is kept;
    otherwise the file is downloaded and its sha256 is returned for the manifest."""
    keep = sha256 or known_sha256
    if keep and present(dest, keep):
        return Fetched(dest, keep, os.path.getsize(dest), False)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    handle, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", dir=os.path.dirname(dest) or ".")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) URLs from versions.yml)
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as exc:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise FetchError(f"{url}: unreachable ({reason})") from None
        got = digest.hexdigest()
        if sha256 and got != sha256:
            raise FetchError(f"{url}: sha256 {got} does not match the pinned {sha256}; the file was not kept")
        if expected_size is not None and size != expected_size:
            raise FetchError(f"{url}: {size} bytes, the index says {expected_size}; the file was not kept")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        return Fetched(dest, got, size, True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_url(url: str, timeout: float = 60.0, limit: int = 1 << 20) -> bytes:
    """A small document (a checksum list, a signing key), at most `limit` bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url}: unreachable ({getattr(exc, 'reason', exc)})") from None
    if len(data) > limit:
        raise FetchError(f"{url}: larger than {limit} bytes, not a checksum list or key")
    return data


def sha256sum_lookup(text: str, filename: str) -> str:
    """The sha256 of `filename` in a `sha256sum` listing ("" when it is not listed)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == filename and len(parts[0]) == 64:
            return parts[0].lower()
    return ""
