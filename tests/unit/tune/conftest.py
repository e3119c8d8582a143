"""Fixtures for tuner unit tests (the fakes live in tune_fakes.py)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from tune_fakes import surface, sweep_mod  # noqa: E402


@pytest.fixture
def install_measure(monkeypatch):
    """Replace the benchmark with `surface` of the running trial's args."""
    def install(runtime, table=surface):
        def measure(task, base_url, served, deadline, request_timeout_s=60.0):
            return [table(runtime.current)], 0.1, 1.0
        monkeypatch.setattr(sweep_mod, "measure", measure)
    return install
