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

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.bench.index import (  # noqa: E402
    DEFAULT_TITLE,
    write_index,
)

ARGUMENT_SPEC = dict(
    report_root=dict(type="path", required=True),
    title=dict(type="str", default=DEFAULT_TITLE),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**write_index(module.params["report_root"], module.params["title"],
                                   check=module.check_mode))


if __name__ == "__main__":
    main()
