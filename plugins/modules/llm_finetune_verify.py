#!/usr/bin/python
"""The verify gate: fail with the reasons unless the merged model is safe to serve."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_finetune_verify
short_description: Verify a merged model against its base before anything serves it
description:
  - Config and weights present and readable, tokenizer files and a chat template present,
    eos/pad tokens the same as the base model's, and (with I(python)) a short greedy
    generation in the fine-tuning venv that must end with eos. Fails listing every reason.
  - Writes the result to I(result_file) (changed only when its content changes).
options:
  merged: {description: Merged model directory., type: path, required: true}
  base: {description: Base model directory., type: path, required: true}
  python:
    description: Interpreter with torch and transformers for the generation probe; empty skips it.
    type: str
    default: ""
  probe_script: {description: The probe script., type: path}
  prompt: {description: Prompt of the generation probe., type: str, default: "What is the capital of France?"}
  max_new_tokens: {description: Generation budget; eos must come before it., type: int, default: 48}
  result_file: {description: Where the JSON result is written., type: path}
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- llmops.platform.llm_finetune_verify:
    merged: /runs/x/merged
    base: /models/tiny
"""

RETURN = r"""
passed: {description: Whether every check passed., type: bool, returned: always}
reasons: {description: One line per failed check., type: list, returned: always}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.finetune import verify as gate


def main() -> None:
    module = AnsibleModule(argument_spec={
        "merged": {"type": "path", "required": True},
        "base": {"type": "path", "required": True},
        "python": {"type": "str", "default": ""},
        "probe_script": {"type": "path"},
        "prompt": {"type": "str", "default": "What is the capital of France?"},
        "max_new_tokens": {"type": "int", "default": 48, "no_log": False},  # a count, not a secret
        "result_file": {"type": "path"},
    })
    p = module.params
    probe = None
    if p["python"] and not gate.static_checks(p["merged"], p["base"]):
        probe = gate.generation_probe(p["python"], p["probe_script"], p["merged"], p["prompt"], p["max_new_tokens"])
    result = gate.verify(p["merged"], p["base"], probe)
    changed = False
    if p["result_file"]:
        text = json.dumps(result, indent=2, sort_keys=True) + "\n"
        old = open(p["result_file"], encoding="utf-8").read() if os.path.isfile(p["result_file"]) else None
        if old != text:
            with open(p["result_file"], "w", encoding="utf-8") as handle:
                handle.write(text)
            changed = True
    if not result["passed"]:
        module.fail_json(msg="verify gate failed: " + "; ".join(result["reasons"]), changed=changed, **result)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
