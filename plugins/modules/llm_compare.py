#!/usr/bin/python
"""Compare two arms of benchmark runs (baseline vs managed); logic in module_utils.compare."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_compare
short_description: Compare baseline and managed benchmark runs, with run-to-run noise
description:
  - Reads I(root)/ARM/runK/MODEL/results.json written by M(llmops.platform.llm_benchmark),
    compares the mean of every metric (requests/s, tokens/s, success rate, TTFT/ITL/E2E mean,
    median, p95, p99) between I(baseline) and I(managed), and says whether each difference
    exceeds run-to-run noise (more than twice the larger standard deviation across repeats,
    and non-overlapping ranges).
  - Each arm in I(others) (for example a prefix-aware router) is compared with I(baseline) the
    same way, in a section of its own (C(others) in the result); without I(others) the output
    is the two-arm comparison.
  - A run directory holding C(prefix_cache.json) (written by M(llmops.platform.llm_prefix_cache))
    adds the replicas' prefix-cache hit rate over that run as a metric, next to TTFT.
  - Writes comparison.json, comparison.md and comparison.html into I(root).
options:
  root:
    description: Directory holding one sub-directory per arm.
    type: path
    required: true
  baseline:
    description: Arm name of the baseline.
    type: str
    default: baseline
  managed:
    description: Arm name of the managed side.
    type: str
    default: managed
  others:
    description: Further arm names, each compared with I(baseline).
    type: list
    elements: str
    default: []
  notes:
    description: Lines shown at the top of the report (what was deployed, how replicas differ).
    type: list
    elements: str
    default: []
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Compare
  llmops.platform.llm_compare:
    root: /srv/reports/compare/20250101T000000Z
    notes: ["replica 0 max_num_seqs 4, replica 1 max_num_seqs 32"]
"""

RETURN = r"""
comparison:
  description:
    - Per model, every metric with both arms' mean/min/max/stdev, diff, diff_pct, exceeds_noise, and a verdict.
    - With I(others), C(others) maps each further arm to the same structure against the baseline.
  returned: success
  type: dict
verdicts:
  description: "One line per model, C(MODEL: VERDICT), then C(ARM, MODEL: VERDICT) for each arm of I(others)."
  returned: success
  type: list
  elements: str
paths:
  description: Paths of comparison.json, comparison.md and comparison.html.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.compare import write_comparison


def main() -> None:
    module = AnsibleModule(
        argument_spec={"root": {"type": "path", "required": True},
                       "baseline": {"type": "str", "default": "baseline"},
                       "managed": {"type": "str", "default": "managed"},
                       "others": {"type": "list", "elements": "str", "default": []},
                       "notes": {"type": "list", "elements": "str", "default": []}},
        supports_check_mode=False,
    )
    p = module.params
    try:
        out = write_comparison(p["root"], p["baseline"], p["managed"], p["notes"], p["others"])
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(msg=f"cannot compare runs in {p['root']}: {exc}")
    result = out["comparison"]
    verdicts = [f"{model}: {data['verdict']}" for model, data in result["models"].items()]
    for arm, other in (result.get("others") or {}).items():
        verdicts += [f"{arm}, {model}: {data['verdict']}" for model, data in other["models"].items()]
    module.exit_json(changed=True, verdicts=verdicts, **out)


if __name__ == "__main__":
    main()
