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
  - Sends streaming chat or completions requests with a load profile (closed-loop
    concurrency, open-loop constant or Poisson/gamma arrivals on absolute deadlines, max
    throughput, a sweep from synchronous to max throughput, an SLO rate search, or a trace
    replay) and records, per request, scheduled and actual send time, dispatch lag, client
    queue time, time to first token, every inter-chunk gap, tokens per chunk, end-to-end
    latency, token counts from the server's C(usage), status and error class.
  - Scrapes the server's C(/metrics) before and after each step and reports server-side
    TTFT, E2E, queue time and token totals next to the client's, flagging disagreement.
  - See docs/benchmark.md for the definitions of every metric.
  - Writes C(results.json) (schema_version 1), C(requests.jsonl) and a self-contained
    C(report.html) into O(output_dir), and returns the summary.
  - Endpoint failures (refused connections, timeouts, HTTP errors, cut streams) are recorded
    per request, never fatal; a run with more than 1% failed requests, unsent requests, or a
    sender that fell behind its schedule is marked invalid.
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
    description:
      - Requests in flight at once; each worker sends its next request when the last one ends.
      - A list such as C([1, 4, 16, 64]) runs one load step per value and draws a load curve.
    type: raw
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
  profile:
    aliases: [load_profile]
    description:
      - C(concurrency) closed loop with O(concurrency) workers; C(constant) and C(poisson)
        open loop at O(rate); C(throughput) sends everything at once (up to O(max_concurrency));
        C(sweep) runs synchronous, max throughput and O(sweep_steps) rates between;
        C(slo_search) bisects for the highest rate meeting O(slo_target); C(trace) replays O(trace_path).
    type: str
    choices: [concurrency, constant, poisson, throughput, sweep, slo_search, trace]
    default: concurrency
  rate:
    description:
      - Requests per second for the C(constant) and C(poisson) profiles.
      - A list such as C([2, 4, 8]) runs one load step per rate.
    type: raw
  burstiness:
    description: Gamma shape of inter-arrival times; 1 is Poisson, below 1 burstier.
    type: float
    default: 1.0
  sweep_steps:
    description: Rates between synchronous and max throughput (C(sweep)), or bisection probes (C(slo_search)).
    type: int
    default: 5
  max_concurrency:
    description: Open-loop cap on requests in flight; a full cap delays sends and shows as dispatch lag.
    type: int
  trace_path:
    description: JSONL trace for C(profile=trace), one request per line with C(timestamp) (s) and optional
      C(input_length), C(output_length).
    type: path
  trace_speed:
    description: Replay speed factor for traces.
    type: float
    default: 1.0
  max_dispatch_lag_ms:
    description: Open-loop runs whose p99 dispatch lag exceeds this are invalid (the sender fell behind).
    type: float
    default: 10.0
  saturation_guard:
    description: Stop an open-loop step early when requests in flight keep growing.
    type: bool
    default: true
  repeats:
    description: Runs per step; percentiles are pooled over all of them and the spread is reported.
    type: int
    default: 1
  min_step_s:
    description:
      - Minimum duration of each load step in seconds; when O(num_requests) finish sooner the
        step keeps sending (the prompts cycle), so a step at high concurrency is more than one wave.
      - C(0) ends each step after O(num_requests).
    type: float
    default: 0.0
  max_seconds:
    description:
      - Each load step sends no new request after this many seconds (requests already sent
        finish); a chosen bound, so the run stays valid.
    type: float
  headers:
    description:
      - "Extra HTTP headers on every request, e.g. C({X-Tenant: team-a}); values are kept out of
        results and logs."
    type: dict
    default: {}
  label:
    description: Free text naming this run in its report and in the report index.
    type: str
  progress_file:
    description:
      - File the module writes a progress line to every few seconds while it runs (C(tail -f) it);
        default C(progress.log) in O(output_dir).
    type: path
  scenario:
    description: Traffic scenario in genai-bench notation, e.g. C(D(128,32)), C(N(480,240)/(300,150)),
      C(U(50,100)/(200,250)); overrides O(prompt_tokens) and O(max_tokens).
    type: str
  dataset:
    description:
      - Prompt source. C(shared_prefix) is synthetic too - O(prefix_groups) system prompts of
        O(prefix_tokens) tokens each, and every request is one group's system prompt (seeded
        choice) plus its own question of O(prompt_tokens); it measures prefix caching and
        prefix-aware routing.
      - C(multi_turn) is synthetic too - conversations of O(turns) user turns, sent turn by
        turn (all first turns interleaved, then all second turns, ...); each request resends
        its conversation so far, earlier questions with stand-in answers of their output
        length, as a chat client resends history.
    type: str
    choices: [synthetic, sharegpt, alpaca, jsonl, shared_prefix, multi_turn]
    default: synthetic
  dataset_path:
    description: File for the C(sharegpt), C(alpaca) (JSON) or C(jsonl) datasets.
    type: path
  prefix_groups:
    description: Dataset C(shared_prefix) - how many distinct system prompts (groups of users) there are.
    type: int
    default: 8
  prefix_tokens:
    description: Dataset C(shared_prefix) - tokens of each group's system prompt (exact with O(tokenizer)).
    type: int
    default: 256
  turns:
    description: Dataset C(multi_turn) - user turns per conversation (1-64); O(num_requests) / O(turns) conversations.
    type: int
    default: 4
  tokenizer:
    description: Local model directory or tokenizer.json; synthetic prompts then have exactly the requested token count.
    type: path
  percentiles:
    description: Percentiles reported for every latency (p90 and p99 are always included).
    type: list
    elements: float
    default: [90.0, 95.0, 99.0, 99.9]
  slo_ttft_ms:
    description: TTFT SLO in ms for goodput.
    type: float
  slo_tpot_ms:
    description: TPOT SLO in ms for goodput.
    type: float
  slo_e2e_ms:
    description: E2E latency SLO in ms for goodput.
    type: float
  slo_target:
    description: Share of requests that must meet every SLO (goodput target, SLO search).
    type: float
    default: 0.9
  server_metrics:
    description: Scrape C(<base_url>/metrics) before and after each step.
    type: bool
    default: true
  prometheus_url:
    description:
      - A Prometheus that scrapes the served model's vLLM replicas (the local target's monitoring
        records its URL; on Kubernetes a port-forward to the cluster's Prometheus).
      - After the run, requests running/waiting and KV-cache use of every replica for the run's
        window are taken from it (series with C(model_name) equal to O(model)) and drawn in the
        report next to the client's TTFT. Without it, or when it does not answer (recorded in the
        results, never fatal), the report shows the gauges sampled from C(<base_url>/metrics).
    type: str
  server_args:
    description: How the server was started (recorded in every output, never interpreted).
    type: dict
    default: {}
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
  options:
    description:
      - More options as one mapping, e.g. the benchmark role's C(benchmark_options) for every
        model. Each key is one of the options above except O(base_url), O(model), O(api_key),
        O(server_args), O(output_dir), O(fail_on_invalid) and O(progress_file); its value is checked like that
        option's and replaces it. An unknown key is an error naming it.
    type: dict
    default: {}
