"""llm_finetune -> LLaMA-Factory configs, input hash and 003 ConfigMap keys."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.finetune import spec as ft

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATASET = os.path.join(ROOT, "roles/llama_factory/files/datasets/alpaca_demo.json")
BASE = {"base_model": "generated:tiny-llama", "dataset": DATASET}


def _hash(**changes):
    spec = ft.normalize({**BASE, **changes})
    return ft.config_hash(spec, ft.file_sha256(spec["dataset"]), "generated:tiny-llama seed=0", "0.9.5")


def test_shipped_dataset_is_50_alpaca_rows():
    rows = json.load(open(DATASET))
    assert len(rows) == 50
    assert all(set(r) == {"instruction", "input", "output"} and r["output"] for r in rows)


def test_defaults_and_validation():
    spec = ft.normalize(BASE)
    assert spec["method"] == "lora" and spec["served_model_name"] == spec["name"]
    with pytest.raises(ft.FinetuneSpecError, match="method"):
        ft.normalize({**BASE, "method": "dora"})
    with pytest.raises(ft.FinetuneSpecError, match="dataset"):
        ft.normalize({"base_model": "generated:tiny-llama"})
    with pytest.raises(ft.FinetuneSpecError, match="unknown keys"):
        ft.normalize({**BASE, "lora_rnak": 8})
    assert ft.normalize({**BASE, "lora_target": ["q_proj", "v_proj"]})["lora_target"] == "q_proj,v_proj"


def test_hash_changes_with_weights_inputs_only(tmp_path):
    same = _hash()
    assert same == _hash()
    assert _hash(served_model_name="other", mlflow_experiment="x", max_model_len=2048) == same
    for change in ({"learning_rate": 1e-4}, {"lora_rank": 16}, {"max_steps": 5}, {"template": "default"},
                   {"method": "full"}, {"cutoff_len": 128}):
        assert _hash(**change) != same, change
    changed = tmp_path / "d.json"
    rows = json.load(open(DATASET))
    rows[0]["output"] = "Changed."
    changed.write_text(json.dumps(rows))
    assert _hash(dataset=str(changed)) != same


def test_train_and_export_configs():
    spec = ft.normalize({**BASE, "lora_rank": 16, "max_steps": 20})
    train = ft.train_config(spec, "/m/base", "/r/data", "/r/adapter", "mlflow", "run-1")
    assert train["stage"] == "sft" and train["finetuning_type"] == "lora"
    assert train["lora_rank"] == 16 and train["max_steps"] == 20 and "num_train_epochs" not in train
    assert train["report_to"] == "mlflow" and train["dataset"] == ft.DATASET_NAME
    export = ft.export_config(spec, "/m/base", "/r/adapter", "/r/merged")
    assert export["adapter_name_or_path"] == "/r/adapter" and export["export_dir"] == "/r/merged"
    assert export["template"] == train["template"]
    qlora = ft.train_config(ft.normalize({**BASE, "method": "qlora"}), "/b", "/d", "/a", "none", "r")
    assert qlora["quantization_bit"] == 4 and qlora["finetuning_type"] == "lora"
    full = ft.normalize({**BASE, "method": "full", "max_steps": 0})
    assert "lora_rank" not in ft.train_config(full, "/b", "/d", "/a", "none", "r")
    assert ft.train_config(full, "/b", "/d", "/a", "none", "r")["num_train_epochs"] == 1.0
    assert "adapter_name_or_path" not in ft.export_config(full, "/b", "/a", "/m")


def test_configmap_has_the_003_keys_as_strings():
    spec = ft.normalize({**BASE, "method": "qlora", "lora_rank": 32})
    data = ft.configmap_data(spec, ft.storage_dirs("/storage", "run-abc"))
    assert set(data) == {"BASE_MODEL_PATH", "LORA_OUTPUT_PATH", "MERGED_MODEL_PATH", "DATASET_PATH", "FINETUNING_TYPE",
                         "LORA_RANK", "SERVED_MODEL_NAME", "MAX_MODEL_LEN", "TENSOR_PARALLEL_SIZE"}
    assert all(isinstance(v, str) for v in data.values())
    assert data["FINETUNING_TYPE"] == "qlora" and data["LORA_RANK"] == "32"
    assert data["MERGED_MODEL_PATH"] == "/storage/models/merged-model/run-abc"
