"""Model sources: the three schemes end in the same directory check."""
import json
import os

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.model_source import (
    ModelSourceError,
    find_in_hf_cache,
    resolve,
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    cache = tmp_path_factory.mktemp("models")
    first = resolve("generated:tiny-llama", str(cache))
    return cache, first


def test_generated_writes_a_real_hf_model(generated):
    cache, first = generated
    assert first["changed"] is True
    path = first["path"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(path, name))
    config = json.load(open(os.path.join(path, "config.json")))
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vLLM CPU rejects head_dim 16
    tok_config = json.load(open(os.path.join(path, "tokenizer_config.json")))
    assert "add_generation_prompt" in tok_config["chat_template"]
    assert tok_config["eos_token"] == "</s>"


def test_generated_is_idempotent(generated):
    cache, first = generated
    again = resolve("generated:tiny-llama", str(cache))
    assert again == {**first, "changed": False}


def test_tokenizer_roundtrip(generated):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(generated[1]["path"], "tokenizer.json"))
    text = "Serving models with vLLM on a CPU."
    ids = tok.encode(text).ids
    assert ids[0] == tok.token_to_id("<s>")
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_weights_shapes(generated):
    from safetensors.numpy import load_file

    tensors = load_file(os.path.join(generated[1]["path"], "model.safetensors"))
    assert tensors["model.layers.0.self_attn.k_proj.weight"].shape == (64, 128)
    assert tensors["lm_head.weight"].shape == (2048, 128)


def test_path_source_checks_files(tmp_path, generated):
    assert resolve(f"path:{generated[1]['path']}", str(tmp_path))["changed"] is False
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match="missing weights"):
        resolve(f"path:{tmp_path / 'half'}", str(tmp_path))
    with pytest.raises(ModelSourceError, match="not a directory"):
        resolve(f"path:{tmp_path / 'nope'}", str(tmp_path))


def test_hf_source_found_in_cache(tmp_path, generated):
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / ("a" * 40)
    snap.parent.mkdir(parents=True)
    os.symlink(generated[1]["path"], snap)
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("a" * 40)
    assert find_in_hf_cache("org/tiny", "main", str(tmp_path / "hub")) == str(snap)
    result = resolve("hf:org/tiny", str(tmp_path), hf_hub_cache=str(tmp_path / "hub"), offline=True)
    assert result["path"] == str(snap) and result["changed"] is False


def test_hf_source_missing_offline_fails_clearly(tmp_path):
    with pytest.raises(ModelSourceError) as err:
        resolve("hf:org/absent", str(tmp_path), hf_hub_cache=str(tmp_path / "hub"), offline=True)
    assert "hf:org/absent@main is not in the HF cache" in str(err.value)
    assert "path:" in str(err.value)