notes:
  - Check mode validates the options only; no request is sent.
  - The run itself needs the C(aiohttp) Python package on the host that runs the module.
requirements:
  - python >= 3.9
  - aiohttp
author:
  - llmops.platform developers (@llmops)
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
  description: False when more than 1% of requests failed, none succeeded, requests were never sent, or the
    sender fell behind its schedule (dispatch lag p99 above O(max_dispatch_lag_ms)).
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
    - C(queue_ms) (client queue time), C(schedule) (target/achieved rate, dispatch lag),
      C(goodput), C(server) (histogram deltas) and C(server_disagreements), C(steps) (one
      line per load step) and C(schema) (the JSON Schema id, plugins/module_utils/bench/schema/summary-v1.json).
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
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402

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
    concurrency=dict(type="raw", default=8),
    warmup_requests=dict(type="int", default=0),
    # no_log=False: token counts, not secrets (validate-modules flags names containing "token").
    max_tokens=dict(type="int", default=64, no_log=False),
    prompt_tokens=dict(type="int", default=128, no_log=False),
    ignore_eos=dict(type="bool", default=True),
    seed=dict(type="int", default=0),
    request_timeout_s=dict(type="float", default=60.0),
    run_timeout_s=dict(type="float", default=600.0),
    profile=dict(type="str", default="concurrency", aliases=["load_profile"],
                 choices=["concurrency", "constant", "poisson", "throughput", "sweep",
                          "slo_search", "trace"]),
    rate=dict(type="raw"),
    burstiness=dict(type="float", default=1.0),
    sweep_steps=dict(type="int", default=5),
    max_concurrency=dict(type="int"),
    trace_path=dict(type="path"),
    trace_speed=dict(type="float", default=1.0),
    max_dispatch_lag_ms=dict(type="float", default=10.0),
    saturation_guard=dict(type="bool", default=True),
    repeats=dict(type="int", default=1),
    min_step_s=dict(type="float", default=0.0),
    max_seconds=dict(type="float"),
    headers=dict(type="dict", default={}, no_log=True),
    label=dict(type="str"),
    progress_file=dict(type="path"),
    scenario=dict(type="str"),
    dataset=dict(type="str", default="synthetic",
                 choices=["synthetic", "sharegpt", "alpaca", "jsonl", "shared_prefix", "multi_turn"]),
    dataset_path=dict(type="path"),
    prefix_groups=dict(type="int", default=8),
    prefix_tokens=dict(type="int", default=256, no_log=False),
    turns=dict(type="int", default=4),
    tokenizer=dict(type="path"),
    percentiles=dict(type="list", elements="float", default=[90.0, 95.0, 99.0, 99.9]),
    slo_ttft_ms=dict(type="float"),
    slo_tpot_ms=dict(type="float"),
    slo_e2e_ms=dict(type="float"),
    slo_target=dict(type="float", default=0.9),
    server_metrics=dict(type="bool", default=True),
    prometheus_url=dict(type="str"),
    server_args=dict(type="dict", default={}),
    api_key=dict(type="str", no_log=True),
    additional_params=dict(type="dict", default={}),
    output_dir=dict(type="path", required=True),
    fail_on_invalid=dict(type="bool", default=False),
    options=dict(type="dict", default={}),
)
MODULE_ONLY = ("output_dir", "fail_on_invalid", "options", "progress_file")
# What `options` may not set: the endpoint's identity, its secret and the module's own switches.
NOT_OPTIONS = ("base_url", "model", "api_key", "server_args") + MODULE_ONLY


