import json
import os

from ansible_collections.llmops.platform.plugins.module_utils.cli import main as cli

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 3))


def test_tune_is_registered_and_check_validates(capsys):
    parser, broken = cli.build_parser()
    assert "tune" in parser.format_help() and not broken.get("tune")
    assert cli.main(["tune", "--check", os.path.join(ROOT, "examples", "simple_task.json")]) == 0
    assert "ok (grid, minimize_latency" in capsys.readouterr().out


def test_bad_task_exits_2_naming_the_field(tmp_path, capsys):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"task_name": "x", "model": {"name": "m"}, "optimization": {},
                               "parameters": {"tp_size": [1]},
                               "benchmark": {"additional_params": {"temperature": "0.0"}}}))
    assert cli.main(["tune", str(bad)]) == 2
    assert "benchmark.additional_params.temperature" in capsys.readouterr().err


def test_launcher_script_exists_and_is_executable():
    path = os.path.join(ROOT, "scripts", "llmops")
    assert os.access(path, os.X_OK)
    assert "module_utils.cli.main" in open(path).read()
