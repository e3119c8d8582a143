"""`llmops bench`: flags generated from BenchConfig, live progress, same engine as the module."""
import io
import json

import pytest

aiohttp = pytest.importorskip("aiohttp")

from ansible_collections.llmops.platform.plugins.module_utils.bench.client import Counters  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.progress import Progress  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.cli import bench as cli  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.cli.main import main  # noqa: E402

from fake_openai import FakeOpenAI, serve_in_thread  # noqa: E402


def test_every_engine_option_is_a_flag():
    import argparse
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    flags = {a.dest for a in parser._subparsers._group_actions[0].choices["bench"]._actions}
    assert {f.name for f, _ in cli._fields()} <= flags


def test_check_and_usage_errors(capsys):
    assert main(["bench", "--base-url", "http://127.0.0.1:20500", "--model", "m", "--check"]) == 0
    assert main(["bench", "--base-url", "http://127.0.0.1:20500", "--model", "m",
                 "--profile", "poisson", "--check"]) == 2
    assert "rate" in capsys.readouterr().err


def test_run_writes_outputs_and_exit_code(tmp_path, capsys):
    server = FakeOpenAI(ttft=0.005, itl=0.001)
    port, stop = serve_in_thread(server)
    try:
        code = main(["bench", "--base-url", f"http://127.0.0.1:{port}", "--model", "fixture",
                     "--num-requests", "6", "--max-tokens", "3", "--profile", "constant",
                     "--rate", "50", "--percentiles", "50,99.9", "--server-args",
                     '{"max_num_seqs": 4}', "-o", str(tmp_path / "out"), "--quiet"])
        assert code == 0
        out = json.loads(capsys.readouterr().out)
        assert out["valid"] is True and out["results"].endswith("results.json")
        results = json.load(open(out["results"]))
        assert results["server_args"] == {"max_num_seqs": 4}
        assert results["summary"]["ttft_ms"]["p999"] is not None
        bad = main(["bench", "--base-url", f"http://127.0.0.1:{port}/fail500", "--model", "f",
                    "--num-requests", "2", "-o", str(tmp_path / "bad"), "--quiet",
                    "--fail-on-invalid"])
        assert bad == cli.EXIT_INVALID
    finally:
        stop()


def test_progress_line():
    counters = Counters(10)
    counters.sent, counters.done, counters.failed, counters.in_flight = 7, 5, 1, 2
    counters.label = "constant 4/s #1/1"
    stream = io.StringIO()
    progress = Progress(counters, stream, every_s=0.01)
    line = progress.line()
    assert "sent      7" in line and "failed    1" in line and "constant 4/s" in line
    with progress:
        pass
    progress.step_done({"step": {"index": 0, "label": "x"}, "valid": False,
                        "throughput": {"requests_per_s": 2.0}, "ttft_ms": {"median": 3.0}})
    assert "INVALID" in stream.getvalue()
