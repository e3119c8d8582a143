"""Write a tiny random-weight Llama in Hugging Face format.

The shape is the smallest one vLLM's CPU backend accepts (head_dim 64; 16 is rejected).
The weights are random, so the text is gibberish, but every file is the real format: a
config vLLM/transformers read, safetensors weights, a byte-level BPE tokenizer trained on
local text and a chat template, so the serving path is exactly that of a real model.
Needs numpy, tokenizers and safetensors (the control venv has them).
"""
from __future__ import annotations

import glob
import json
import os
from typing import Any

SHAPE = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "num_hidden_layers": 2,
    "vocab_size": 2048,
    "max_position_embeddings": 2048,
}
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
# Llama-2 style template; the generation prompt lets vLLM's chat endpoint build prompts.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}<<SYS>>{{ message['content'] }}<</SYS>>\n"
    "{% elif message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]"
    "{% else %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %} {% endif %}"
)
CORPUS_GLOBS = ("/usr/share/common-licenses/*", "/usr/share/doc/*/copyright")
FALLBACK_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Serving large language models needs "
    "batching, paged attention, and careful scheduling of prefill and decode steps. "
)
GENERATOR_VERSION = "1"


def _corpus(limit_bytes: int = 2_000_000) -> list[str]:
    texts: list[str] = []
    total = 0
    for pattern in CORPUS_GLOBS:
        for path in sorted(glob.glob(pattern)):
            if not os.path.isfile(path):
                continue
            try:
                with open(path, encoding="utf-8", errors="ignore") as handle:
                    text = handle.read()
            except OSError:
                continue
            texts.append(text)
            total += len(text)
            if total > limit_bytes:
                return texts
    # A fresh container may have no license files; a repeated fallback still trains a tokenizer.
    return texts or [FALLBACK_CORPUS] * 200


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return tokenizer


def _weights(seed: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    hidden, inter = SHAPE["hidden_size"], SHAPE["intermediate_size"]
    head_dim = hidden // SHAPE["num_attention_heads"]
    kv = SHAPE["num_key_value_heads"] * head_dim
    vocab = SHAPE["vocab_size"]

    def rand(*shape: int):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    tensors = {
        "model.embed_tokens.weight": rand(vocab, hidden),
        "model.norm.weight": np.ones(hidden, dtype=np.float32),
        "lm_head.weight": rand(vocab, hidden),
    }
    for layer in range(SHAPE["num_hidden_layers"]):
        prefix = f"model.layers.{layer}"
        tensors.update(
            {
                f"{prefix}.input_layernorm.weight": np.ones(hidden, dtype=np.float32),
                f"{prefix}.post_attention_layernorm.weight": np.ones(hidden, dtype=np.float32),
                f"{prefix}.self_attn.q_proj.weight": rand(hidden, hidden),
                f"{prefix}.self_attn.k_proj.weight": rand(kv, hidden),
                f"{prefix}.self_attn.v_proj.weight": rand(kv, hidden),
                f"{prefix}.self_attn.o_proj.weight": rand(hidden, hidden),
                f"{prefix}.mlp.gate_proj.weight": rand(inter, hidden),
                f"{prefix}.mlp.up_proj.weight": rand(inter, hidden),
                f"{prefix}.mlp.down_proj.weight": rand(hidden, inter),
            }
        )
    return tensors


def write_tiny_llama(dest: str, seed: int = 0) -> list[str]:
    """Write the model into `dest` (created) and return the file names written."""
    from safetensors.numpy import save_file

    os.makedirs(dest, exist_ok=True)
    tokenizer = _train_tokenizer(SHAPE["vocab_size"])
    tokenizer.save(os.path.join(dest, "tokenizer.json"))
    ids = {tok: tokenizer.token_to_id(tok) for tok in SPECIAL_TOKENS}
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **SHAPE,
        "head_dim": SHAPE["hidden_size"] // SHAPE["num_attention_heads"],
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["</s>"],
        "pad_token_id": ids["<pad>"],
        "llmops_generator": {"name": "tiny-llama", "version": GENERATOR_VERSION, "seed": seed},
    }
    tokenizer_config = {
        # PreTrainedTokenizerFast loads in every transformers release vLLM pins.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "model_max_length": SHAPE["max_position_embeddings"],
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
    }
    special_map = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    generation_config = {"bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"], "pad_token_id": ids["<pad>"]}
    files = {
        "config.json": config,
        "tokenizer_config.json": tokenizer_config,
        "special_tokens_map.json": special_map,
        "generation_config.json": generation_config,
    }
    for name, payload in files.items():
        with open(os.path.join(dest, name), "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
    save_file(_weights(seed), os.path.join(dest, "model.safetensors"), metadata={"format": "pt"})
    return sorted(list(files) + ["tokenizer.json", "model.safetensors"])
