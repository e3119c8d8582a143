"""Start, stop and wait for supervised local processes (the `local` target's runtime).

Used by the `llm_process` module (vllm, router, mlflow roles) and by the tuner's local
runtime, so a trial starts vLLM exactly the way the role does. Each process has a
directory `<state_dir>/<name>/` with spec.json, status.json and supervisor.pid, and a
log file. Only processes found in those directories are ever stopped.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils import process_supervisor
from ansible_collections.llmops.platform.plugins.module_utils.files import write_if_changed

SUPERVISOR_NAME = "llmops-supervisor.py"


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    state_dir: str
    log_dir: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    ready_url: str | None = None
    start_retries: int = 0
    stop_timeout_s: float = 20.0
    python: str = sys.executable
    # The port the process will listen on: checked free before start, so a readiness probe
    # can never be answered by some other server that holds it.
    port: int | None = None

    @property
    def dir(self) -> str:
        return os.path.join(self.state_dir, self.name)

    @property
    def log_file(self) -> str:
        return os.path.join(self.log_dir, f"{self.name}.log")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.dir, "supervisor.pid")

    @property
    def status_file(self) -> str:
        return os.path.join(self.dir, "status.json")

    def spec_hash(self) -> str:
        """What makes two runs the same process: a change here means restart."""
        identity = {"argv": self.argv, "env": self.env, "cwd": self.cwd, "ready_url": self.ready_url}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _pid_alive(pid: int, marker: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return marker.encode() in handle.read()
    except OSError:
        return False


def supervisor_pid(spec: ProcessSpec) -> int | None:
    """PID of this process's supervisor if it is alive (and really ours), else None."""
    try:
        with open(spec.pid_file, encoding="utf-8") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid, SUPERVISOR_NAME) else None


def read_status(spec: ProcessSpec) -> dict[str, Any]:
    try:
        with open(spec.status_file, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def log_tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def install_supervisor(state_dir: str) -> str:
    """Copy the supervisor script to the host; rewrite only when its content changed."""
    path = os.path.join(state_dir, "bin", SUPERVISOR_NAME)
    write_if_changed(path, inspect.getsource(process_supervisor))
    return path


def is_current(spec: ProcessSpec) -> bool:
    """True when the supervisor runs this exact spec and has not given up."""
    if supervisor_pid(spec) is None:
        return False
    status = read_status(spec)
    return status.get("spec_hash") == spec.spec_hash() and status.get("state") != "fatal"


def start(spec: ProcessSpec) -> bool:
    """Ensure the process runs with this spec. Returns True when something was (re)started."""
    if is_current(spec):
        return False
    stop(spec)
    if spec.port is not None:
        ensure_port_free(spec.port, spec.name)
    os.makedirs(spec.dir, exist_ok=True)
    os.makedirs(spec.log_dir, exist_ok=True)
    script = install_supervisor(spec.state_dir)
    payload = {
        "name": spec.name,
        "argv": spec.argv,
        "env": spec.env,
        "cwd": spec.cwd,
        "ready_url": spec.ready_url,
        "start_retries": spec.start_retries,
        "stop_timeout_s": spec.stop_timeout_s,
        "log_file": spec.log_file,
        "status_file": spec.status_file,
        "pid_file": spec.pid_file,
        "spec_hash": spec.spec_hash(),
    }
    spec_file = os.path.join(spec.dir, "spec.json")
    with open(spec_file, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    for stale in (spec.status_file, spec.pid_file):
        if os.path.exists(stale):
            os.unlink(stale)
    # Detached: its own session, no inherited pipes, so Ansible's module run can return.
    subprocess.Popen(
        [spec.python, script, spec_file],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(spec.dir, "supervisor.err"), "ab"),
        start_new_session=True,
        close_fds=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if supervisor_pid(spec) is not None and read_status(spec):
            return True
        time.sleep(0.05)
    raise RuntimeError(f"{spec.name}: the supervisor did not come up; see {os.path.join(spec.dir, 'supervisor.err')}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def ensure_port_free(port: int, name: str, wait_s: float = 3.0) -> None:
    # A process we just stopped may need a moment to release its socket.
    deadline = time.monotonic() + wait_s
    while port_in_use(port):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"port {port} is already in use by another process, so {name} cannot listen there; "
                "stop that process or give this model another port (llm_models[].port)"
            )
        time.sleep(0.2)


def _kill_group(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(spec: ProcessSpec, timeout_s: float | None = None) -> bool:
    """Stop the supervisor and its child. Returns True when something was running."""
    pid = supervisor_pid(spec)
    child = read_status(spec).get("child_pid")
    if pid is None and not (child and os.path.exists(f"/proc/{child}")):
        return False
    timeout = (spec.stop_timeout_s + 10) if timeout_s is None else timeout_s
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and supervisor_pid(spec) is not None:
            time.sleep(0.1)
        if supervisor_pid(spec) is not None:
            os.kill(pid, signal.SIGKILL)
    # Belt and braces: the child has its own process group; never leave it behind.
    _kill_group(child, signal.SIGKILL)
    if os.path.exists(spec.pid_file):
        os.unlink(spec.pid_file)
    return True


def _urls_ok(urls: list[str]) -> bool:
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 (local endpoints)
                if not 200 <= response.status < 300:
                    return False
        except Exception:
            return False
    return True


def wait_ready(spec: ProcessSpec, urls: list[str], timeout_s: float) -> tuple[bool, str]:
    """Wait until every URL answers 2xx; fail fast when the supervisor gave up or died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = read_status(spec)
        if status.get("state") == "fatal":
            return False, (f"{spec.name} exited before it became ready "
                           f"(exit code {status.get('last_exit_code')}, {status.get('start_failures')} start(s))")
        if supervisor_pid(spec) is None:
            return False, f"{spec.name}: its supervisor is not running (state {status.get('state', 'unknown')})"
        if status.get("ready") and _urls_ok(urls):
            return True, "ready"
        time.sleep(0.5)
    return False, f"{spec.name} was not ready within {timeout_s:.0f}s"


def list_managed(state_dir: str) -> list[str]:
    """Names of processes this tool manages under state_dir (dirs holding a spec.json)."""
    try:
        entries = sorted(os.listdir(state_dir))
    except OSError:
        return []
    return [e for e in entries if os.path.isfile(os.path.join(state_dir, e, "spec.json"))]
