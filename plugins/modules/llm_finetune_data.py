#!/usr/bin/python
"""Split the fine-tuning dataset into the rows the trainer sees and the held-out rows."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_finetune_data
short_description: Split an alpaca dataset into training rows and held-out evaluation rows
description:
  - Reads I(src) (alpaca JSON, a list of instruction/input/output rows) and writes the training
    rows to I(train_dest) and the held-out rows to I(eval_dest). The held-out rows are the
    ceil(I(fraction) x rows) with the lowest seeded hash, so the split is stable across runs.
  - Changed only when a written file's content changes.
options:
  src: {description: The dataset file., type: path, required: true}
  train_dest: {description: Where the training rows are written., type: path, required: true}
  eval_dest: {description: Where the held-out rows are written., type: path, required: true}
  fraction: {description: Share of rows held out (0 holds none out)., type: float, default: 0.2}
  seed: {description: Seed of the split., type: int, default: 42}
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- llmops.platform.llm_finetune_data:
    src: /data/alpaca.json
    train_dest: /runs/x/data/alpaca.json
    eval_dest: /runs/x/heldout.json
"""

RETURN = r"""
train_rows: {description: Rows written for training., type: int, returned: always}
eval_rows: {description: Rows held out., type: int, returned: always}
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.files import write_if_changed
from ansible_collections.llmops.platform.plugins.module_utils.finetune import spec as ft


def main() -> None:
    module = AnsibleModule(argument_spec={
        "src": {"type": "path", "required": True},
        "train_dest": {"type": "path", "required": True},
        "eval_dest": {"type": "path", "required": True},
        "fraction": {"type": "float", "default": 0.2},
        "seed": {"type": "int", "default": 42},
    }, supports_check_mode=False)
    p = module.params
    try:
        with open(p["src"], encoding="utf-8") as handle:
            rows = json.load(handle)
        train, held = ft.split_rows(rows, p["fraction"], p["seed"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"llm_finetune.dataset ({p['src']}): {exc}")
    changed = write_if_changed(p["train_dest"], json.dumps(train, indent=1, ensure_ascii=False) + "\n")
    changed = write_if_changed(p["eval_dest"], json.dumps(held, indent=1, ensure_ascii=False) + "\n") or changed
    module.exit_json(changed=changed, train_rows=len(train), eval_rows=len(held))


if __name__ == "__main__":
    main()
