#!/usr/bin/python
"""Resolve a model source to a local Hugging Face model directory (or a LoRA adapter source to
a PEFT adapter directory)."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_model_source
short_description: Resolve a model source (generated, path, hf) to a local model directory
description:
  - C(generated:tiny-llama) writes a small random-weight Llama (real HF files) into I(cache_dir) once.
  - C(path:/dir) checks that a local directory holds a complete HF model.
  - C(hf:org/repo[@revision]) finds the model in the Hugging Face cache or downloads it with I(hf_token).
  - All three are validated by the same check (config, weights, tokenizer) before any server uses them.
  - With I(kind=adapter) the source is a LoRA adapter, C(path:/dir) or C(hf:org/repo[@revision]) (downloaded
    like a model); the directory must hold C(adapter_config.json) and adapter weights.
options:
  source:
    description: Model source, C(generated:tiny-llama), C(path:/abs/dir) or C(hf:org/repo[@revision]).
    type: str
    required: true
  cache_dir:
    description: Where generated models are written.
    type: path
    required: true
  seed:
    description: Seed for generated weights.
    type: int
    default: 0
  hf_token:
    description: Hugging Face token for gated repos.
    type: str
  hf_hub_cache:
    description: Hugging Face hub cache directory; defaults to C(HF_HUB_CACHE) or C(HF_HOME)/hub.
    type: path
  offline:
    description: Never try to download; fail if an C(hf:) model is not cached.
    type: bool
    default: false
  kind:
    description: C(model) (a base model) or C(adapter) (a PEFT LoRA adapter served on top of one).
    type: str
    choices: [model, adapter]
    default: model
  field:
    description: The inventory field of the source (e.g. C(llm_models[chat].adapters[0].source)); errors start with it.
    type: str
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Resolve the model of each entry
  llmops.platform.llm_model_source:
    source: generated:tiny-llama
    cache_dir: /var/cache/llmops/models

- name: Resolve a LoRA adapter
  llmops.platform.llm_model_source:
    source: path:/srv/adapters/chat-ft
    cache_dir: /var/cache/llmops/models
    kind: adapter
    field: llm_models[chat].adapters[0].source
"""

RETURN = r"""
path:
  description: Local directory of the model.
  returned: success
  type: str
files:
  description: File names in the model directory.
  returned: success
  type: list
  elements: str
scheme:
  description: The source scheme.
  returned: success
  type: str
rank:
  description: The adapter's largest LoRA rank (C(r) or C(rank_pattern) of adapter_config.json).
  returned: kind is adapter
  type: int
base_model:
  description: The adapter's C(base_model_name_or_path) (may be empty).
  returned: kind is adapter
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError
from ansible_collections.llmops.platform.plugins.module_utils.model_source import (
    ModelSourceError,
    resolve,
    resolve_adapter,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "str", "required": True},
            "cache_dir": {"type": "path", "required": True},
            "seed": {"type": "int", "default": 0},
            "hf_token": {"type": "str", "no_log": True},
            "hf_hub_cache": {"type": "path"},
            "offline": {"type": "bool", "default": False},
            "kind": {"type": "str", "choices": ["model", "adapter"], "default": "model"},
            "field": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        if module.check_mode:
            from ansible_collections.llmops.platform.plugins.module_utils.inventory import parse_source

            parse_source(params["source"], params["field"] or "source")
            extra = {"rank": 0, "base_model": ""} if params["kind"] == "adapter" else {}
            module.exit_json(changed=False, path="", files=[], scheme=params["source"].split(":")[0], **extra)
        if params["kind"] == "adapter":
            result = resolve_adapter(params["source"], params["hf_token"], params["hf_hub_cache"], params["offline"],
                                     params["field"] or "")
        else:
            result = resolve(params["source"], params["cache_dir"], params["hf_token"], params["seed"],
                             params["hf_hub_cache"], params["offline"])
    except (ModelSourceError, InventoryError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
