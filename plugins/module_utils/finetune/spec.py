"""One fine-tuning run described in inventory (`llm_finetune`) -> LLaMA-Factory configs.

Pure Python (no Ansible): normalises the description, hashes every input that changes
the trained weights (so an unchanged run is never retrained and a changed dataset or
hyperparameter always is), and renders LLaMA-Factory's own train/export YAML configs
and the 003 ConfigMap keys.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import lora_rank

METHODS = ("lora", "qlora", "full")
DATASET_NAME = "llmops_sft"
DEFAULTS: dict[str, Any] = {
    "name": "finetune",
    "method": "lora",
    "lora_rank": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "lora_target": "all",
    "max_steps": 40,
    "num_train_epochs": 1.0,
    "cutoff_len": 256,
    "learning_rate": 5.0e-3,
    "batch_size": 4,
    "gradient_accumulation_steps": 1,
    "template": "llama2",
    "seed": 42,
    "served_model_name": "",
    "max_model_len": 512,
    "tensor_parallel_size": 1,
    "mlflow_experiment": "llmops-finetune",
    # Held out of training for the base-vs-tuned evaluation (rows picked by the seed).
    "eval_fraction": 0.2,
    # Promotion gate: held-out NLL must drop by at least this many nats per token, with
    # eval_confidence (paired bootstrap over the held-out rows; plugins/module_utils/finetune/gate.py).
    "min_nll_gain": 0.01,
    "eval_confidence": 0.95,
    "eval_max_tokens": 32,
    # The llm_models entry whose replicas serve the promoted adapter; empty: the first entry
    # with the same source as base_model.
    "serve_on": "",
}
# Only these change the weights; the served name, port or experiment never retrain.
HASHED = ("base_model", "method", "lora_rank", "lora_alpha", "lora_dropout", "lora_target", "max_steps",
          "num_train_epochs", "cutoff_len", "learning_rate", "batch_size", "gradient_accumulation_steps",
          "template", "seed", "eval_fraction")


class FinetuneSpecError(ValueError):
    pass


def normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged and values checked; errors name the field."""
    unknown = set(spec) - set(DEFAULTS) - {"base_model", "dataset", "serve_port"}
    if unknown:
        raise FinetuneSpecError(f"llm_finetune: unknown keys {sorted(unknown)}")
    out = {**DEFAULTS, **{k: v for k, v in spec.items() if v is not None}}
    for key in ("base_model", "dataset"):
        if not out.get(key):
            raise FinetuneSpecError(f"llm_finetune.{key} is required")
    if out["method"] not in METHODS:
        raise FinetuneSpecError(f"llm_finetune.method must be one of {METHODS}, got {out['method']!r}")
    for key in ("lora_rank", "lora_alpha", "cutoff_len", "batch_size", "gradient_accumulation_steps"):
        if int(out[key]) < 1:
            raise FinetuneSpecError(f"llm_finetune.{key} must be >= 1")
    if int(out["max_steps"]) < 0 or float(out["learning_rate"]) <= 0:
        raise FinetuneSpecError("llm_finetune.max_steps must be >= 0 and learning_rate > 0")
    if not 0 <= float(out["eval_fraction"]) < 1:
        raise FinetuneSpecError("llm_finetune.eval_fraction must be in [0, 1): the share of rows held out "
                                f"for evaluation, e.g. 0.2; got {out['eval_fraction']!r}")
    if not 0.5 <= float(out["eval_confidence"]) < 1:
        raise FinetuneSpecError("llm_finetune.eval_confidence must be in [0.5, 1), e.g. 0.95; "
                                f"got {out['eval_confidence']!r}")
    if float(out["min_nll_gain"]) < 0:
        raise FinetuneSpecError(f"llm_finetune.min_nll_gain must be >= 0 (nats per token); got {out['min_nll_gain']!r}")
    if isinstance(out["lora_target"], list):
        out["lora_target"] = ",".join(out["lora_target"])
    out["served_model_name"] = out["served_model_name"] or out["name"]
    return out


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(spec: dict[str, Any], dataset_sha256: str, base_identity: str, trainer_version: str) -> str:
    """16 hex chars over everything that changes the trained weights."""
    payload = {k: spec[k] for k in HASHED}
    payload.update(dataset=dataset_sha256, base=base_identity, trainer=trainer_version)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_config(spec: dict[str, Any], base_path: str, dataset_dir: str, adapter_dir: str,
                 report_to: str, run_name: str) -> dict[str, Any]:
    """LLaMA-Factory `llamafactory-cli train` config (stage sft)."""
    cfg: dict[str, Any] = {
        "model_name_or_path": base_path,
        "trust_remote_code": False,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full" if spec["method"] == "full" else "lora",
        "dataset": DATASET_NAME,
        "dataset_dir": dataset_dir,
        "template": spec["template"],
        "cutoff_len": int(spec["cutoff_len"]),
        "overwrite_cache": True,
        "preprocessing_num_workers": 1,
        "dataloader_num_workers": 0,
        "output_dir": adapter_dir,
        "overwrite_output_dir": True,
        "logging_steps": 1,
        "save_strategy": "no",
        "plot_loss": True,
        "per_device_train_batch_size": int(spec["batch_size"]),
        "gradient_accumulation_steps": int(spec["gradient_accumulation_steps"]),
        "learning_rate": float(spec["learning_rate"]),
        "lr_scheduler_type": "cosine",
        "seed": int(spec["seed"]),
        "report_to": report_to,
        "run_name": run_name,
    }
    if int(spec["max_steps"]) > 0:
        cfg["max_steps"] = int(spec["max_steps"])
    else:
        cfg["num_train_epochs"] = float(spec["num_train_epochs"])
    if spec["method"] != "full":
        cfg.update(lora_rank=int(spec["lora_rank"]), lora_alpha=int(spec["lora_alpha"]),
                   lora_dropout=float(spec["lora_dropout"]), lora_target=spec["lora_target"])
    if spec["method"] == "qlora":
        # 4-bit base (bitsandbytes, GPU only); the merge below uses the unquantised base.
        cfg.update(quantization_bit=4, quantization_method="bnb")
    return cfg


