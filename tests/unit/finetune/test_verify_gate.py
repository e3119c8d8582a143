"""The verify gate on good and broken model directories (the tiny generated model)."""
from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from ansible_collections.llmops.platform.plugins.module_utils import tiny_llama
from ansible_collections.llmops.platform.plugins.module_utils.finetune import verify as gate


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("base"))
    tiny_llama.write_tiny_llama(path, seed=0)
    return path


@pytest.fixture
def merged(base, tmp_path):
    path = str(tmp_path / "merged")
    shutil.copytree(base, path)
    return path


def _edit(path, name, **changes):
    file = os.path.join(path, name)
    data = json.load(open(file))
    data.update(changes)
    json.dump(data, open(file, "w"))


def test_good_model_passes(base, merged):
    assert gate.static_checks(merged, base) == []
    assert gate.verify(merged, base, {"loaded": True, "stopped": True, "new_tokens": 5})["passed"]


def test_deleted_tokenizer_file_is_stopped(base, merged):
    os.remove(os.path.join(merged, "tokenizer.json"))
    reasons = gate.static_checks(merged, base)
    assert any("tokenizer.json" in r for r in reasons)


def test_changed_eos_token_is_stopped(base, merged):
    _edit(merged, "tokenizer_config.json", eos_token="<unk>")
    _edit(merged, "special_tokens_map.json", eos_token="<unk>")
    assert any(r.startswith("eos_token ") for r in gate.static_checks(merged, base))


def test_changed_eos_id_is_stopped(base, merged):
    _edit(merged, "generation_config.json", eos_token_id=0)
    assert any(r.startswith("eos_token_id") for r in gate.static_checks(merged, base))


def test_missing_chat_template_weights_and_corrupt_weights(base, merged):
    cfg = json.load(open(os.path.join(merged, "tokenizer_config.json")))
    cfg.pop("chat_template", None)
    json.dump(cfg, open(os.path.join(merged, "tokenizer_config.json"), "w"))
    if os.path.exists(os.path.join(merged, "chat_template.jinja")):
        os.remove(os.path.join(merged, "chat_template.jinja"))
    weights = [f for f in os.listdir(merged) if f.endswith(".safetensors")]
    with open(os.path.join(merged, weights[0]), "wb") as handle:
        handle.write(b"\xff" * 16)
    reasons = gate.static_checks(merged, base)
    assert any("chat template" in r for r in reasons)
    assert any("unreadable" in r for r in reasons)
    for name in weights:
        os.remove(os.path.join(merged, name))
    assert any("no weights" in r for r in gate.static_checks(merged, base))


def test_generation_that_never_stops_fails(base, merged):
    result = gate.verify(merged, base, {"loaded": True, "stopped": False, "new_tokens": 48})
    assert not result["passed"] and "did not stop at eos" in result["reasons"][0]
    assert not gate.verify(merged, base, {"loaded": False, "error": "boom"})["passed"]


def test_probe_runner_reports_a_crashing_or_silent_probe(tmp_path, merged):
    crash = tmp_path / "crash.py"
    crash.write_text("import sys; sys.exit('no torch here')")
    assert gate.generation_probe(sys.executable, str(crash), merged, "hi", 4)["loaded"] is False
    good = tmp_path / "good.py"
    good.write_text("import json; print('noise'); print(json.dumps({'loaded': True, 'stopped': True}))")
    assert gate.generation_probe(sys.executable, str(good), merged, "hi", 4)["stopped"] is True
