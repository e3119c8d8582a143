"""A small process supervisor for hosts where systemd is not PID 1 (containers, CI).

Stdlib only: the `llm_process` module copies this file to the host and starts it
detached as `python3 llmops-supervisor.py SPEC.json`. It runs one child, appends its
output to a log file, restarts it when it crashes, and keeps `status.json` current so
the readiness check can tell "still loading" from "dead" within a second.

Start semantics follow supervisord: an exit before the child first answered
`ready_url` is a start failure; after `start_retries` of them the state is `fatal` and
the supervisor exits (a bad flag must fail the play, not loop forever). After the child
was ready once, crashes are restarted with exponential backoff.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

POLL_S = 0.5
STABLE_AFTER_S = 60.0  # a child up this long resets the backoff


def _write_json(path: str, payload: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, sort_keys=True)
    os.replace(tmp, path)


def _url_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 (loopback health URL)
            return 200 <= response.status < 300
    except Exception:
        return False


class Supervisor:
    def __init__(self, spec: dict):
        self.spec = spec
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.status = {
            "name": spec["name"],
            "supervisor_pid": os.getpid(),
            "child_pid": None,
            "state": "starting",
            "ready": False,
            "ever_ready": False,
            "start_failures": 0,
            "restarts": 0,
            "last_exit_code": None,
            "started_at": time.time(),
            "spec_hash": spec.get("spec_hash"),
        }

    def save(self, **changes) -> None:
        self.status.update(changes, updated_at=time.time())
        _write_json(self.spec["status_file"], self.status)

    def start_child(self) -> None:
        env = dict(os.environ)
        env.update(self.spec.get("env") or {})
        log = open(self.spec["log_file"], "ab", buffering=0)
        log.write(f"\n=== llmops-supervisor: starting {self.spec['name']} at {time.ctime()} ===\n".encode())
        self.child = subprocess.Popen(
            self.spec["argv"],
            cwd=self.spec.get("cwd") or None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop kills workers it forked too
        )
        log.close()
        self.child_started = time.monotonic()
        state = "running" if self.status["ever_ready"] else "starting"
        self.save(child_pid=self.child.pid, state=state, ready=False)

    def stop_child(self) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        timeout = float(self.spec.get("stop_timeout_s", 20))
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.child.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.child.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def on_signal(self, _signum, _frame) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        retries = int(self.spec.get("start_retries", 0))
        backoff_max = float(self.spec.get("backoff_max_s", 30))
        ready_url = self.spec.get("ready_url")
        backoff = 1.0
        self.start_child()
        next_probe = 0.0
        while not self.stopping:
            time.sleep(POLL_S)
            code = self.child.poll()
            if code is None:
                now = time.monotonic()
                if not self.status["ready"] and now >= next_probe:
                    next_probe = now + 1.0
                    if ready_url is None or _url_ok(ready_url):
                        self.save(ready=True, ever_ready=True, state="running")
                if now - self.child_started > STABLE_AFTER_S:
                    backoff = 1.0
                continue
            if self.stopping:
                break
            if not self.status["ever_ready"]:
                failures = self.status["start_failures"] + 1
                self.save(start_failures=failures, last_exit_code=code, ready=False, child_pid=None)
                if failures > retries:
                    self.save(state="fatal")
                    return 1
            else:
                self.save(restarts=self.status["restarts"] + 1, last_exit_code=code, ready=False,
                          state="backoff", child_pid=None)
            deadline = time.monotonic() + backoff
            while time.monotonic() < deadline and not self.stopping:
                time.sleep(0.1)
            backoff = min(backoff * 2, backoff_max)
            if not self.stopping:
                self.start_child()
        self.stop_child()
        self.save(state="stopped", ready=False, child_pid=None)
        return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: llmops-supervisor.py SPEC.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    with open(spec["pid_file"], "w", encoding="utf-8") as handle:
        handle.write(str(os.getpid()))
    try:
        return Supervisor(spec).run()
    finally:
        try:
            os.unlink(spec["pid_file"])
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
