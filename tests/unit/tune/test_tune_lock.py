"""Run lock per output directory: one sweep at a time, a dead run's lock taken over."""
import json
import os
import subprocess
import sys

import pytest
from tune_fakes import FakeRuntime

from ansible_collections.llmops.platform.plugins.module_utils.tune.lock import LOCK_FILE, LockHeld, RunLock
from ansible_collections.llmops.platform.plugins.module_utils.tune.sweep import SweepOptions, run_sweep
from ansible_collections.llmops.platform.plugins.module_utils.tune.task import parse_task

TASK = {
    "task_name": "unit-lock",
    "model": {"name": "m", "source": "generated:tiny-llama"},
    "parameters": {"max_num_seqs": [8, 16]},
    "optimization": {"strategy": "grid", "objective": "maximize_throughput", "timeout_per_iteration": 30},
}
HOLDER = r"""
import sys, time
from ansible_collections.llmops.platform.plugins.module_utils.tune.lock import RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def other_run(tmp_path):
    """A second process holding the lock on tmp_path/out, as a running sweep would."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "out")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=30)


def test_a_live_run_is_refused_naming_its_pid_and_start(tmp_path, other_run, install_measure):
    rt = FakeRuntime()
    install_measure(rt)
    opts = SweepOptions(output_dir=str(tmp_path / "out"), runtime=rt)
    with pytest.raises(LockHeld) as err:
        run_sweep(parse_task(TASK), opts)
    holder = json.load(open(tmp_path / "out" / LOCK_FILE))
    assert err.value.holder["pid"] == other_run.pid == holder["pid"]
    assert f"pid {other_run.pid}" in str(err.value) and holder["started"] in str(err.value)
    # Refused before touching anything: no leftovers stopped, no journal, no server.
    assert rt.prepared == 0 and rt.started == []
    assert not os.path.exists(tmp_path / "out" / "journal.jsonl")


def test_the_lock_is_free_again_when_the_other_run_ends(tmp_path, other_run, install_measure):
    other_run.stdin.close()
    other_run.wait(timeout=30)
    rt = FakeRuntime()
    install_measure(rt)
    lines = []
    res = run_sweep(parse_task(TASK), SweepOptions(output_dir=str(tmp_path / "out"), runtime=rt, log=lines.append))
    assert res["run_lock"]["taken_over"] is None and not any("took over" in line for line in lines)
    assert open(tmp_path / "out" / LOCK_FILE).read() == ""  # released on the way out


def test_a_dead_runs_lock_is_taken_over_and_said(tmp_path, install_measure):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    os.makedirs(tmp_path / "out")
    (tmp_path / "out" / LOCK_FILE).write_text(json.dumps({"pid": pid, "started": "2020-01-02T03:04:05+00:00"}))
    rt = FakeRuntime()
    install_measure(rt)
    lines = []
    res = run_sweep(parse_task(TASK), SweepOptions(output_dir=str(tmp_path / "out"), runtime=rt, log=lines.append))
    assert res["run_lock"]["taken_over"]["pid"] == pid
    assert f"took over a stale run lock: pid {pid} (started 2020-01-02T03:04:05+00:00)" in lines[0]
    assert res["run_lock"]["note"] == lines[0] and len(res["trials"]) == 2


def test_a_recycled_pid_does_not_hold_the_lock(tmp_path):
    # Our own parent is alive, but its start time differs from the one recorded: a recycled pid.
    os.makedirs(tmp_path / "out")
    (tmp_path / "out" / LOCK_FILE).write_text(json.dumps({"pid": os.getppid(), "proc_start": "1",
                                                          "started": "earlier"}))
    with RunLock(str(tmp_path / "out")) as lock:
        assert lock.taken_over["pid"] == os.getppid()


def test_nested_use_in_one_process_is_one_lock(tmp_path):
    with RunLock(str(tmp_path)) as outer:
        with RunLock(str(tmp_path)) as inner:
            assert inner.nested and inner.info == outer.info
        assert json.load(open(tmp_path / LOCK_FILE))["pid"] == os.getpid()  # still held
    with RunLock(str(tmp_path)) as again:
        assert again.taken_over is None
