#!/usr/bin/env python3
"""Client vs server: our TTFT/E2E means against vLLM's own histograms, token totals exact.

Starts real vLLM CPU serving the generated tiny Llama (plugins/module_utils/local_process.py,
like the vllm role; port in 20500-20999), runs the engine twice (closed loop, then Poisson)
with /metrics scraped before and after each step, prints client mean vs server mean and the
generation_tokens_total delta vs the client's usage total, then stops the server.

Goals (issue 4): client mean TTFT and E2E within 3% of the server's (client >= server);
output tokens exactly equal to vllm:generation_tokens_total's delta.

  python bench/server_agreement.py [--requests 48] [--keep-home DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile

from bench_common import ROOT, free_port, load_note

from ansible_collections.llmops.platform.plugins.module_utils import local_process
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig
from ansible_collections.llmops.platform.plugins.module_utils.bench.engine import Engine
from ansible_collections.llmops.platform.plugins.module_utils.model_source import resolve
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import entry_for, local_server


def serving_python() -> str:
    path = subprocess.run([os.path.join(ROOT, "scripts", "venv.sh"), "path", "serving"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(path, "bin", "python")


def report(label: str, summary: dict) -> dict:
    server = summary.get("server") or {}
    row = {"label": label}
    for key in ("ttft_ms", "e2e_ms"):
        c, s = summary[key]["mean"], (server.get(key) or {}).get("mean")
        row[key] = {"client": c, "server": s, "ratio": (c / s) if c and s else None}
    row["output_tokens"] = {"client": summary["tokens"]["output_total"],
                            "server": server.get("output_tokens")}
    row["queue_ms_server"] = (server.get("queue_ms") or {}).get("mean")
    row["disagreements"] = summary.get("server_disagreements")
    row["valid"] = summary["valid"]
    for key in ("ttft_ms", "e2e_ms"):
        r = row[key]
        ok = r["ratio"] is not None and 1.0 <= r["ratio"] <= 1.03
        print(f"{label:22s} {key:7s} client mean {r['client']:9.2f} ms  server mean "
              f"{r['server'] if r['server'] is not None else float('nan'):9.2f} ms  ratio "
              f"{r['ratio'] if r['ratio'] else float('nan'):.4f}  goal [1.00, 1.03] "
              f"{'MET' if ok else 'NOT MET'}")
    t = row["output_tokens"]
    print(f"{label:22s} tokens  client usage {t['client']}  server delta {t['server']}  "
          f"{'EQUAL (MET)' if t['client'] == t['server'] else 'DIFFERENT (NOT MET)'}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--home", default=os.path.join(tempfile.gettempdir(), "llmops-bench-agreement"))
    parser.add_argument("--ready-timeout", type=float, default=900)
    args = parser.parse_args()
    model = resolve("generated:tiny-llama", os.path.join(args.home, "models"))["path"]
    port = free_port(20700)
    # The server the vllm role starts on the local target (plugins/module_utils/vllm_server.py).
    entry = entry_for("generated:tiny-llama", "tiny", {"block_size": 32, "dtype": "bfloat16",
                                                       "max_model_len": 1024, "max_num_seqs": 16})
    server = local_server(entry, {"kind": "local", "device": "cpu", "kvcache_space_gib": 1}, model,
                          serving_python(), port=port)
    spec = local_process.ProcessSpec(
        name="bench-agreement-vllm", argv=server["argv"],
        state_dir=os.path.join(args.home, "run"), log_dir=os.path.join(args.home, "logs"),
        env=server["env"], ready_url=f"http://127.0.0.1:{port}/health",
        port=port)
    rows = []
    try:
        local_process.start(spec)
        ok, why = local_process.wait_ready(spec, [f"http://127.0.0.1:{port}/v1/models"],
                                           args.ready_timeout)
        if not ok:
            print(f"vLLM did not start: {why}\n{local_process.log_tail(spec.log_file)}")
            return
        base = dict(base_url=f"http://127.0.0.1:{port}", model="tiny", max_tokens=16,
                    prompt_tokens=32, tokenizer=model, num_requests=args.requests,
                    request_timeout_s=120, run_timeout_s=900)
        for label, extra in (("closed loop, 4 streams", {"concurrency": 4, "warmup_requests": 4}),
                             ("poisson 2/s", {"profile": "poisson", "rate": 2.0,
                                              "max_dispatch_lag_ms": 50.0})):
            engine = Engine(BenchConfig(**base, **extra))
            asyncio.run(engine.run())
            rows.append(report(label, engine.steps[0].summary))
    finally:
        local_process.stop(spec)
    print(f"\n{load_note()}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
