#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin Ansible face of the benchmark engine in module_utils/bench: translate options in,
# results out. All logic lives in the engine so the CLI and tests see the same behaviour.
DOCUMENTATION = r"""
---
module: llm_benchmark
short_description: Benchmark an OpenAI-compatible LLM endpoint (TTFT, ITL, TPOT, E2E, throughput)
version_added: "0.1.0"
description:
  - Sends streaming chat or completions requests at a fixed concurrency (closed loop) and
    records, per request, time to first token, every inter-token gap, end-to-end latency,
    token counts from the server's C(usage) chunk, status and error class.
  - Writes C(results.json) (schema_version 1), C(requests.jsonl) and a self-contained
    C(report.html) into O(output_dir), and returns the summary.
  - Endpoint failures (refused connections, timeouts, HTTP errors, cut streams) are recorded
    per request, never fatal; a run with more than 1% failed requests is marked invalid.
  - Send load only to endpoints you own (loopback or your own test hosts).
options:
  base_url:
    description: Server root, without C(/v1), e.g. C(http://127.0.0.1:8000).
    type: str
    required: true
  model:
    description: Served model name sent as C(model) in every request.
    type: str
    required: true
  endpoint:
    description: C(chat) uses C(/v1/chat/completions), C(completions) uses C(/v1/completions).
    type: str
    choices: [chat, completions]
    default: chat
  num_requests:
    description: Measured requests (after warm-up).
    type: int
    default: 100
  concurrency:
    description: Requests in flight at once; each worker sends its next request when the last one ends.
    type: int
    default: 8
  warmup_requests:
    description: Requests sent first and excluded from all statistics.
    type: int
    default: 0
  max_tokens:
    description: C(max_tokens) of every request; with O(ignore_eos) this fixes the output length.
    type: int
    default: 64
  prompt_tokens:
    description: Approximate prompt length; a synthetic prompt of this many words, different per request.
    type: int
    default: 128
  ignore_eos:
    description: Send C(ignore_eos=true) (a vLLM extension) so every request generates O(max_tokens) tokens.
    type: bool
    default: true
  seed:
    description: Seed of the synthetic prompts; the same seed gives the same prompts.
    type: int
    default: 0
  request_timeout_s:
    description: Per-request limit in seconds, connect to last byte; a late request is recorded as C(timeout).
    type: float
    default: 60.0
  run_timeout_s:
    description: Hard bound on the whole run in seconds (warm-up included); unsent requests make the run invalid.
    type: float
    default: 600.0
  api_key:
    description: Bearer token for the endpoint. Never written to results or logs.
    type: str
  additional_params:
    description:
      - Extra request-body fields such as C(temperature) or C(stop), passed through unchanged.
      - Values must be strings, numbers, booleans, null or flat lists of those.
        Fields the benchmark controls (C(model), C(stream), C(max_tokens), ...) are rejected.
    type: dict
    default: {}
  output_dir:
    description: Directory for C(results.json), C(requests.jsonl) and C(report.html); created if missing.
    type: path
    required: true
  fail_on_invalid:
    description: Fail the task (after writing results) when the run is invalid.
    type: bool
    default: false
notes:
  - Check mode validates the options only; no request is sent.
  - The run itself needs the C(aiohttp) Python package on the host that runs the module.
requirements:
  - python >= 3.9
  - aiohttp
author:
  - llmops.platform contributors
"""

EXAMPLES = r"""
- name: Benchmark the chat model served on this host
  llmops.platform.llm_benchmark:
    base_url: http://127.0.0.1:8000
    model: chat
    num_requests: 200
    concurrency: 16
    warmup_requests: 8
    max_tokens: 32
    prompt_tokens: 128
    additional_params:
      temperature: 0.0
    output_dir: "{{ playbook_dir }}/../reports/{{ bench_timestamp }}/chat"
    fail_on_invalid: true
  register: bench

- name: Show the headline numbers
  ansible.builtin.debug:
    msg: "{{ bench.summary.throughput.requests_per_s }} req/s, TTFT p99 {{ bench.summary.ttft_ms.p99 }} ms"
"""

