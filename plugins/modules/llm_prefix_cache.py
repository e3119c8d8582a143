#!/usr/bin/python
"""Scrape vLLM replicas' prefix-cache counters; with `before`, their hit rate over a run."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_prefix_cache
short_description: vLLM replicas' prefix-cache counters and the hit rate between two scrapes
description:
  - Reads C(vllm:prefix_cache_queries) and C(vllm:prefix_cache_hits) (prompt tokens looked up in
    and found in the prefix cache; the earlier C(vllm:gpu_prefix_cache_queries) /
    C(vllm:gpu_prefix_cache_hits) names too) from each replica's C(/metrics), summed over label sets.
  - Without O(before) it returns the counters. With O(before) (the C(counters) of an earlier
    call) it also returns the delta, per replica and in total, and the hit rate over it, and
    writes them to O(dest) when given. M(llmops.platform.llm_compare) reads that file
    (C(prefix_cache.json) next to a run's C(results.json)) and compares the hit rate of the arms.
  - A replica that does not answer, has no such counters (the V0 engine only has a hit-rate
    gauge) or restarted between the scrapes is left out of the total and listed as skipped.
options:
  urls:
    description: Replica base URLs (or their C(/metrics) URLs).
    type: list
    elements: str
    required: true
  before:
    description: The C(counters) returned by the scrape before the run.
    type: dict
  dest:
    description: JSON file for the delta (only with O(before)).
    type: path
  timeout_s:
    description: Per-replica scrape timeout.
    type: float
    default: 5.0
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Prefix-cache counters before the run
  llmops.platform.llm_prefix_cache:
    urls: [http://127.0.0.1:8100, http://127.0.0.1:8110]
  register: before
- name: Hit rate over the run
  llmops.platform.llm_prefix_cache:
    urls: [http://127.0.0.1:8100, http://127.0.0.1:8110]
    before: "{{ before.counters }}"
    dest: /srv/reports/compare/run/managed/run1/chat/prefix_cache.json
"""

RETURN = r"""
counters:
  description: Per URL, C(queries) and C(hits) since the replica started, or null.
  returned: always
  type: dict
prefix_cache:
  description:
    - With O(before) - C(queries), C(hits) and C(hit_rate_pct) over the run, per C(replicas), and the C(skipped) URLs.
  returned: when before is given
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.prefix_cache import delta, scrape, write


def main() -> None:
    module = AnsibleModule(
        argument_spec={"urls": {"type": "list", "elements": "str", "required": True},
                       "before": {"type": "dict"},
                       "dest": {"type": "path"},
                       "timeout_s": {"type": "float", "default": 5.0}},
        supports_check_mode=True,
    )
    p = module.params
    counters = scrape(p["urls"], p["timeout_s"])
    out = {"counters": counters}
    changed = False
    if p["before"] is not None:
        out["prefix_cache"] = delta(p["before"], counters)
        if p["dest"] and not module.check_mode:
            try:
                write(p["dest"], out["prefix_cache"])
            except OSError as exc:
                module.fail_json(msg=f"cannot write {p['dest']}: {exc}", **out)
            changed = True
    module.exit_json(changed=changed, **out)


if __name__ == "__main__":
    main()
