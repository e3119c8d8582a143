#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin Ansible face of the tuner in module_utils/tune: options in, results out.
DOCUMENTATION = r"""
---
module: llm_sweep
short_description: Find the best vLLM serving configuration for a workload (grid, random or Bayesian search)
version_added: "0.1.0"
description:
  - Reads an autotuner task file (JSON or YAML; parameters, strategy, objective, benchmark)
    or an inline task, then for each configuration starts a vLLM server (local process, Docker
    container or Kubernetes Deployment), waits until it is ready, benchmarks it at every traffic
    scenario and concurrency, scores it, and removes it.
  - Failed trials (crash, OOM, readiness timeout, benchmark errors, hard SLO misses) are recorded as
    infeasible with their reason and log tail; the sweep goes on.
  - One sweep per O(output_dir) at a time; a second run there fails naming the first run's pid and start
    time, and the lock of a run that died is taken over (said in C(run_lock) and the log).
  - A journal in O(output_dir) makes the sweep resumable; a re-run keeps every finished trial and
    reports C(changed=false) when nothing new was measured.
  - Writes C(sweep.json), C(trials.csv), C(report.html) and C(best.yml) (an C(llm_models) vars snippet
    deployable with C(ansible-playbook site.yml --tags serving -e @best.yml)).
options:
  task_file:
    description: Path of the task file (C(.json), C(.yml) or C(.yaml)). Exclusive with O(task).
    type: path
  task:
    description: The task as a mapping (same schema as the file). Exclusive with O(task_file).
    type: dict
  output_dir:
    description: Where outputs and the journal go; default is O(report_root)/sweeps/<task_name>.
    type: path
  report_root:
    description: Reports directory used when O(output_dir) is not given.
    type: path
  runtime:
    description: Where trial servers run; default the task's C(runtime), else C(local).
    type: str
    choices: [local, docker, kubernetes]
  model_source:
    description: Model to tune, as C(generated:tiny-llama), C(path:/dir) or C(hf:org/repo); overrides the task's model.
    type: str
  model_path:
    description: Directory holding C(<model.name>/) for task files whose C(model) names a model directory.
    type: path
  model_name:
    description: Name of the C(llm_models) entry the best configuration is written for.
    type: str
  models:
    description: The current C(llm_models); the snippet then holds the whole list with the tuned entry updated.
    type: list
    elements: dict
  model:
    description:
      - The tuned C(llm_models) entry, normalised (C(llm_models_normalized)). Each trial serves it as the
        vllm role does (source, revision, env, GPUs) with the trial's flags. Without it, an entry is built
        from O(model_source) and O(model_name).
    type: dict
  target:
    description:
      - Where and how the vllm role runs servers (C(vllm_server_target), set by the vllm role's
        C(tasks_from=target.yml)). Trials are built from it by the same code as the role's servers;
        the kubernetes runtime needs it (a trial pod is the model's Deployment pod).
      - Without it, a CPU local target.
    type: dict
  device:
    description: C(cpu) or C(gpu); decides the known-infeasible regions, for example CPU block sizes.
    type: str
    choices: [cpu, gpu]
    default: cpu
  gpus:
    description: GPUs a trial may use (0 on CPU). Throughput is then reported per GPU.
    type: int
    default: 0
  base_args:
    description:
      - vLLM args every trial starts from (platform defaults and the model's own vllm_args).
      - Omitted on C(cpu), the CPU defaults C(dtype=bfloat16, block_size=32) are used.
    type: dict
  include_default:
    description: Also measure the untuned configuration, for the report's best-vs-default comparison.
    type: bool
    default: true
  restart:
    description: Discard the journal and measure everything again.
    type: bool
    default: false
  runtime_options:
    description:
      - Runtime settings. For local, C(python) (serving venv), C(state_dir), C(log_dir), C(model_cache_dir),
        C(port_range). For docker, C(image), C(gpu_ids), C(port_range).
        For kubernetes, C(namespace), C(render_dir), C(kubeconfig), C(apply) (image, volumes and the rest
        of the pod come from O(target)).
    type: dict
    default: {}
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Tune the served model
  llmops.platform.llm_sweep:
    task_file: examples/simple_task.json
    report_root: "{{ platform_reports_dir }}"
    model_source: generated:tiny-llama
    runtime_options:
      python: /venvs/serving/bin/python
      port_range: [8400, 8499]
"""