def merge_options(params: dict) -> dict:
    """`params` with `options` folded in, checked and converted as the top-level options are
    (so `rate: "4"` from -e is 4.0); raises BenchConfigError naming the bad key."""
    options = params.get("options") or {}
    allowed = {name: spec for name, spec in ARGUMENT_SPEC.items() if name not in NOT_OPTIONS}
    for key in options:
        if key not in allowed:
            raise BenchConfigError(f"options.{key}", f"unknown option; use one of {', '.join(sorted(allowed))}")
    # Without their defaults: a key left out must not reset what the task set at top level.
    spec = {name: {k: v for k, v in allowed[name].items() if k != "default"} for name in options}
    result = ArgumentSpecValidator(spec).validate(dict(options))
    if result.error_messages:
        raise BenchConfigError("options", "; ".join(result.error_messages))
    merged = {k: v for k, v in params.items() if k != "options"}
    merged.update({key: result.validated_parameters[key] for key in options})
    # `raw` options (a number or a list of them): "4", "1,4,16" and [1, 4] all mean numbers.
    for key, kind in (("concurrency", int), ("rate", float)):
        value = merged[key] = number_list(merged.get(key), kind)
        values = value if isinstance(value, list) else [value]
        if value is not None and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise BenchConfigError("options" if key in options else key,
                                   f"{key}: {value!r} is not a number or a list of numbers")
    return merged


def number_list(value, kind):
    """`8`, `"8"`, `"1,4,16"`, `[1, 4]` or `["1", "4"]` -> 8 / [1, 4]; other values pass
    through for BenchConfig to reject with the field's name."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.strip().strip("[]").split(",") if v.strip()]
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            try:
                item = kind(float(item)) if kind is int and float(item).is_integer() else kind(item)
            except ValueError:
                return value
        out.append(item)
    return out[0] if len(out) == 1 else out


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    output_dir = params["output_dir"]
    paths = dict(results_path=os.path.join(output_dir, "results.json"),
                 requests_path=os.path.join(output_dir, "requests.jsonl"),
                 report_path=os.path.join(output_dir, "report.html"))
    try:
        config = BenchConfig(**{k: v for k, v in merge_options(params).items() if k not in MODULE_ONLY})
    except BenchConfigError as exc:
        module.fail_json(msg=f"llm_benchmark option {exc.field}: {exc.message}", **paths)

    if module.check_mode:
        module.exit_json(changed=False, valid=None, invalid_reasons=[], **paths)

    try:  # imported late: check mode and argument errors must not need aiohttp
        import aiohttp  # noqa: F401

        from ansible_collections.llmops.platform.plugins.module_utils.bench.api import run_to_dir
    except ImportError as exc:
        module.fail_json(msg=missing_required_lib("aiohttp"), exception=str(exc), **paths)

    progress_file = params["progress_file"] or os.path.join(output_dir, "progress.log")
    try:
        done = run_to_dir(config, output_dir, progress_file=progress_file)
    except (OSError, ValueError) as exc:  # unreadable dataset/trace/tokenizer
        module.fail_json(msg=f"llm_benchmark: {exc}", **paths)
    summary = done["results"]["summary"]
    written = done["paths"]
    out = dict(changed=True, valid=summary["valid"], invalid_reasons=summary["invalid_reasons"],
               summary=summary, results_path=written["results"],
               requests_path=written["requests"], report_path=written["report"])
    if params["fail_on_invalid"] and not summary["valid"]:
        module.fail_json(msg="benchmark run is invalid: " + "; ".join(summary["invalid_reasons"]),
                         **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
