#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin Ansible face of bench/report.py: (re)writes reports/index.html across all runs.

DOCUMENTATION = r"""
---
module: llm_report
short_description: Write the index.html that lists every benchmark run under a report root
version_added: "0.1.0"
description:
  - Scans O(report_root) for C(<timestamp>/<model>/results.json) written by
    M(llmops.platform.llm_benchmark) and writes O(report_root)/index.html, a single
    self-contained page (no external scripts or styles) with a table of all runs, newest
    first, linking to each run's report, and latency CDFs of the latest run per model.
  - Reports C(changed) only when the page content changes; the page carries no render time,
    so re-running with no new results is a no-op.
  - Unreadable or foreign C(results.json) files are listed on the page as skipped, not fatal.
  - Also writes O(report_root)/runs.csv, one row per run, model and load step.
options:
  report_root:
    description: Directory holding one sub-directory per benchmark run.
    type: path
    required: true
  title:
    description: Page heading.
    type: str
    default: LLM benchmark reports
notes:
  - Supports check mode (reports whether the page would change).
requirements:
  - python >= 3.9
author:
  - llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Refresh the report index
  llmops.platform.llm_report:
    report_root: "{{ playbook_dir }}/../reports"
  register: report

- name: Where to look
  ansible.builtin.debug:
    msg: "Open {{ report.index_path }}"
"""

RETURN = r"""
index_path:
  description: Path of the index page.
  returned: always
  type: str
  sample: /srv/reports/index.html
csv_path:
  description: Path of runs.csv (every run, model and load step).
  returned: always
  type: str
  sample: /srv/reports/runs.csv
runs:
  description: Number of results found and listed.
  returned: always
  type: int
  sample: 3
unreadable:
  description: Results files that could not be read, with the reason.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os  # noqa: E402 - Ansible modules keep the YAML docs first

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.bench.csvout import (  # noqa: E402
    render,
    rows,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.report import (  # noqa: E402
    INDEX_FILE,
    discover_runs,
    render_index_entries,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.results import (  # noqa: E402
    write_text,
)
from ansible_collections.llmops.platform.plugins.module_utils.compare import (  # noqa: E402
    render_index_section as compare_section,
)
from ansible_collections.llmops.platform.plugins.module_utils.tune.output import (  # noqa: E402
    render_index_section as sweeps_section,
)

CSV_FILE = "runs.csv"

ARGUMENT_SPEC = dict(
    report_root=dict(type="path", required=True),
    title=dict(type="str", default="LLM benchmark reports"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    root = module.params["report_root"]
    index_path = os.path.join(root, INDEX_FILE)
    csv_path = os.path.join(root, CSV_FILE)
    if not os.path.isdir(root):
        if module.check_mode:
            module.exit_json(changed=True, index_path=index_path, csv_path=csv_path, runs=0,
                             unreadable=[])
        os.makedirs(root, exist_ok=True)

    entries, problems = discover_runs(root)
    # The index also lists parameter sweeps (reports/sweeps/<task>/sweep.json) from the tuner
    # and routing comparisons (reports/compare/<run>/comparison.html).
    pages = {index_path: render_index_entries(entries, problems, title=module.params["title"],
                                              extra_html=sweeps_section(root) + compare_section(root)),
             csv_path: render(row for e in reversed(entries)
                              for row in rows(e["dir"], e["results"]))}
    changed = False
    for path, text in pages.items():
        try:
            with open(path, encoding="utf-8") as handle:
                differs = handle.read() != text
        except FileNotFoundError:
            differs = True
        if differs and not module.check_mode:
            write_text(path, text)
        changed = changed or differs
    module.exit_json(changed=changed, index_path=index_path, csv_path=csv_path,
                     runs=len(entries), unreadable=problems)


if __name__ == "__main__":
    main()