RETURN = r"""
best:
  description: The best trial (id, params, value, metrics), or null when no trial was feasible.
  returned: always
  type: dict
trials:
  description: Number of search trials in the sweep (resumed ones included).
  returned: always
  type: int
new_trials:
  description: Trials measured by this run (0 when everything came from the journal).
  returned: always
  type: int
infeasible:
  description: Ids and reasons of infeasible trials.
  returned: always
  type: list
stop_reason:
  description: Why the sweep ended (max_iterations, early stop, space exhausted).
  returned: always
  type: str
paths:
  description: results (sweep.json), csv, report (report.html) and best_vars (best.yml).
  returned: always
  type: dict
verdict:
  description:
    - Best trial vs the default configuration. C(kind) is C(better) (better beyond run-to-run noise, best.yml
      deploys it), C(no_change) (best.yml keeps the default), C(unjudged) (one run per trial, no noise estimate;
      the better mean is taken) or C(not_compared); C(headline) says it in one sentence.
  returned: always
  type: dict
run_lock:
  description:
    - The output directory's run lock (path, this run's holder record) and, when an earlier run had died
      holding it, C(taken_over) (its pid and start) and a C(note) saying so.
  returned: always
  type: dict
best_snippet:
  description: The llm_models vars written to best.yml.
  returned: always
  type: dict
"""

import os  # noqa: E402 - Ansible modules keep the YAML docs first

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = dict(
    task_file=dict(type="path"),
    task=dict(type="dict"),
    output_dir=dict(type="path"),
    report_root=dict(type="path"),
    runtime=dict(type="str", choices=["local", "docker", "kubernetes"]),
    model_source=dict(type="str"),
    model_path=dict(type="path"),
    model_name=dict(type="str"),
    models=dict(type="list", elements="dict"),
    model=dict(type="dict"),
    target=dict(type="dict"),
    device=dict(type="str", choices=["cpu", "gpu"], default="cpu"),
    gpus=dict(type="int", default=0),
    base_args=dict(type="dict"),
    include_default=dict(type="bool", default=True),
    restart=dict(type="bool", default=False),
    runtime_options=dict(type="dict", default={}),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[("task_file", "task")],
                           required_one_of=[("task_file", "task"), ("output_dir", "report_root")])
    p = module.params
    from ansible_collections.llmops.platform.plugins.module_utils.tune import api
    from ansible_collections.llmops.platform.plugins.module_utils.tune.errors import TaskError
    from ansible_collections.llmops.platform.plugins.module_utils.tune.lock import LockHeld

    try:
        task = api.load(p["task_file"] or p["task"])
    except TaskError as exc:
        module.fail_json(msg=f"sweep task {exc.field}: {exc.message}", field=exc.field)
    output_dir = p["output_dir"] or os.path.join(p["report_root"], "sweeps", task.name)
    if module.check_mode:
        module.exit_json(changed=False, task_name=task.name, grid_size=task.grid_size, output_dir=output_dir,
                         msg="check mode: the task is valid; no server was started")
    options = dict(p["runtime_options"])
    if "port_range" in options:
        options["port_range"] = tuple(int(x) for x in options["port_range"])
    log: list = []
    try:
        results = api.tune(task.raw, output_dir, p["runtime"], model_source=p["model_source"],
                           model_path=p["model_path"], runtime_options=options, device=p["device"],
                           gpus=p["gpus"], base_args=p["base_args"], include_default=p["include_default"],
                           restart=p["restart"], model_name=p["model_name"], models=p["models"],
                           model=p["model"], target=p["target"], log=log.append)
    except TaskError as exc:
        module.fail_json(msg=f"sweep {exc.field}: {exc.message}", field=exc.field, log=log)
    except LockHeld as exc:
        module.fail_json(msg=f"sweep refused: {exc}", lock_holder=exc.holder, log=log)
    except Exception as exc:  # noqa: BLE001 - journal mismatch, runtime unavailable, ...
        module.fail_json(msg=f"sweep failed: {type(exc).__name__}: {exc}", log=log)
    best = results.get("best")
    module.exit_json(
        changed=results["new_trials"] > 0,
        best=best and {k: best.get(k) for k in ("id", "params", "value", "metrics")},
        trials=len(results["trials"]), new_trials=results["new_trials"], stop_reason=results["stop_reason"],
        infeasible=[{"id": t["id"], "kind": t["failure"]["kind"], "reason": t["failure"]["reason"][:300]}
                    for t in results["trials"] if t.get("failure")],
        run_lock=results.get("run_lock"), verdict=results.get("verdict"),
        overhead=results.get("overhead"), paths=results["paths"], best_snippet=results["best_snippet"],
        log=log)


if __name__ == "__main__":
    main()
