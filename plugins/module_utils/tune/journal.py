"""Append-only JSONL journal: one line per finished trial, fsynced, so a killed sweep
resumes with every finished trial kept and none repeated.

The first line records the task's fingerprint; resuming a different task into the same
directory is refused (the results would mix two experiments).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

JOURNAL_FILE = "journal.jsonl"


def task_fingerprint(raw_task: dict[str, Any], extra: Optional[dict[str, Any]] = None) -> str:
    data = {"task": raw_task, "extra": extra or {}}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class JournalMismatch(RuntimeError):
    pass


class Journal:
    def __init__(self, directory: str, fingerprint: str) -> None:
        self.path = os.path.join(directory, JOURNAL_FILE)
        self.fingerprint = fingerprint
        os.makedirs(directory, exist_ok=True)

    def load(self) -> list[dict[str, Any]]:
        """Finished trials from an earlier run, in order. A torn last line (kill during write)
        is dropped: that trial is simply run again."""
        if not os.path.exists(self.path):
            return []
        trials: list[dict[str, Any]] = []
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if number == 0:
                    if entry.get("kind") != "header" or entry.get("fingerprint") != self.fingerprint:
                        raise JournalMismatch(
                            f"{self.path} belongs to a different task or settings (fingerprint "
                            f"{entry.get('fingerprint')} != {self.fingerprint}); use another output "
                            "directory, or restart to discard it")
                    continue
                if entry.get("kind") == "trial":
                    trials.append(entry["trial"])
        return trials

    def start(self, restart: bool = False) -> list[dict[str, Any]]:
        if restart and os.path.exists(self.path):
            os.unlink(self.path)
        done = self.load()
        if not os.path.exists(self.path):
            self._append({"kind": "header", "fingerprint": self.fingerprint})
        return done

    def record(self, trial: dict[str, Any]) -> None:
        self._append({"kind": "trial", "trial": trial})

    def _append(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True, allow_nan=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
