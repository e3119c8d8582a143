"""The sweep report as a user sees it, in a real headless Chromium: the noise-aware headline
("beyond noise" / "no change beyond noise"), the charts (never a lone point), and the links
to the raw files. The sweeps themselves come from the tuner's trial loop with a fake runtime
and fake measurements (tests/unit/tune/tune_fakes.py), so this takes seconds; the demo's
real sweep report is the same renderer. `make test-deps` installs /usr/bin/chromium; without
it the test skips, and with CI=true fails.
"""
from __future__ import annotations

import itertools
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "apps", "dashboard"))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "tune"))
from screenshot import CHROMIUM, capture, png_size  # noqa: E402
from tune_fakes import FakeRuntime, surface, sweep_mod  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.tune.output import (  # noqa: E402
    best_snippet,
    write_outputs,
)
from ansible_collections.llmops.platform.plugins.module_utils.tune.sweep import SweepOptions, run_sweep  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task  # noqa: E402

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed")

TASK = {
    "task_name": "browser-sweep",
    "model": {"name": "m", "source": "generated:tiny-llama"},
    "parameters": {"max_num_seqs": [4, 16, 64]},
    "optimization": {"strategy": "grid", "objective": "maximize_throughput"},
    "benchmark": {"num_concurrency": [8], "repeats": 3},
}


MEANS = {None: 1000.0, 4: 990.0, 16: 1010.0, 64: 995.0}  # output tokens/s; None: the default


def _sweep(tmp_path, monkeypatch, spread):
    """A sweep whose repeats scatter by +-`spread` around MEANS (the best, 16, is 1% ahead)."""
    runtime = FakeRuntime()
    noise = itertools.cycle((-spread, spread, 0.0))

    def measure(task, *args, **kwargs):
        point = surface(dict(runtime.current))
        thr = MEANS[runtime.current.get("max_num_seqs")] + next(noise)
        point.update(output_tokens_per_s=thr, requests_per_s=thr / 32, goodput_rps=thr / 32, e2e_ms=1e5 / thr)
        return [point], 0.1, 1.0
    monkeypatch.setattr(sweep_mod, "measure", measure)
    out = str(tmp_path / f"sweep-{spread:g}")
    results = run_sweep(parse_task(TASK), SweepOptions(output_dir=out, runtime=runtime))
    return write_outputs(results, out, best_snippet(results, "m", "generated:tiny-llama"))["report"]


@pytest.mark.parametrize("spread, headline", [
    (2.0, "is better than the default beyond noise"),
    (30.0, "no change beyond noise"),
])
def test_sweep_report_headline_and_charts_in_chromium(tmp_path, monkeypatch, spread, headline):
    report = _sweep(tmp_path, monkeypatch, spread)
    png = report.replace(".html", ".png")
    shot = capture("file://" + report, png, wait_for=["Best vs default", "Trials ranked"])
    text = shot.text
    assert headline in text.lower() if headline.islower() else headline in text, text[:600]
    for label in ("sweep.json", "trials.csv", "best.yml", "3 benchmark run(s) per trial"):
        assert label in text, label
    assert "single point" not in text
    assert text.count("<svg") == 0  # innerText: charts drew, no raw markup leaked
    width, height = png_size(png)
    assert width >= 1000 and height >= 800 and os.path.getsize(png) > 20000
