"""The pinned policy scanner (checkov, requirements/scan.lock) for the render tests."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "tests", "render", "checkov.yaml")
SCAN_LOCK = os.path.join(ROOT, "requirements", "scan.lock")


@functools.lru_cache(maxsize=1)
def checkov() -> str:
    """checkov from its cached venv, built once per lock (scripts/venv.sh ensure scan)."""
    result = subprocess.run([os.path.join(ROOT, "scripts", "venv.sh"), "ensure", "scan"], capture_output=True,
                            text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return os.path.join(result.stdout.strip(), "bin", "checkov")


def scan(directory: str, *args: str) -> tuple[int, dict, float]:
    """(exit code, the kubernetes report, wall seconds) of one offline scan of `directory`;
    `args` replace the project's config file (tests/render/checkov.yaml)."""
    start = time.monotonic()
    options = list(args) or ["--config-file", CONFIG]
    # From the directory itself: checkov would also read a .checkov.yaml in its working directory.
    result = subprocess.run([checkov(), *options, "-d", ".", "-o", "json"], cwd=directory, capture_output=True,
                            text=True, timeout=600, check=False, env=dict(os.environ, BC_API_KEY=""))
    elapsed = time.monotonic() - start
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    kube = [r for r in reports if r.get("check_type") == "kubernetes"]
    assert len(kube) == 1, f"no kubernetes report: {result.stdout[:1000]}"
    return result.returncode, kube[0], elapsed
