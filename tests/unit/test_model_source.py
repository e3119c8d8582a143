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


def _adapter(path, **config):
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, **config}))
    (path / "adapter_model.safetensors").write_bytes(b"x")
    return path


def test_adapter_path_source_returns_its_rank(tmp_path):
    from ansible_collections.llmops.platform.plugins.module_utils.model_source import resolve_adapter

    ft = _adapter(tmp_path / "ft", rank_pattern={"q_proj": 32}, base_model_name_or_path="org/base")
    result = resolve_adapter(f"path:{ft}")
    assert result == {"path": str(ft), "changed": False, "scheme": "path", "rank": 32, "base_model": "org/base",
                      "files": ["adapter_config.json", "adapter_model.safetensors"]}


@pytest.mark.parametrize("make, words", [
    (lambda p: None, "is not a directory"),
    (lambda p: p.mkdir(), "has no adapter_config.json; point it at the directory"),
    (lambda p: (p.mkdir(), (p / "config.json").write_text("{}")), "a full model, serve it as an llm_models entry"),
    (lambda p: (p.mkdir(), (p / "adapter_config.json").write_text("[]")), "not a LoRA adapter config"),
    (lambda p: (p.mkdir(), (p / "adapter_config.json").write_text('{"peft_type": "LORA"}')), "no LoRA rank"),
    (lambda p: (p.mkdir(), (p / "adapter_config.json").write_text('{"peft_type": "IA3", "r": 8}')), "LoRA adapters only"),
    (lambda p: (p.mkdir(), (p / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')),
     "missing adapter_model.safetensors"),
])
def test_bad_adapter_directories_fail_naming_the_field(tmp_path, make, words):
    from ansible_collections.llmops.platform.plugins.module_utils.model_source import resolve_adapter

    make(tmp_path / "ad")
    with pytest.raises(ModelSourceError) as err:
        resolve_adapter(f"path:{tmp_path / 'ad'}", field="llm_models[chat].adapters[0].source")
    assert str(err.value).startswith("llm_models[chat].adapters[0].source: ")
    assert words in str(err.value)


def test_adapter_hf_source_from_the_cache_and_generated_refused(tmp_path):
    from ansible_collections.llmops.platform.plugins.module_utils.model_source import resolve_adapter

    snap = _adapter(tmp_path / "hub" / "models--org--sql-lora" / "snapshots" / ("b" * 40), r=16)
    (tmp_path / "hub" / "models--org--sql-lora" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--sql-lora" / "refs" / "main").write_text("b" * 40)
    result = resolve_adapter("hf:org/sql-lora", hf_hub_cache=str(tmp_path / "hub"), offline=True)
    assert result["path"] == str(snap) and result["rank"] == 16 and result["scheme"] == "hf"
    with pytest.raises(ModelSourceError, match="hf:org/absent@main is not in the HF cache"):
        resolve_adapter("hf:org/absent", hf_hub_cache=str(tmp_path / "hub"), offline=True)
    with pytest.raises(ModelSourceError, match="f: generated:tiny-llama is a base model, not an adapter"):
        resolve_adapter("generated:tiny-llama", field="f")
