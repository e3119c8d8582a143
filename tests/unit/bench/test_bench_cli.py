"""`llmops bench`: flags generated from BenchConfig, live progress, same engine as the module."""
import io
import json

import pytest
from fake_openai import FakeOpenAI, serve_in_thread  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.bench.client import Counters  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.bench.progress import Progress  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.cli import bench as cli  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.cli.main import main  # noqa: E402


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
                     "--rate", "50", "--max-dispatch-lag-ms", "500", "--percentiles", "50,99.9", "--server-args",
                     '{"max_num_seqs": 4}', "-o", str(tmp_path / "out"), "--quiet"])
        assert code == 0
        out = json.loads(capsys.readouterr().out)
        assert out["valid"] is True and out["results"].endswith("results.json"), out["invalid_reasons"]
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


SNAPSHOT = __import__("pathlib").Path(__file__).parent / "snapshots" / "llmops_bench_help.txt"


def bench_help(monkeypatch):
    import argparse
    monkeypatch.setenv("COLUMNS", "100")
    parser = argparse.ArgumentParser(prog="llmops")
    cli.register(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["bench"]
    return sub, sub.format_help()


def test_help_snapshot_and_every_flag_explained(monkeypatch):
    """Regenerate after a deliberate change: LLMOPS_UPDATE_SNAPSHOTS=1 pytest -k help_snapshot."""
    import os
    sub, text = bench_help(monkeypatch)
    for action in sub._actions:
        assert action.help and len(action.help) > 10, action.option_strings
    docs = cli._docs()
    for name in ("endpoint", "dataset", "profile"):
        assert "{" + ",".join(docs[name]["choices"]) + "}" in text
    for flag in ("--request-rate", "--num-prompts", "--max-concurrency", "--max-seconds", "--header",
                 "--label", "--load-profile", "OPENAI_API_KEY", "(default: 100)", "(default: chat)"):
        assert flag in text, flag
    assert "C(" not in text and "O(" not in text  # Ansible markup is rendered as plain text
    if os.environ.get("LLMOPS_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def options_for(argv, monkeypatch, env=None):
    import argparse
    for key in ("LLMOPS_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="cmd"))
    return cli._options(parser.parse_args(["bench", "--base-url", "http://127.0.0.1:1"] + argv))


def test_vllm_bench_serve_spellings(monkeypatch, capsys):
    opts = options_for(["--request-rate", "4", "--num-prompts", "50"], monkeypatch)
    assert (opts["rate"], opts["num_requests"], opts["profile"]) == (4.0, 50, "poisson")
    assert options_for(["--request-rate", "inf"], monkeypatch)["profile"] == "throughput"
    opts = options_for(["--max-concurrency", "16"], monkeypatch)
    assert opts["concurrency"] == 16 and "max_concurrency" not in opts  # closed loop, as vllm
    opts = options_for(["--max-concurrency", "16", "--load-profile", "constant", "--rate", "2"], monkeypatch)
    assert opts["max_concurrency"] == 16 and opts["profile"] == "constant"
    assert options_for(["--concurrency", "1,4,16,64"], monkeypatch)["concurrency"] == [1, 4, 16, 64]
    assert options_for(["--request-rate", "2,4"], monkeypatch)["rate"] == [2.0, 4.0]
    opts = options_for(["--profile", "constant", "--rate", "3"], monkeypatch)
    assert opts["profile"] == "constant" and "deprecated" in capsys.readouterr().err
    opts = options_for(["-H", "X-Tenant: a", "--header", "X-B:c", "--label", "L", "--max-seconds", "9"],
                       monkeypatch)
    assert opts["headers"] == {"X-Tenant": "a", "X-B": "c"} and opts["label"] == "L" and opts["max_seconds"] == 9


def test_api_key_from_the_environment(monkeypatch):
    assert options_for([], monkeypatch, {"OPENAI_API_KEY": "sk-o"})["api_key"] == "sk-o"
    assert options_for([], monkeypatch, {"OPENAI_API_KEY": "sk-o", "LLMOPS_API_KEY": "sk-l"})["api_key"] == "sk-l"
    assert options_for(["--api-key", "sk-f"], monkeypatch, {"OPENAI_API_KEY": "sk-o"})["api_key"] == "sk-f"


def test_model_auto_detect_and_report_index(tmp_path, capsys, monkeypatch):
    server = FakeOpenAI(ttft=0.002, itl=0.001, models=("served-a", "served-b"))
    port, stop = serve_in_thread(server)
    monkeypatch.chdir(tmp_path)
    try:
        assert cli.detect_model(f"http://127.0.0.1:{port}", None) == "served-a"
        code = main(["bench", "--base-url", f"http://127.0.0.1:{port}", "--num-prompts", "3",
                     "--max-tokens", "2", "--quiet"])
        assert code == 0
        captured = capsys.readouterr()
        assert "model served-a (from /v1/models)" in captured.err
        out = json.loads(captured.out)
        assert "/served-a/" in out["results"] and out["index"] == "reports/index.html"
        assert "served-a" in (tmp_path / "reports" / "index.html").read_text()
        (tmp_path / "reports" / "index.html").unlink()
        assert main(["report"]) == 0  # rebuilds the index from the results on disk
        assert "served-a" in (tmp_path / "reports" / "index.html").read_text()
    finally:
        stop()
    with pytest.raises(ValueError, match="pass --model"):
        cli.detect_model(f"http://127.0.0.1:{port}", None, timeout_s=1.0)


def test_progress_file_for_playbook_runs(tmp_path):
    from ansible_collections.llmops.platform.plugins.module_utils.bench.api import run_to_dir
    from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig

    port, stop = serve_in_thread(FakeOpenAI(ttft=0.002, itl=0.001))
    try:
        config = BenchConfig(base_url=f"http://127.0.0.1:{port}", model="fixture", num_requests=3,
                             concurrency=[1, 2], max_tokens=2)
        run_to_dir(config, str(tmp_path / "out"), progress_file=str(tmp_path / "out" / "progress.log"))
    finally:
        stop()
    text = (tmp_path / "out" / "progress.log").read_text()
    assert "step 0: concurrency 1" in text and "step 1: concurrency 2" in text and text.endswith("finished\n")
