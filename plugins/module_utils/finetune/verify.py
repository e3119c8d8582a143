"""The verify gate between merge and serve: is this merged model safe to hand to vLLM?

Static checks (files, JSON, safetensors headers, special tokens compared with the base)
run anywhere; the generation probe runs a script in the fine-tuning venv and reports
whether a short greedy generation ends with eos. Each failed check is one reason.
"""
from __future__ import annotations

import glob
import json
import os
import struct
import subprocess
from typing import Any

TOKENIZER_FILES = ("tokenizer_config.json",)
TOKENIZER_ANY = ("tokenizer.json", "tokenizer.model")


def _json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _safetensors_ok(path: str) -> bool:
    """A readable header that parses is what every loader reads first."""
    try:
        with open(path, "rb") as handle:
            size = struct.unpack("<Q", handle.read(8))[0]
            # A corrupt length must not become a huge read: the header lies inside the file.
            if size > os.path.getsize(path) - 8:
                return False
            header = json.loads(handle.read(size))
        return isinstance(header, dict) and any(k != "__metadata__" for k in header)
    except (OSError, ValueError, struct.error):
        return False


def _token(cfg: dict[str, Any] | None, key: str) -> str | None:
    value = (cfg or {}).get(key)
    return value.get("content") if isinstance(value, dict) else value


def special_tokens(model_dir: str) -> dict[str, Any]:
    """eos/pad as strings (tokenizer) and ids (config/generation config)."""
    tok = _json(os.path.join(model_dir, "tokenizer_config.json"))
    special = _json(os.path.join(model_dir, "special_tokens_map.json"))
    gen = _json(os.path.join(model_dir, "generation_config.json")) or {}
    cfg = _json(os.path.join(model_dir, "config.json")) or {}
    out = {}
    for key in ("eos_token", "pad_token"):
        out[key] = _token(tok, key) or _token(special, key)
    eos_id = gen.get("eos_token_id", cfg.get("eos_token_id"))
    out["eos_token_id"] = sorted(eos_id) if isinstance(eos_id, list) else eos_id
    return out


def static_checks(merged: str, base: str) -> list[str]:
    reasons: list[str] = []
    if not os.path.isdir(merged):
        return [f"{merged} does not exist"]
    if _json(os.path.join(merged, "config.json")) is None:
        reasons.append("config.json missing or not valid JSON")
    weights = sorted(glob.glob(os.path.join(merged, "*.safetensors")))
    if not weights and not glob.glob(os.path.join(merged, "*.bin")):
        reasons.append("no weights (*.safetensors or *.bin)")
    reasons += [f"weights file {os.path.basename(w)} is unreadable" for w in weights if not _safetensors_ok(w)]
    for name in TOKENIZER_FILES:
        if _json(os.path.join(merged, name)) is None:
            reasons.append(f"tokenizer file {name} missing or invalid")
    if not any(os.path.isfile(os.path.join(merged, n)) for n in TOKENIZER_ANY):
        reasons.append("tokenizer file tokenizer.json (or tokenizer.model) missing")
    tok = _json(os.path.join(merged, "tokenizer_config.json")) or {}
    if not tok.get("chat_template") and not os.path.isfile(os.path.join(merged, "chat_template.jinja")):
        reasons.append("no chat template (tokenizer_config.chat_template or chat_template.jinja)")
    mine, theirs = special_tokens(merged), special_tokens(base)
    for key, value in theirs.items():
        if mine.get(key) != value:
            reasons.append(f"{key} is {mine.get(key)!r}, base model has {value!r}")
    return reasons


def generation_probe(python: str, script: str, merged: str, prompt: str, max_new_tokens: int,
                     timeout: int = 300) -> dict[str, Any]:
    """Run the probe in the venv that has torch; it prints one JSON object."""
    try:
        proc = subprocess.run([python, script, merged, prompt, str(max_new_tokens)], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"loaded": False, "stopped": False, "error": str(exc)}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"loaded": False, "stopped": False, "error": (proc.stderr or proc.stdout)[-1500:]}
    return json.loads(lines[-1])


def verify(merged: str, base: str, probe: dict[str, Any] | None) -> dict[str, Any]:
    reasons = static_checks(merged, base)
    if probe is not None:
        if not probe.get("loaded"):
            reasons.append(f"model/tokenizer did not load: {probe.get('error', '')}".strip())
        elif not probe.get("stopped"):
            reasons.append(f"a {probe.get('new_tokens')}-token generation did not stop at eos")
    return {"passed": not reasons, "reasons": reasons, "probe": probe or {},
            "special_tokens": special_tokens(merged) if os.path.isdir(merged) else {}}
