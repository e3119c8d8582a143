"""`llmops tune TASK [--runtime local|docker|kubernetes] [--output DIR]`: run a sweep."""
from __future__ import annotations

import argparse
import json
import os
import sys


def register(subparsers: "argparse._SubParsersAction") -> None:
    p = subparsers.add_parser("tune", help="find the best vLLM serving configuration for a task file",
                              description="Runs a parameter sweep from an autotuner task file "
                                          "(JSON or YAML; docs/tune.md).")
    p.add_argument("task", help="task file (.json, .yml or .yaml)")
    p.add_argument("--runtime", "--mode", dest="runtime", choices=["local", "docker", "kubernetes"],
                   help="where trial servers run (default: the task's runtime, else local)")
    p.add_argument("--output", "-o", help="output directory (default: reports/sweeps/<task_name>)")
    p.add_argument("--model-source", help="generated:tiny-llama, path:/dir or hf:org/repo (overrides the task)")
    p.add_argument("--model-path", help="directory holding <model.name>/ (the autotuner's --model-path)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--gpus", type=int, default=0, help="GPUs a trial may use (docker device requests)")
    p.add_argument("--port-range", default="19000-19499", help="ports for trial servers (local/docker)")
    p.add_argument("--image", help="container image for the docker/kubernetes runtimes")
    p.add_argument("--mount", action="append", default=[], metavar="SRC:DST",
                   help="docker: extra read-only mount (repeatable), e.g. a prebuilt vLLM venv")
    p.add_argument("--container-python", help="docker: python inside the image (default python3)")
    p.add_argument("--restart", action="store_true", help="discard the journal and start over")
    p.add_argument("--no-default", action="store_true", help="skip the untuned baseline trial")
    p.add_argument("--check", action="store_true", help="validate the task file and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ansible_collections.llmops.platform.plugins.module_utils.tune import api
    from ansible_collections.llmops.platform.plugins.module_utils.tune.errors import TaskError
    from ansible_collections.llmops.platform.plugins.module_utils.tune.lock import LockHeld

    try:
        task = api.load(args.task)
    except TaskError as exc:
        print(f"llmops tune: {args.task}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.task}: ok ({task.strategy}, {task.objective}, {task.grid_size}-point space)")
        return 0
    output = args.output or os.path.join("reports", "sweeps", task.name)
    low, _sep, high = args.port_range.partition("-")
    options: dict = {}
    runtime = args.runtime or task.runtime or "local"
    if runtime in ("local", "docker"):
        options["port_range"] = (int(low), int(high or low))
    if args.image and runtime != "local":
        options["image"] = args.image
    if runtime == "docker":
        options["volumes"] = dict(m.split(":", 1) for m in args.mount)
        if args.container_python:
            options["python"] = args.container_python
    try:
        results = api.tune(task.raw, output, args.runtime, model_source=args.model_source,
                           model_path=args.model_path, runtime_options=options, device=args.device,
                           gpus=args.gpus, include_default=not args.no_default, restart=args.restart,
                           log=lambda line: print(line, flush=True))
    except TaskError as exc:
        print(f"llmops tune: {exc}", file=sys.stderr)
        return 2
    except LockHeld as exc:
        print(f"llmops tune: {exc}", file=sys.stderr)
        return 3
    best = results.get("best")
    print(json.dumps({"best": best and {"id": best["id"], "params": best["params"], "value": best["value"]},
                      "verdict": (results.get("verdict") or {}).get("headline"),
                      "trials": len(results["trials"]), "stop_reason": results["stop_reason"],
                      **results["paths"]}, indent=2))
    return 0 if best else 1
