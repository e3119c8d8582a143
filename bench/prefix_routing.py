#!/usr/bin/env python3
"""Router policies on a shared-prefix workload: prefix-cache hit rate and TTFT side by side.

Starts 2 vLLM CPU replicas of the generated tiny Llama with prefix caching on and a small
KV cache (`--num-blocks`, so one replica cannot hold every group's system prompt: the
situation where placement matters), then for each policy (round_robin, queue_aware,
prefix_aware; two rounds, the order reversed in the second) starts a fresh router, resets
both replicas' prefix caches (vLLM's dev endpoint), sends warmup requests, and measures the
engine's shared_prefix workload through the router: client TTFT p50/p95 and the prefix-cache
hit rate from each replica's /metrics counter deltas (vllm:prefix_cache_hits /
vllm:prefix_cache_queries, or the older names: llmops_router.vllm_metrics.parse_prefix_cache).

Ports: LLMOPS_TEST_BASE_PORT (default 21000) + 0, 1 (vLLM) and + 10 (router). Run it under
the heavy lock:

  flock /tmp/llmops-heavy.lock nice -n 10 python bench/prefix_routing.py [--requests 160]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench_common import ROOT, load_note

from ansible_collections.llmops.platform.plugins.module_utils import local_process
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig
from ansible_collections.llmops.platform.plugins.module_utils.bench.engine import Engine
from ansible_collections.llmops.platform.plugins.module_utils.model_source import resolve
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import entry_for, local_server

sys.path.insert(0, os.path.join(ROOT, "apps", "router"))
sys.path.insert(0, os.path.join(ROOT, "apps", "common"))
from llmops_router.vllm_metrics import parse_prefix_cache  # noqa: E402

POLICIES = ("round_robin", "queue_aware", "prefix_aware")
MODEL = "tiny"


def serving_python() -> str:
    path = subprocess.run([os.path.join(ROOT, "scripts", "venv.sh"), "path", "serving"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(path, "bin", "python")


def http(url: str, method: str = "GET", timeout: float = 10.0) -> bytes:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return resp.read()


def counters(url: str) -> tuple[float, float]:
    parsed = parse_prefix_cache(http(url + "/metrics").decode())
    if parsed is None or parsed.queries is None:
        raise RuntimeError(f"{url}: no prefix-cache counters in /metrics")
    return parsed.queries, parsed.hits or 0.0


def reset_caches(urls: list[str]) -> None:
    for url in urls:
        for _attempt in range(20):  # fails while blocks are held by running requests
            if json.loads(http(url + "/reset_prefix_cache", "POST")).get("success"):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{url}: prefix cache reset did not succeed")


class Router:
    """The router as its own process (like the router role starts it), one per policy run."""

    def __init__(self, policy: str, port: int, replicas: list[str], home: str) -> None:
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        config = {"host": "127.0.0.1", "port": port, "policy": policy, "poll_interval_s": 0.5,
                  "models": [{"name": MODEL, "replicas": [{"name": f"vllm-{i}", "url": u}
                                                          for i, u in enumerate(replicas)]}]}
        path = os.path.join(home, f"router-{policy}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(os.path.join(ROOT, "apps", d) for d in ("router", "common")))
        self.proc = subprocess.Popen([sys.executable, "-m", "llmops_router", "--config", path,
                                      "--log-level", "WARNING"], env=env, start_new_session=True,
                                     stdout=open(path[:-5] + ".log", "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = json.loads(http(self.url + "/health", timeout=1))
                if health["models"][MODEL]["healthy"] == len(replicas):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"router ({policy}) not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run_policy(policy: str, args, replicas: list[str], home: str, tokenizer: str) -> dict:
    router = Router(policy, args.base_port + 10, replicas, home)
    try:
        reset_caches(replicas)
        base = dict(base_url=router.url, model=MODEL, dataset="shared_prefix", prefix_groups=args.groups,
                    prefix_tokens=args.prefix_tokens, prompt_tokens=args.question_tokens,
                    max_tokens=args.max_tokens, tokenizer=tokenizer, concurrency=args.concurrency,
                    seed=args.seed, server_metrics=False, request_timeout_s=120, run_timeout_s=300)
        # Warmup: the same groups' prefixes with other questions (salt "w" in the engine).
        warm = Engine(BenchConfig(**{**base, "num_requests": args.warmup}))
        asyncio.run(warm.run())
        before = [counters(u) for u in replicas]
        engine = Engine(BenchConfig(**{**base, "num_requests": args.requests}))
        asyncio.run(engine.run())
        after = [counters(u) for u in replicas]
    finally:
        router.stop()
    summary = engine.steps[0].summary
    queries = [a[0] - b[0] for a, b in zip(after, before)]
    hits = [a[1] - b[1] for a, b in zip(after, before)]
    return {
        "policy": policy,
        "hit_rate": sum(hits) / sum(queries) if sum(queries) else None,
        "hit_rate_per_replica": [h / q if q else None for h, q in zip(hits, queries)],
        "prompt_token_share": [q / sum(queries) if sum(queries) else None for q in queries],
        "ttft_p50_ms": summary["ttft_ms"]["median"],
        "ttft_p95_ms": summary["ttft_ms"]["p95"],
        "e2e_p50_ms": summary["e2e_ms"]["median"],
        "requests_per_s": summary["throughput"]["requests_per_s"],
        "failed": summary["requests"]["failed"],
        "valid": summary["valid"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=160, help="measured requests per policy run")
    parser.add_argument("--warmup", type=int, default=64, help="warmup requests per policy run (not measured)")
    parser.add_argument("--groups", type=int, default=32, help="shared system prompts")
    parser.add_argument("--prefix-tokens", type=int, default=480)
    parser.add_argument("--question-tokens", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2,
                        help="each policy once per round; order reversed every other round")
    parser.add_argument("--num-blocks", type=int, default=320,
                        help="KV blocks per replica (block size 32): about 2/3 of all groups' prefixes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("LLMOPS_TEST_BASE_PORT", "21000")))
    parser.add_argument("--home", default=os.path.join(tempfile.gettempdir(), "llmops-bench-prefix"))
    parser.add_argument("--ready-timeout", type=float, default=420)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    # `timeout` sends SIGTERM: leave through `finally`, which stops the vLLM replicas.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.makedirs(args.home, exist_ok=True)
    started = time.monotonic()
    load_before = load_note()
    model = resolve("generated:tiny-llama", os.path.join(args.home, "models"))["path"]
    vllm_args = {"block_size": 32, "dtype": "bfloat16", "max_model_len": 1024, "max_num_seqs": 16,
                 "enable_prefix_caching": True, "num_gpu_blocks_override": args.num_blocks}
    entry = entry_for("generated:tiny-llama", MODEL, vllm_args)
    python = serving_python()
    specs, replicas = [], []
    for i in range(2):
        port = args.base_port + i
        server = local_server(entry, {"kind": "local", "device": "cpu", "kvcache_space_gib": 1}, model, python,
                              port=port)
        specs.append(local_process.ProcessSpec(
            name=f"bench-prefix-vllm-{i}", argv=server["argv"], state_dir=os.path.join(args.home, "run"),
            log_dir=os.path.join(args.home, "logs"), env={**server["env"], "VLLM_SERVER_DEV_MODE": "1"},
            ready_url=f"http://127.0.0.1:{port}/health", port=port))
        replicas.append(f"http://127.0.0.1:{port}")
    rows = []
    try:
        for spec in specs:
            local_process.start(spec)
        for spec in specs:
            ok, why = local_process.wait_ready(spec, [f"http://127.0.0.1:{spec.port}/v1/models"], args.ready_timeout)
            if not ok:
                print(f"vLLM {spec.name} did not start: {why}\n{local_process.log_tail(spec.log_file)}")
                return 1
        ready_s = time.monotonic() - started
        for rnd in range(args.rounds):
            for policy in (POLICIES if rnd % 2 == 0 else tuple(reversed(POLICIES))):
                row = {"round": rnd + 1, **run_policy(policy, args, replicas, args.home, model)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for spec in specs:
            local_process.stop(spec)
    print(f"\n2 vLLM CPU replicas ready in {ready_s:.0f} s; {args.groups} groups x {args.prefix_tokens}-token "
          f"system prompt + {args.question_tokens}-token question, {args.max_tokens} output tokens, "
          f"concurrency {args.concurrency}, {args.requests} measured (+{args.warmup} warmup) requests per run, "
          f"{args.num_blocks} KV blocks of 32 tokens per replica")
    print(f"{'policy':14s} {'hit rate (runs)':>22s} {'TTFT p50 ms':>18s} {'TTFT p95 ms':>18s} {'req/s':>12s}"
          "  token share r0/r1")

    def fmt(mine: list, key: str, spec: str) -> str:
        return " / ".join(format(r[key], spec) if r[key] is not None else "-" for r in mine)

    for policy in POLICIES:
        mine = [r for r in rows if r["policy"] == policy]
        share = " ; ".join("/".join(f"{s:.2f}" for s in r["prompt_token_share"]) for r in mine)
        print(f"{policy:14s} {fmt(mine, 'hit_rate', '.1%'):>22s} {fmt(mine, 'ttft_p50_ms', '.1f'):>18s} "
              f"{fmt(mine, 'ttft_p95_ms', '.1f'):>18s} {fmt(mine, 'requests_per_s', '.1f'):>12s}  {share}")
    print(f"load before: {load_before}; after: {load_note()}; total {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)
    return 0 if all(r["valid"] and not r["failed"] for r in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
