"""Where each upstream artifact lives in a mirror, and the URLs the roles use instead.

One rule for every file download (get_url): `https://host/some/path` is mirrored at
`<mirror>/files/host/some/path`, so any pinned URL maps to one mirror path without a table,
and a role keeps its pinned checksum. Paths are stored decoded (`v1.36.4+k3s1`, not
`v1.36.4%2Bk3s1`); a static HTTP server decodes request paths the same way.
"""
from __future__ import annotations

import posixpath
import re
from urllib.parse import quote, unquote, urlsplit

FILES = "files"
APT = "apt"
PYPI = "pypi"
HF = "hf"
IMAGES = "images"
MANIFEST_JSON = "manifest.json"
MANIFEST_TABLE = "manifest.md"
MIRROR_URL_RE = re.compile(r"^https?://[^/\s]+(/[^\s]*)?$")


class MirrorUrlError(ValueError):
    pass


def check_mirror_url(mirror_url: str, field: str = "platform_mirror_url") -> str:
    """The mirror's base URL without a trailing slash ("" stays "": online as usual)."""
    mirror_url = str(mirror_url or "").strip()
    if not mirror_url:
        return ""
    if not MIRROR_URL_RE.match(mirror_url):
        raise MirrorUrlError(f"{field}: {mirror_url!r} is not an http(s) URL; write e.g. "
                             "http://bastion.internal:8080 (where the mirror server serves platform_mirror_dir)")
    return mirror_url.rstrip("/")


def mirror_path(url: str) -> str:
    """The relative path under the mirror directory of an upstream file URL."""
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MirrorUrlError(f"{url!r} is not an http(s) URL; only those are mirrored as files")
    path = posixpath.normpath("/" + unquote(parts.path)).lstrip("/")
    if not path or path == ".":
        raise MirrorUrlError(f"{url!r} names no file")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{FILES}/{host}/{path}"


def rewrite(url: str, mirror_url: str) -> str:
    """`url` as served by the mirror at `mirror_url`; unchanged when the mirror is off ("").
    A `sha256:<url>` checksum reference (get_url's checksum file form) is rewritten too."""
    url = str(url)
    mirror_url = check_mirror_url(mirror_url)
    if not mirror_url:
        return url
    if url.startswith(("sha256:", "sha512:")) and "://" in url:
        algo, _sep, rest = url.partition(":")
        return f"{algo}:{rewrite(rest, mirror_url)}"
    if "://" not in url:  # a bare checksum, a path: nothing to rewrite
        return url
    return f"{mirror_url}/{quote(mirror_path(url))}"


def apt_url(mirror_url: str) -> str:
    return f"{check_mirror_url(mirror_url)}/{APT}/"


def pypi_url(mirror_url: str) -> str:
    """pip's --find-links page (index.html with every wheel, #sha256= on each link)."""
    return f"{check_mirror_url(mirror_url)}/{PYPI}/"


def hf_endpoint(mirror_url: str) -> str:
    """HF_ENDPOINT for huggingface_hub: the mirror server's read-only Hub API."""
    return f"{check_mirror_url(mirror_url)}/{HF}"


def registry_host(mirror_url: str) -> str:
    """host[:port] of the mirror server's read-only registry API (/v2/)."""
    parts = urlsplit(check_mirror_url(mirror_url))
    return parts.netloc
