"""What each llmops app (apps/router, apps/gateway) ships, in one place: its package, the
shared llmops_common package and its other files. The roles put these files into a
`<name>-code` ConfigMap (keys cannot hold a '/', so `llmops_router/server.py` is stored
under `llmops_router.server.py`) and on PYTHONPATH on the local target.
"""
from __future__ import annotations

import glob
import os

# app -> directories under apps/ that hold its Python packages (each goes on PYTHONPATH).
PACKAGE_ROOTS = {
    "router": ("router", "common"),
    "gateway": ("gateway", "common"),
}
# app -> other files under apps/ it serves (the chat page).
EXTRA_FILES = {"gateway": ("chat/index.html",)}


class AppCodeError(ValueError):
    pass


def _roots(app: str) -> tuple[str, ...]:
    if app not in PACKAGE_ROOTS:
        raise AppCodeError(f"unknown app {app!r}; known: {', '.join(sorted(PACKAGE_ROOTS))}")
    return PACKAGE_ROOTS[app]


def code_files(app: str, apps_dir: str) -> list[str]:
    """Absolute paths of every file the app needs at run time, sorted."""
    files = []
    for root in _roots(app):
        packages = glob.glob(os.path.join(apps_dir, root, "llmops_*", "__init__.py"))
        if not packages:
            raise AppCodeError(f"{os.path.join(apps_dir, root)}: no llmops_* package (is apps_dir right?)")
        for init in packages:
            files += glob.glob(os.path.join(os.path.dirname(init), "*.py"))
    files += [os.path.join(apps_dir, extra) for extra in EXTRA_FILES.get(app, ())]
    return sorted(files)


def configmap_key(path: str) -> str:
    """`.../llmops_router/server.py` -> `llmops_router.server.py` (its folder, a dot, its name)."""
    return f"{os.path.basename(os.path.dirname(path))}.{os.path.basename(path)}"


def mount_path(key: str) -> str:
    """The file's path below the code volume: `llmops_router.server.py` -> `llmops_router/server.py`."""
    folder, _dot, name = key.partition(".")
    return f"{folder}/{name}"


def pythonpath(app: str, apps_dir: str) -> str:
    return os.pathsep.join(os.path.join(apps_dir, root) for root in _roots(app))
