"""The tuner for real: vLLM CPU trial servers through `llmops tune` (about 5 minutes).

1. A bad flag crashes one trial and another times out: both are recorded infeasible with
   reason and log tail, and the sweep still writes its outputs.
2. The tuner is killed (SIGKILL) mid-sweep while a trial server is starting; re-running
   resumes from the journal, stops the orphaned server, and finishes without re-running
   the trial that had already finished.
Ports 19400-19499; every server started here is stopped by the tuner or the teardown.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTS = "19400-19499"


def write_task(path, name, timeout, requests, concurrency):
    task = {
        "task_name": name,
        "model": {"name": "tiny", "source": "generated:tiny-llama"},
        "parameters": {"dtype": {"type": "choice", "values": ["float7", "bfloat16"]}},
        "engine_args": {"max_model_len": 512},
        "optimization": {"strategy": "grid_search", "objective": "maximize_throughput",
                         "timeout_per_iteration": timeout},
        "benchmark": {"traffic_scenarios": ["D(16,16)"], "num_concurrency": [concurrency],
                      "num_requests": requests, "warmup_requests": 1},
    }
    path.write_text(json.dumps(task))
    return str(path)


@pytest.fixture
def home(tmp_path):
    env = dict(os.environ, LLMOPS_HOME=str(tmp_path / "home"))
    yield env
    # Belt and braces: stop any trial server a failed assertion left behind.
    run_dir = tmp_path / "home" / "run"
    for name in os.listdir(run_dir) if run_dir.exists() else []:
        pid_file = run_dir / name / "supervisor.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass


def tune(env, task, out, *extra, **kw):
    return subprocess.Popen([os.path.join(ROOT, "scripts", "llmops"), "tune", task, "-o", out,
                             "--port-range", PORTS, "--no-default", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def journal(out):
    path = os.path.join(out, "journal.jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(line)["trial"] for line in open(path) if '"kind": "trial"' in line]


def test_crash_and_timeout_are_infeasible_and_the_sweep_finishes(home, tmp_path):
    # 2000 sequential requests cannot finish in 60 s even if the server is ready in time.
    task = write_task(tmp_path / "t.json", "it-fail", timeout=60, requests=2000, concurrency=1)
    out = str(tmp_path / "out")
    proc = tune(home, task, out)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, output  # 1: finished, but no feasible trial
    results = json.load(open(os.path.join(out, "sweep.json")))
    crash, slow = results["trials"]
    assert crash["params"] == {"dtype": "float7"} and crash["status"] == "infeasible"
    assert crash["failure"]["kind"] == "startup_crash", crash["failure"]
    assert "float7" in crash["failure"]["log_tail"]  # argparse names the bad value
    assert crash["timings"]["total_s"] < 60, "a crash must be noticed when the process dies"
    assert slow["status"] == "infeasible" and slow["failure"]["kind"] in ("readiness_timeout", "timeout")
    assert slow["timings"]["total_s"] < 60 + 30
    for name in ("report.html", "trials.csv", "best.yml"):
        assert os.path.exists(os.path.join(out, name))
    assert not os.path.exists(os.path.join(home["LLMOPS_HOME"], "run", "tune-it-fail-t001", "supervisor.pid"))


def test_kill_mid_sweep_then_resume_repeats_nothing(home, tmp_path):
    task = write_task(tmp_path / "t.json", "it-resume", timeout=600, requests=32, concurrency=4)
    out = str(tmp_path / "out")
    run_dir = os.path.join(home["LLMOPS_HOME"], "run", "tune-it-resume-t001")
    proc = tune(home, task, out, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # t000 (bad flag) finished and t001's server is starting
        if [t["id"] for t in journal(out)] == ["t000"] and os.path.exists(os.path.join(run_dir, "supervisor.pid")):
            break
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the sweep never reached trial t001")
    orphan = int(open(os.path.join(run_dir, "supervisor.pid")).read())
    os.killpg(proc.pid, signal.SIGKILL)  # the tuner dies; its detached trial server does not
    proc.wait()
    assert os.path.exists(f"/proc/{orphan}")

    proc = tune(home, task, out)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output
    assert "resuming: 1 finished trial(s)" in output
    assert "stopped leftovers of an earlier run of this task: tune-it-resume-t001" in output
    assert "trial t000" not in output.split("resuming")[1], "the finished trial ran again"
    ids = [t["id"] for t in journal(out)]
    assert ids == ["t000", "t001"]
    results = json.load(open(os.path.join(out, "sweep.json")))
    assert results["best"]["params"] == {"dtype": "bfloat16"} and results["best"]["value"] > 0
    assert results["new_trials"] == 1
    assert not os.path.exists(f"/proc/{orphan}") or open(f"/proc/{orphan}/stat").read().split()[2] == "Z"