def export_config(spec: dict[str, Any], base_path: str, adapter_dir: str, merged_dir: str) -> dict[str, Any]:
    """`llamafactory-cli export`: merge the adapter into the base (full: re-export the output)."""
    cfg: dict[str, Any] = {
        "model_name_or_path": adapter_dir if spec["method"] == "full" else base_path,
        "template": spec["template"],
        "trust_remote_code": False,
        "export_dir": merged_dir,
        "export_size": 2,
        "export_device": "cpu",
        "export_legacy_format": False,
    }
    if spec["method"] != "full":
        cfg.update(adapter_name_or_path=adapter_dir, finetuning_type="lora")
    return cfg


def split_rows(rows: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held-out): the held-out rows are the ceil(fraction * n) rows with the lowest
    seeded hash, so the split is stable across runs and independent of row order. Both keep
    the dataset's order."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "output" in r for r in rows):
        raise FinetuneSpecError("llm_finetune.dataset must be an alpaca JSON list of {instruction, input, output}")
    count = min(len(rows) - 1, int(-(-len(rows) * float(fraction) // 1))) if fraction > 0 else 0
    ranked = sorted(range(len(rows)), key=lambda i: hashlib.sha256(
        f"{seed}:{json.dumps(rows[i], sort_keys=True)}".encode()).hexdigest())
    held = set(ranked[:max(count, 0)])
    return ([r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held])


def dataset_info(dataset_file: str) -> dict[str, Any]:
    """dataset_info.json for one alpaca-format file (instruction/input/output)."""
    return {DATASET_NAME: {"file_name": os.path.basename(dataset_file),
                           "columns": {"prompt": "instruction", "query": "input", "response": "output"}}}


def storage_dirs(storage: str, run_name: str) -> dict[str, str]:
    """003's NFS layout; adapter and merged model get one subdirectory per run hash so a
    changed input never overwrites the model being served."""
    return {"base": f"{storage}/models/base-model", "data": f"{storage}/data",
            "adapter": f"{storage}/output/lora-adapter/{run_name}",
            "merged": f"{storage}/models/merged-model/{run_name}"}


def configmap_data(spec: dict[str, Any], dirs: dict[str, str], storage: str = "/storage") -> dict[str, str]:
    """The 003 ConfigMap keys (every value a string, as a ConfigMap needs)."""
    return {
        "BASE_MODEL_PATH": dirs.get("base", f"{storage}/models/base-model"),
        "LORA_OUTPUT_PATH": dirs["adapter"],
        "MERGED_MODEL_PATH": dirs["merged"],
        "DATASET_PATH": dirs["data"],
        "FINETUNING_TYPE": str(spec["method"]),
        "LORA_RANK": str(spec["lora_rank"]),
        "SERVED_MODEL_NAME": str(spec["served_model_name"]),
        "MAX_MODEL_LEN": str(spec["max_model_len"]),
        "TENSOR_PARALLEL_SIZE": str(spec["tensor_parallel_size"]),
    }


def serve_model(spec: dict[str, Any], merged_dir: str, base_path: str = "", adapter_dir: str = "",
                adapter: bool = False) -> dict[str, Any]:
    """What the run serves, as an llm_models entry (the vllm role's server builder takes it
    from here): the merged model under served_model_name, or the base model with the LoRA
    adapter loaded by vLLM, the adapter under served_model_name and the base under <name>-base."""
    name = str(spec["served_model_name"])
    args = {"max_model_len": spec["max_model_len"], "tensor_parallel_size": spec["tensor_parallel_size"]}
    if not adapter:
        return {"name": name, "source": f"path:{merged_dir}", "vllm_args": args}
    # The rank is known here (the trainer's), so the server is sized for it on every target.
    return {"name": f"{name}-base", "source": f"path:{base_path}",
            "adapters": [{"name": name, "source": f"path:{adapter_dir}"}],
            "vllm_args": {**args, "max_lora_rank": lora_rank(int(spec["lora_rank"]), "llm_finetune.lora_rank")}}
