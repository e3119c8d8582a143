"""The built-in supervisor: start, idempotence, crash restart, fast fatal, clean stop."""
import os
import signal
import socket
import sys
import time

import pytest

from ansible_collections.llmops.platform.plugins.module_utils import local_process as lp

SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_spec(tmp_path):
    specs = []

    def _make(argv, name="proc", **kw):
        spec = lp.ProcessSpec(name=name, argv=argv, state_dir=str(tmp_path / "run"), log_dir=str(tmp_path / "logs"), **kw)
        specs.append(spec)
        return spec

    yield _make
    for spec in specs:  # never leave a process behind, even when a test fails
        lp.stop(spec, timeout_s=5)


def server_spec(make_spec, listen_port, **kw):
    return make_spec([sys.executable, "-c", SERVER, str(listen_port)],
                     ready_url=f"http://127.0.0.1:{listen_port}/health", **kw)


def test_start_ready_idempotent_stop(make_spec):
    port = free_port()
    spec = server_spec(make_spec, port)
    assert lp.start(spec) is True
    ok, reason = lp.wait_ready(spec, [f"http://127.0.0.1:{port}/health"], 20)
    assert ok, reason
    assert lp.start(spec) is False  # same spec: nothing to do
    assert lp.list_managed(spec.state_dir) == ["proc"]
    child = lp.read_status(spec)["child_pid"]
    assert lp.stop(spec) is True
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"
    assert lp.stop(spec) is False


def test_changed_spec_restarts(make_spec):
    port = free_port()
    spec = server_spec(make_spec, port)
    lp.start(spec)
    assert lp.wait_ready(spec, [], 20)[0]
    first = lp.supervisor_pid(spec)
    changed = server_spec(make_spec, port, env={"X": "1"})
    assert lp.start(changed) is True
    assert lp.supervisor_pid(changed) != first
    assert lp.wait_ready(changed, [], 20)[0]


def test_crash_after_ready_is_restarted(make_spec):
    port = free_port()
    spec = server_spec(make_spec, port)
    lp.start(spec)
    assert lp.wait_ready(spec, [], 20)[0]
    child = lp.read_status(spec)["child_pid"]
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = lp.read_status(spec)
        if status.get("restarts") == 1 and status.get("ready"):
            break
        time.sleep(0.2)
    status = lp.read_status(spec)
    assert status["restarts"] == 1 and status["ready"] and status["child_pid"] != child


def test_exit_before_ready_fails_fast_with_log(make_spec):
    spec = make_spec([sys.executable, "-c", "import sys; print('error: unrecognized arguments: --bogus'); sys.exit(2)"],
                     ready_url="http://127.0.0.1:9/health")
    lp.start(spec)
    started = time.monotonic()
    ok, reason = lp.wait_ready(spec, [], 60)
    assert not ok and "exited before it became ready" in reason and "exit code 2" in reason
    assert time.monotonic() - started < 30  # vs the 60 s timeout; generous for loaded CI machines
    assert "unrecognized arguments" in lp.log_tail(spec.log_file)
    deadline = time.monotonic() + 20
    while lp.supervisor_pid(spec) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lp.supervisor_pid(spec) is None  # fatal: the supervisor gave up and exited


def test_not_ready_in_time(make_spec):
    spec = make_spec([sys.executable, "-c", "import time; time.sleep(60)"], ready_url="http://127.0.0.1:9/health")
    lp.start(spec)
    ok, reason = lp.wait_ready(spec, [], 2)
    assert not ok and "not ready within" in reason
    child = lp.read_status(spec)["child_pid"]
    assert lp.stop(spec) is True
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_port_held_by_another_process_is_refused(make_spec):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = server_spec(make_spec, port, port=port)
        with pytest.raises(RuntimeError, match=f"port {port} is already in use"):
            lp.start(spec)
        assert lp.supervisor_pid(spec) is None
