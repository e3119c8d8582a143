"""With CI=true, a skipped test is a failure (tests/conftest.py), unless it is an optional extra.

A fresh clone's `CI=true make test` must report 0 skipped: a skip there means `make test`
did not install something a test needs, and that must be visible, not silently passed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

PROBES = '''
import pytest

def test_passes():
    pass

@pytest.mark.skipif(True, reason="widget missing")
def test_skipif():
    pass

def test_runtime_skip():
    pytest.skip("gadget missing")

@pytest.mark.optional_extra("an extra nobody needs")
def test_optional_extra():
    pytest.skip("extra missing")

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False
'''
MODULE_SKIP = '''
import pytest
pytest.importorskip("llmops_no_such_module")

def test_never_runs():
    pass
'''


def _pytest(tmp_path, ci: bool, source: str = PROBES) -> subprocess.CompletedProcess:
    shutil.copy(os.path.join(ROOT, "tests", "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probes.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_skips_fail_under_ci(tmp_path):
    result = _pytest(tmp_path, ci=True)
    out = result.stdout
    assert result.returncode != 0, out
    assert "test_skipif skipped with CI=true: Skipped: widget missing" in out
    assert "test_runtime_skip skipped with CI=true: Skipped: gadget missing" in out
    assert "SKIPPED [1]" in out and "extra missing" in out  # the optional extra still skips
    assert "XFAIL" in out and "PASSED test_probes.py::test_passes" in out


def test_collection_skips_fail_under_ci(tmp_path):
    """importorskip at module level skips at collection: that fails too (and stops the run)."""
    result = _pytest(tmp_path, ci=True, source=MODULE_SKIP)
    assert result.returncode != 0, result.stdout
    assert "test_probes.py skipped with CI=true" in result.stdout
    assert "llmops_no_such_module" in result.stdout


def test_skips_stay_skips_outside_ci(tmp_path):
    result = _pytest(tmp_path, ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout
