#!/usr/bin/python
"""Write the apply plan of a rendered manifest directory and say what to prune."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_k8s_plan
short_description: List the objects of a rendered manifest tree and the objects to prune
description:
  - Reads every C(*.yaml) under I(render_dir) and writes I(plan_file) (JSON list of objects).
  - Objects listed in I(applied_file) (the plan of the last successful apply; when absent, the
    previous I(plan_file)) but missing now are returned as C(prune) and written to I(prune_file).
  - Needs no API server, so the same plan drives GitOps exports, tests and real applies.
options:
  render_dir:
    description: Directory the role rendered its manifests into.
    type: path
    required: true
  plan_file:
    description: Where to write the plan.
    type: path
    required: true
  applied_file:
    description: Plan of the last successful apply (the role copies plan_file there after applying).
    type: path
    required: true
  prune_file:
    description: Where to write the list of objects to delete.
    type: path
    required: true
  namespace:
    description: Namespace of objects that name none.
    type: str
    default: ""
  state:
    description:
      - C(planned) writes the plan and the prune list.
      - C(applied), after a successful apply and prune, records the plan as applied and
        empties the prune list, so the next run has nothing to do.
    type: str
    choices: [planned, applied]
    default: planned
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Plan the serving manifests
  llmops.platform.llm_k8s_plan:
    render_dir: /var/lib/llmops/rendered/serving/vllm
    plan_file: /var/lib/llmops/rendered/plans/vllm.json
    applied_file: /var/lib/llmops/rendered/plans/vllm.applied.json
    prune_file: /var/lib/llmops/rendered/plans/vllm.prune.json
"""

RETURN = r"""
objects:
  description: apiVersion, kind, name, namespace and file of every rendered object.
  returned: success
  type: list
  elements: dict
prune:
  description: Objects to delete (were applied or rendered before, are not rendered now).
  returned: success
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.k8s import render_plan


def _write(module: AnsibleModule, path: str, content: str) -> bool:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                return False
    if not module.check_mode:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, path)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "render_dir": {"type": "path", "required": True},
            "plan_file": {"type": "path", "required": True},
            "applied_file": {"type": "path", "required": True},
            "prune_file": {"type": "path", "required": True},
            "namespace": {"type": "str", "default": ""},
            "state": {"type": "str", "choices": ["planned", "applied"], "default": "planned"},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        plan = render_plan.build(p["render_dir"], p["plan_file"], p["applied_file"], p["namespace"])
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(msg=f"cannot read the manifests under {p['render_dir']}: {exc}")
    current = render_plan.dump_plan(plan["objects"])
    if p["state"] == "applied":
        changed = _write(module, p["applied_file"], current)
        changed = _write(module, p["prune_file"], render_plan.dump_plan([])) or changed
        module.exit_json(changed=changed, objects=plan["objects"], prune=[])
    changed = _write(module, p["plan_file"], current)
    changed = _write(module, p["prune_file"], render_plan.dump_plan(plan["prune"])) or changed
    module.exit_json(changed=changed, objects=plan["objects"], prune=plan["prune"])


if __name__ == "__main__":
    main()
