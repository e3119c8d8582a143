"""API keys: read from a file (re-read when it changes, so a rotated Kubernetes Secret or an
edited file takes effect without a restart) and/or an environment variable."""
from __future__ import annotations

import hmac
import os
import time


def parse_keys(text: str) -> list[str]:
    """One key per line or comma-separated; blank lines and `#` comments ignored."""
    keys = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        keys += [k.strip() for k in line.split(",") if k.strip()]
    return keys


class ApiKeys:
    def __init__(self, path: str = "", env_name: str = "", recheck_s: float = 1.0) -> None:
        self.path, self.recheck_s = path, recheck_s
        self.env_keys = parse_keys(os.environ.get(env_name, "")) if env_name else []
        self._file_keys: list[str] = []
        self._mtime: float | None = None
        self._checked = 0.0
        self._reload()

    def _reload(self) -> None:
        if not self.path:
            return
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            # A configured but missing file must not silently open the gateway: keep a key
            # nobody can send, so every request gets 401 until the file appears.
            self._file_keys, self._mtime = ["\0missing-key-file"], None
            return
        if mtime != self._mtime:
            with open(self.path, encoding="utf-8") as handle:
                self._file_keys = parse_keys(handle.read())
            self._mtime = mtime

    def keys(self) -> list[str]:
        now = time.monotonic()
        if self.path and now - self._checked >= self.recheck_s:
            self._checked = now
            self._reload()
        return self.env_keys + self._file_keys

    @property
    def enabled(self) -> bool:
        return bool(self.path) or bool(self.env_keys)

    def check(self, authorization: str | None) -> str | None:
        """The matching key's index as the client id, or None. Every key is compared (in
        constant time), so the answer's timing does not tell which prefix matched."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        token_b = token.strip().encode()
        found = None
        for index, key in enumerate(self.keys()):
            if hmac.compare_digest(token_b, key.encode()):
                found = f"key{index}"
        return found
