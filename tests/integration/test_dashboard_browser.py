"""The comparison dashboard and the static comparison.html in a real headless Chromium.

Starts `scripts/llmops dashboard` on a fake comparison tree (ports 19500-19589), screenshots
it through the DevTools protocol (apps/dashboard/screenshot.py), and checks the page text and
the PNG; then loads the comparison.html llm_compare writes for the same tree and checks it
says the same verdict. About 15 s. `make test-deps` installs /usr/bin/chromium; without it the
test skips, and with CI=true fails.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "apps", "dashboard"))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "dashboard"))
from fake_results import MODELS, RUNS, write_tree  # noqa: E402
from procs import terminate  # noqa: E402
from screenshot import CHROMIUM, capture, free_port, png_size  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.compare import (  # noqa: E402
    METRICS,
    compare,
    load_runs,
    write_comparison,
)

# The fake runs have no prefix_cache.json: the dashboard and comparison.html leave out the
# hit-rate row then.
LABELS = [label for path, label, _ in METRICS if not path.startswith("prefix_cache.")]
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed")
NEW = RUNS[-1]  # the dashboard opens on the newest run
DASHBOARD_PORTS = range(19500, 19590)  # 19590-19599: screenshot.py's DevTools ports


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> str:
    root = write_tree(str(tmp_path_factory.mktemp("compare")))
    write_comparison(os.path.join(root, NEW), "baseline", "managed", ["fake tree for the browser test"])
    return root


@pytest.fixture(scope="module")
def expected(tree) -> dict[str, str]:
    result = compare(load_runs(os.path.join(tree, NEW)), "baseline", "managed")
    return {model: result["models"][model]["verdict"] for model in MODELS}


@pytest.fixture(scope="module")
def dashboard(tree, tmp_path_factory, request) -> tuple[str, subprocess.Popen]:
    port = free_port(DASHBOARD_PORTS)
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([os.path.join(ROOT, "scripts", "llmops"), "dashboard", "--dir", tree,
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        terminate(proc, 15)
    request.addfinalizer(stop)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 45
    while True:
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    break
        except OSError:
            pass
        assert proc.poll() is None, f"dashboard exited {proc.returncode}: {log.read_text()}"
        assert time.monotonic() < deadline, f"dashboard not healthy within 45 s: {log.read_text()}"
        time.sleep(0.3)
    assert f"llmops dashboard: {url}" in log.read_text()
    return url, proc


@pytest.fixture(scope="module")
def dashboard_page(dashboard, expected, tmp_path_factory):
    png = str(tmp_path_factory.mktemp("shots") / "dashboard.png")
    return capture(dashboard[0], png, wait_for=[expected["chat"], "E2E percentiles (ms)"], timeout_s=40)


def assert_real_png(path: str, width: int, height: int, min_bytes: int) -> None:
    assert png_size(path) == (width, height)
    assert os.path.getsize(path) > min_bytes, "a blank page compresses to a few KB"


def test_dashboard_renders_verdict_metrics_and_runs(dashboard, dashboard_page, expected):
    # The pid we would kill is the server itself: llmops execs into streamlit, nothing is orphaned.
    with open(f"/proc/{dashboard[1].pid}/cmdline", "rb") as handle:
        assert b"streamlit" in handle.read()
    assert_real_png(dashboard_page.png, 1400, 2400, 60_000)
    text = dashboard_page.text
    assert f"{NEW} (baseline, managed): {expected['chat']}" in text
    for label in LABELS:
        assert label in text, label
    assert f"{NEW}/baseline" in text and f"{NEW}/managed" in text
    assert "difference per metric and run-to-run noise" in text
    assert dashboard_page.seconds < 40


def test_static_comparison_html_says_the_same(tree, dashboard_page, expected, tmp_path):
    page = os.path.join(tree, NEW, "comparison.html")
    shot = capture("file://" + page, str(tmp_path / "comparison.png"), wait_for=["baseline vs managed"],
                   timeout_s=20, settle_s=0.5, width=1200, height=1600)
    assert_real_png(shot.png, 1200, 1600, 30_000)
    lines = [line.strip() for line in shot.text.splitlines() if line.strip()]
    static = {model: lines[lines.index(model) + 1] for model in MODELS}
    assert static == expected
    shown = re.search(rf"^{NEW} \(baseline, managed\): (.+)$", dashboard_page.text, re.M)
    assert shown and shown.group(1) == static["chat"]
    for label in LABELS:
        assert label in shot.text, label
