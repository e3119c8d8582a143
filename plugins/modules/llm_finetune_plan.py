#!/usr/bin/python
"""Plan one fine-tuning run: hash its inputs, render LLaMA-Factory configs (no side effects)."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_finetune_plan
short_description: Render LLaMA-Factory train/export configs and the run directory for llm_finetune
description:
  - Normalises I(spec) (the C(llm_finetune) inventory variable), hashes everything that changes
    the trained weights and returns the run directory named by that hash, the train and export
    configs, dataset_info.json and the ConfigMap keys of the LLaMA-Factory Kubernetes layout.
    Read-only; never reports changed.
options:
  spec: {description: The llm_finetune description., type: dict, required: true}
  base_path: {description: Local directory of the resolved base model (empty on Kubernetes)., type: str, default: ""}
  base_identity: {description: String naming the exact base model (source and seed)., type: str, required: true}
  work_root: {description: Directory holding one subdirectory per run hash., type: str, required: true}
  trainer_version: {description: LLaMA-Factory version (part of the hash)., type: str, required: true}
  report_to: {description: Where the trainer logs metrics., type: str, default: mlflow, choices: [mlflow, none]}
  layout:
    description: C(local) puts data, adapter and merged model under I(work_root)/<run>; C(kubernetes)
      uses that layout's volume directories under I(storage) (one subdirectory per run hash).
    type: str
    default: local
    choices: [local, kubernetes]
  storage: {description: Mount of the shared volume on Kubernetes., type: str, default: /storage}
  serve_adapter:
    description: Serve the base model with the LoRA adapter (vLLM C(--enable-lora)) instead of the merged model.
    type: bool
    default: false
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- llmops.platform.llm_finetune_plan:
    spec: "{{ llm_finetune }}"
    base_path: /models/tiny
    base_identity: generated:tiny-llama seed 0
    work_root: /var/lib/llmops/finetune
    trainer_version: 0.9.5
"""

RETURN = r"""
hash: {description: Input hash (16 hex)., type: str, returned: always}
spec: {description: Normalised description., type: dict, returned: always}
serve_model:
  description: What to serve as an llm_models entry (merged model, or base + adapter).
  type: dict
  returned: always
eval_model:
  description: The evaluation server's llm_models entry (base model under <served>-base plus the adapter).
  type: dict
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.finetune import spec as ft


def main() -> None:
    module = AnsibleModule(argument_spec={
        "spec": {"type": "dict", "required": True},
        "base_path": {"type": "str", "default": ""},
        "base_identity": {"type": "str", "required": True},
        "work_root": {"type": "str", "required": True},
        "trainer_version": {"type": "str", "required": True},
        "report_to": {"type": "str", "default": "mlflow", "choices": ["mlflow", "none"]},
        "layout": {"type": "str", "default": "local", "choices": ["local", "kubernetes"]},
        "storage": {"type": "str", "default": "/storage"},
        "serve_adapter": {"type": "bool", "default": False},
    }, supports_check_mode=True)
    p = module.params
    try:
        spec = ft.normalize(p["spec"])
        digest = ft.config_hash(spec, ft.file_sha256(spec["dataset"]), p["base_identity"], p["trainer_version"])
    except (ft.FinetuneSpecError, OSError) as exc:
        module.fail_json(msg=str(exc))
    run_name = f"{spec['name']}-{digest}"
    run_dir = os.path.join(p["work_root"], run_name)
    if p["layout"] == "local":
        dirs = {k: os.path.join(run_dir, k) for k in ("data", "adapter", "merged")}
    else:
        dirs = ft.storage_dirs(p["storage"], run_name)
    module.exit_json(
        changed=False, hash=digest, spec=spec, run_dir=run_dir, dirs=dirs, run_name=run_name,
        train=ft.train_config(spec, p["base_path"], dirs["data"], dirs["adapter"], p["report_to"], run_name),
        export=ft.export_config(spec, p["base_path"], dirs["adapter"], dirs["merged"]),
        dataset_info=ft.dataset_info(spec["dataset"]),
        configmap=ft.configmap_data(spec, ft.storage_dirs(p["storage"], run_name), p["storage"]),
        serve_model=ft.serve_model(spec, dirs["merged"], p["base_path"], dirs["adapter"], p["serve_adapter"]),
        eval_model=ft.serve_model(spec, dirs["merged"], p["base_path"], dirs["adapter"], adapter=True),
    )


if __name__ == "__main__":
    main()
