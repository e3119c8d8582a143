#!/usr/bin/python
"""Write the apply plan of a rendered manifest directory and say what to prune."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_k8s_plan
short_description: List the objects of a rendered manifest tree and the objects to prune
description:
  - Reads every C(*.yaml) under O(render_dir) and writes the plan C(<plans_dir>/<name>.json)
    (JSON list of objects).
  - Objects listed in C(<name>.applied.json) (the plan of the last successful apply; when
    absent, the previous C(<name>.json)) but missing now are returned as C(prune) and
    written to C(<name>.prune.json).
  - With O(files), the directory is made to hold exactly those files first (any other
    C(*.yaml) directly under O(render_dir) is deleted), and C(files) returns them in the
    order to apply them.
  - Needs no API server, so the same plan drives GitOps exports, tests and real applies.
options:
  render_dir:
    description: Directory the role rendered its manifests into.
    type: path
    required: true
  plans_dir:
    description: Directory of the plans (one set of three files per O(name)).
    type: path
    required: true
  name:
    description:
      - Name of the plan, a plain file name. Each render directory needs its own, or one
        would prune the objects of another.
    type: str
    required: true
  files:
    description:
      - File names (not paths) the role rendered into O(render_dir), in the order to apply
        them. Other C(*.yaml) files directly under O(render_dir) are deleted (a removed model's
        file goes away, and its objects are pruned). A listed file that is missing is an error.
      - Omitted, every C(*.yaml) under O(render_dir) counts and C(files) is in name order.
    type: list
    elements: str
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
    plans_dir: /var/lib/llmops/rendered/plans
    name: vllm
    files: [00-namespace.yaml, model-chat.yaml]
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
namespace_files:
  description: The files holding a Namespace, to apply before anything else.
  returned: success
  type: list
  elements: str
files:
  description: The other files, in the order to apply them (O(files) order, else by name).
  returned: success
  type: list
  elements: str
removed:
  description: Files deleted from O(render_dir) because the role no longer renders them.
  returned: success
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.files import atomic_write, same_content
from ansible_collections.llmops.platform.plugins.module_utils.k8s import render_plan


def _write(module: AnsibleModule, path: str, content: str) -> bool:
    if same_content(path, content):
        return False
    if not module.check_mode:
        atomic_write(path, content)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "render_dir": {"type": "path", "required": True},
            "plans_dir": {"type": "path", "required": True},
            "name": {"type": "str", "required": True},
            "files": {"type": "list", "elements": "str"},
            "namespace": {"type": "str", "default": ""},
            "state": {"type": "str", "choices": ["planned", "applied"], "default": "planned"},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        paths = render_plan.plan_paths(p["plans_dir"], p["name"])
    except ValueError as exc:
        module.fail_json(msg=f"name: {exc}")
    removed: list[str] = []
    if p["files"] is not None:
        missing = render_plan.missing_files(p["render_dir"], p["files"])
        if missing:
            module.fail_json(msg=f"files: {missing[0]} is not in {p['render_dir']}; "
                                 "list only the files the role rendered")
        removed = render_plan.stale_files(p["render_dir"], p["files"])
        if not module.check_mode:
            for path in removed:
                os.remove(path)
    try:
        plan = render_plan.build(p["render_dir"], paths["plan"], paths["applied"], p["namespace"], exclude=removed)
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(msg=f"cannot read the manifests under {p['render_dir']}: {exc}")
    files = p["files"] if p["files"] is not None else [ref["file"] for ref in plan["objects"]]
    order = render_plan.apply_order(plan["objects"], files)
    result = {"objects": plan["objects"], "namespace_files": order["namespaces"], "files": order["files"],
              "removed": removed}
    current = render_plan.dump_plan(plan["objects"])
    if p["state"] == "applied":
        changed = _write(module, paths["applied"], current)
        changed = _write(module, paths["prune"], render_plan.dump_plan([])) or changed
        module.exit_json(changed=changed or bool(removed), prune=[], **result)
    changed = _write(module, paths["plan"], current)
    changed = _write(module, paths["prune"], render_plan.dump_plan(plan["prune"])) or changed
    module.exit_json(changed=changed or bool(removed), prune=plan["prune"], **result)


if __name__ == "__main__":
    main()