RETURN = r"""
valid:
  description: False when more than 1% of requests failed, none succeeded, or requests were never sent.
  returned: success
  type: bool
  sample: true
invalid_reasons:
  description: Why the run is invalid; empty when valid.
  returned: success
  type: list
  elements: str
  sample: []
summary:
  description:
    - Run summary. C(requests) has total, succeeded, failed, not_sent, success_rate, error_classes.
    - C(ttft_ms), C(itl_ms), C(tpot_ms), C(e2e_ms) each have n, mean, median, p90, p95, p99,
      p999, min, max, stdev and ci95 (95% t-interval of the mean), in milliseconds.
    - C(throughput) has requests_per_s, output_tokens_per_s, total_tokens_per_s;
      C(tokens) has input_total, output_total and usage_missing.
  returned: success and not check mode
  type: dict
  sample: {"valid": true, "requests": {"total": 200, "succeeded": 200, "success_rate": 1.0}}
results_path:
  description: Path of results.json.
  returned: always
  type: str
  sample: /srv/reports/20250101T000000Z/chat/results.json
requests_path:
  description: Path of requests.jsonl (one record per measured request).
  returned: always
  type: str
  sample: /srv/reports/20250101T000000Z/chat/requests.jsonl
report_path:
  description: Path of the single-file HTML report.
  returned: always
  type: str
  sample: /srv/reports/20250101T000000Z/chat/report.html
"""

import os  # noqa: E402 - Ansible modules keep the YAML docs first

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (  # noqa: E402
    BenchConfig,
    BenchConfigError,
)

# Option defaults mirror BenchConfig's; a unit test keeps the two (and DOCUMENTATION) in sync.
ARGUMENT_SPEC = dict(
    base_url=dict(type="str", required=True),
    model=dict(type="str", required=True),
    endpoint=dict(type="str", choices=["chat", "completions"], default="chat"),
    num_requests=dict(type="int", default=100),
    concurrency=dict(type="int", default=8),
    warmup_requests=dict(type="int", default=0),
    max_tokens=dict(type="int", default=64),
    prompt_tokens=dict(type="int", default=128),
    ignore_eos=dict(type="bool", default=True),
    seed=dict(type="int", default=0),
    request_timeout_s=dict(type="float", default=60.0),
    run_timeout_s=dict(type="float", default=600.0),
    api_key=dict(type="str", no_log=True),
    additional_params=dict(type="dict", default={}),
    output_dir=dict(type="path", required=True),
    fail_on_invalid=dict(type="bool", default=False),
)
MODULE_ONLY = ("output_dir", "fail_on_invalid")


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    output_dir = params["output_dir"]
    paths = dict(results_path=os.path.join(output_dir, "results.json"),
                 requests_path=os.path.join(output_dir, "requests.jsonl"),
                 report_path=os.path.join(output_dir, "report.html"))
    try:
        config = BenchConfig(**{k: v for k, v in params.items() if k not in MODULE_ONLY})
    except BenchConfigError as exc:
        module.fail_json(msg=f"llm_benchmark option {exc.field}: {exc.message}", **paths)

    if module.check_mode:
        module.exit_json(changed=False, valid=None, invalid_reasons=[], **paths)

    try:  # imported late: check mode and argument errors must not need aiohttp
        from ansible_collections.llmops.platform.plugins.module_utils.bench.client import run
    except ImportError as exc:
        module.fail_json(msg=missing_required_lib("aiohttp"), exception=str(exc), **paths)
    from ansible_collections.llmops.platform.plugins.module_utils.bench.metrics import summarize
    from ansible_collections.llmops.platform.plugins.module_utils.bench.report import (
        write_run_report,
    )
    from ansible_collections.llmops.platform.plugins.module_utils.bench.results import (
        build_results,
        save_results,
    )

    result = run(config)
    summary = summarize(result)
    results = build_results(result, summary)
    written = save_results(results, output_dir)
    write_run_report(results, output_dir)
    out = dict(changed=True, valid=summary["valid"], invalid_reasons=summary["invalid_reasons"],
               summary=summary, results_path=written["results"],
               requests_path=written["requests"], report_path=paths["report_path"])
    if params["fail_on_invalid"] and not summary["valid"]:
        module.fail_json(msg="benchmark run is invalid: " + "; ".join(summary["invalid_reasons"]),
                         **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
