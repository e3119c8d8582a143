"""Write a file only when its content differs (the fine-tuning modules' idempotence)."""
from __future__ import annotations

import json
import os
from typing import Any


def write_if_changed(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return True


def write_json(path: str, data: Any) -> bool:
    return write_if_changed(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
