"""`llmops dashboard`: argument checks and the streamlit command it execs (nothing is started here)."""
import os

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.cli import dashboard
from ansible_collections.llmops.platform.plugins.module_utils.cli.main import main


@pytest.fixture()
def execs(monkeypatch, tmp_path):
    """Record os.execve instead of replacing the test process; a fake executable streamlit."""
    calls = []
    fake = tmp_path / "bin" / "streamlit"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(dashboard, "streamlit_bin", lambda: str(fake))
    monkeypatch.setattr(dashboard.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    return calls


def test_defaults_are_loopback_headless_and_print_the_url(execs, tmp_path, monkeypatch, capsys):
    (tmp_path / "reports" / "compare").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard"]) == 0
    path, argv, env = execs[0]
    assert path == argv[0] and argv[1:3] == ["run", dashboard.APP] and os.path.isfile(dashboard.APP)
    flags = dict(zip(argv[3::2], argv[4::2]))
    assert flags == {"--server.address": "127.0.0.1", "--server.port": "8501", "--server.headless": "true",
                     "--browser.gatherUsageStats": "false", "--global.developmentMode": "false",
                     "--client.toolbarMode": "viewer"}
    assert env["LLMOPS_COMPARE_DIR"] == str(tmp_path / "reports" / "compare")
    out, err = capsys.readouterr()
    assert "http://127.0.0.1:8501/" in out and err == ""


def test_other_host_and_port_warn_about_no_login(execs, tmp_path, capsys):
    assert main(["dashboard", "--dir", str(tmp_path), "--host", "0.0.0.0", "--port", "19599"]) == 0
    flags = dict(zip(execs[0][1][3::2], execs[0][1][4::2]))
    assert flags["--server.address"] == "0.0.0.0" and flags["--server.port"] == "19599"
    out, err = capsys.readouterr()
    assert "http://127.0.0.1:19599/" in out and "no login" in err


def test_missing_dir_names_the_flag_and_the_fix(execs, tmp_path, capsys):
    assert main(["dashboard", "--dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert f"--dir {tmp_path / 'nope'}" in err and "playbooks/compare.yml" in err and not execs


def test_missing_streamlit_says_make_control(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(dashboard, "streamlit_bin", lambda: str(tmp_path / "bin" / "streamlit"))
    assert main(["dashboard", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "streamlit is not installed" in err and "make control" in err


def test_streamlit_is_looked_up_next_to_the_interpreter():
    assert dashboard.streamlit_bin("/venv/bin/python") == "/venv/bin/streamlit"
    assert dashboard.url("::1", 8501) == "http://[::1]:8501/"


def test_default_dir_may_be_missing_and_prometheus_url_is_passed(execs, tmp_path, monkeypatch):
    """After `make demo` there is no comparison yet: the monitoring page still opens."""
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", "--prometheus-url", "http://127.0.0.1:26002"]) == 0
    _, _, env = execs[0]
    assert env["LLMOPS_COMPARE_DIR"] == str(tmp_path / "reports" / "compare")
    assert env["LLMOPS_PROMETHEUS_URL"] == "http://127.0.0.1:26002"
    assert os.path.isfile(os.path.join(os.path.dirname(dashboard.APP), "pages", "monitoring.py"))
