"""Errors the tuner raises for bad input: each names the field and says how to fix it."""
from __future__ import annotations


class TaskError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
