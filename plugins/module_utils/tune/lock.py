"""One sweep per output directory at a time.

Two runs on one directory would share a journal, and the second would "stop the leftovers"
of the first while its trial server is still being measured. `RunLock` holds an exclusive
flock(2) on `<output_dir>/run.lock` for the whole run; the file also holds the holder's pid,
host and start time as JSON, so a refusal can name the run that holds it.

The kernel drops a flock when its process dies, so a killed run never blocks the next one;
the JSON it left behind (its pid no longer alive) is reported as a takeover. A lock file
naming a live process whose flock is not held (a copy of the directory, another host's NFS
client) is refused too: the pid is checked as well as the flock.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import datetime, timezone
from typing import Any, Optional

LOCK_FILE = "run.lock"
_HELD: dict[str, "RunLock"] = {}  # realpath -> lock held by this process (re-entrant use)


class LockHeld(RuntimeError):
    """Another live run holds the output directory."""

    def __init__(self, path: str, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        pid = holder.get("pid", "?")
        started = holder.get("started", "an unknown time")
        host = holder.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        super().__init__(
            f"another sweep is running on this output directory: pid {pid}{where}, started {started} "
            f"({path}). Wait for it to finish, stop it (kill {pid}), or use another output directory.")


def proc_start(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with the
    pid it names one process, so a recycled pid is not mistaken for the run that wrote the lock."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def pid_alive(pid: Any, start: Optional[str] = None) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    now = proc_start(pid)
    if now is None:  # zombie, or no /proc: trust kill(0) unless it is a zombie
        return not os.path.exists(f"/proc/{pid}")
    return start is None or now == start


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        raw += chunk
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except ValueError:
        return {"unreadable": raw[:200].decode("utf-8", "replace")}
    return data if isinstance(data, dict) else {}


class RunLock:
    """`with RunLock(dir) as lock:`; `lock.taken_over` is the stale holder's record, or None."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self.fd: Optional[int] = None
        self.taken_over: Optional[dict[str, Any]] = None
        self.info: dict[str, Any] = {}
        self._depth = 0
        self._outer: Optional[RunLock] = None

    def acquire(self) -> "RunLock":
        os.makedirs(self.directory, exist_ok=True)
        key = os.path.realpath(self.path)
        outer = _HELD.get(key)
        if outer is not None:  # the same process already runs this directory (api.tune -> run_sweep)
            outer._depth += 1
            self._outer = outer
            self.taken_over, self.info = outer.taken_over, outer.info
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(self.path, _read(fd)) from None
            previous = _read(fd)
            if previous.get("pid") is not None and previous.get("pid") != os.getpid():
                same_host = previous.get("host", socket.gethostname()) == socket.gethostname()
                if same_host and pid_alive(previous["pid"], previous.get("proc_start")):
                    # Alive but without the flock: not ours to take (e.g. a lock file written by hand
                    # or by a process whose flock went elsewhere). Refuse rather than race it.
                    raise LockHeld(self.path, previous)
                self.taken_over = previous
            self.info = {"pid": os.getpid(), "host": socket.gethostname(), "proc_start": proc_start(os.getpid()),
                         "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(self.info, sort_keys=True) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self._depth = 1
        _HELD[key] = self
        return self

    def release(self) -> None:
        if self._outer is not None:
            self._outer._depth -= 1
            self._outer = None
            return
        if self.fd is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        _HELD.pop(os.path.realpath(self.path), None)
        try:
            os.ftruncate(self.fd, 0)  # an empty file: the next run starts without a takeover note
        finally:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    @property
    def nested(self) -> bool:
        """True when this process already held the lock (the outer holder reports)."""
        return self._outer is not None

    def describe_takeover(self) -> Optional[str]:
        if not self.taken_over:
            return None
        old = self.taken_over
        if "unreadable" in old:
            return f"took over a stale run lock ({self.path}, unreadable contents)"
        return (f"took over a stale run lock: pid {old.get('pid')} (started {old.get('started', '?')}) "
                "is no longer running")

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
