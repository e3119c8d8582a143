"""Atomic, idempotent file writes shared by the modules and module_utils.

A reader (a report index, a supervisor, a later task) never sees a half-written file: the
text goes to a temporary file beside the target, then is renamed over it. `write_if_changed`
leaves an identical file alone, which is what keeps a second run at changed=0.
`replace_dir` does the same for a whole directory tree (a model, a mirrored repository).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator


def atomic_write(path: str, text: str, mode: int = 0o644) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.chmod(tmp, mode)  # mkstemp makes 0600; reports and scripts are meant to be read
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def same_content(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == text
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return False


def write_if_changed(path: str, text: str, mode: int = 0o644) -> bool:
    """Write text unless the file already holds it. Returns True when it wrote."""
    if same_content(path, text):
        return False
    atomic_write(path, text, mode)
    return True


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_json_if_changed(path: str, data: Any) -> bool:
    return write_if_changed(path, json_text(data))


@contextlib.contextmanager
def replace_dir(dest: str, prefix: str = ".build-") -> Iterator[str]:
    """Yield an empty directory beside dest; when the block succeeds it replaces dest.

    An interrupted or failed build leaves dest as it was (and no temporary directory behind).
    """
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield work
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.replace(work, dest)
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
