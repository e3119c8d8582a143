#!/usr/bin/env python3
"""Router policies in front of two unequal fixture replicas: E2E/TTFT p50, p95, p99 per policy.

The compare playbook's unequal fleet, simulated: the fake OpenAI server
(tests/fakes/fake_openai.py) as replica 0 with 2 slots and replica 1 with 16 (vLLM's
max_num_seqs, which the router is told, as the router role does), each admitting a request
at its next step (`--admit-ms` in `waiting` first, as vLLM's scheduler does) and slowing
every token by `--batch-itl-ms` per other running sequence (a CPU decode step grows with the
batch). The real router (apps/router, create_app) runs in the same process and event loop,
restarted for every run like compare.yml restarts it per arm; the client sends the routing
benchmark's shape: streaming chat, concurrency 10, 100 requests, 64 output tokens.
Policies run interleaved over `--repeats`. Numbers are about the routing policy against a
known fixture, never about a model.

`--router-src DIR` imports llmops_router from DIR (another checkout's apps/router, e.g.
`git archive main apps/router | tar -x -C /tmp/before`) to measure a change before/after.

Ports: LLMOPS_TEST_BASE_PORT (default 25000) + 0, 1 (replicas) and + 10 (router).

  nice -n 15 python bench/router_tails.py --repeats 5 [--json out.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time

from bench_common import ROOT, fake_openai, load_note

_SRC = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--router-src"), None)
sys.path.insert(0, os.path.join(ROOT, "apps", "common"))
sys.path.insert(0, _SRC or os.path.join(ROOT, "apps", "router"))
import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from llmops_common.service import SERVICE  # noqa: E402
from llmops_router.config import parse_config  # noqa: E402
from llmops_router.server import create_app  # noqa: E402

POLICIES = ("round_robin", "least_inflight", "queue_aware", "prefix_aware")


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = max(0, min(len(data) - 1, int(round(q / 100.0 * len(data) + 0.5)) - 1))
    return data[k]


async def one(session: aiohttp.ClientSession, url: str, prompt: str, tokens: int) -> dict:
    body = {"model": "fixture", "stream": True, "max_tokens": tokens,
            "messages": [{"role": "user", "content": prompt}]}
    sent = time.perf_counter()
    first = None
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        replica = resp.headers.get("X-Llmops-Replica", "?")
        async for line in resp.content:
            if first is None and line.startswith(b"data: {") and b'"content": "t' in line:
                first = time.perf_counter() - sent
    return {"e2e": time.perf_counter() - sent, "ttft": first or float("nan"), "replica": replica,
            "ok": resp.status == 200}


async def run_once(policy: str, args: argparse.Namespace, seed: int) -> dict:
    base = int(os.environ.get("LLMOPS_TEST_BASE_PORT", "25000"))
    fakes = [fake_openai.FakeOpenAI(f"r{i}", ttft=args.ttft_ms / 1000, itl=args.itl_ms / 1000, slots=slots,
                                    admit_s=args.admit_ms / 1000, batch_itl=args.batch_itl_ms / 1000)
             for i, slots in enumerate(args.slots)]
    runners = [(await fake_openai.start(fake, base + i))[0] for i, fake in enumerate(fakes)]
    config = parse_config({
        "policy": policy, "port": base + 10, "poll_interval_s": args.poll_s, "health_interval_s": 1.0,
        "models": [{"name": "fixture", "replicas": [
            {"name": f"r{i}", "url": fake.url, "max_num_seqs": slots}
            for i, (fake, slots) in enumerate(zip(fakes, args.slots))]}]})
    app = create_app(config)
    router = app[SERVICE]
    learned: dict[str, set] = {f"r{i}": set() for i in range(len(fakes))}
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", base + 10).start()
    url = f"http://127.0.0.1:{base + 10}"
    rng = random.Random(seed)
    prompts = [" ".join(f"w{rng.randrange(1000)}" for _ in range(max(8, int(rng.gauss(100, 20)))))
               for _ in range(args.requests)]
    queue: asyncio.Queue = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    results: list[dict] = []
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            results.append(await one(session, url, queue.get_nowait(), args.tokens))

    async def watch() -> None:  # the capacities the router used, sampled every 50 ms
        while True:
            for rep in router.replicas:
                learned[rep.name].add(rep.learned_capacity)
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            await asyncio.gather(*(worker(session) for _ in range(args.concurrency)))
    finally:
        wall = time.perf_counter() - started
        watcher.cancel()
        await runner.cleanup()
        for r in runners:
            await r.cleanup()
    e2e = [r["e2e"] * 1000 for r in results]
    ttft = [r["ttft"] * 1000 for r in results]
    share = {f.name: sum(r["replica"] == f.name for r in results) for f in fakes}
    tail = sorted(results, key=lambda r: -r["e2e"])[: max(1, len(results) // 20)]
    return {"policy": policy, "seed": seed, "wall_s": wall, "requests_per_s": len(results) / wall,
            "errors": sum(not r["ok"] for r in results),
            "e2e_p50": pct(e2e, 50), "e2e_p95": pct(e2e, 95), "e2e_p99": pct(e2e, 99),
            "ttft_p50": pct(ttft, 50), "ttft_p95": pct(ttft, 95), "ttft_p99": pct(ttft, 99),
            "share": share, "slowest_5pct_on": {f.name: sum(r["replica"] == f.name for r in tail) for f in fakes},
            "max_inflight": {f.name: f.max_inflight for f in fakes},
            "learned_capacities": {k: sorted(c for c in v if c is not None) for k, v in learned.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", default=",".join(POLICIES[:3]))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=123, help="prompt seed of the first repeat (+1 per repeat)")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--slots", default="2,16", help="slots (max_num_seqs) per replica")
    parser.add_argument("--ttft-ms", type=float, default=30.0)
    parser.add_argument("--itl-ms", type=float, default=4.0)
    parser.add_argument("--batch-itl-ms", type=float, default=0.5)
    parser.add_argument("--admit-ms", type=float, default=20.0)
    parser.add_argument("--poll-s", type=float, default=1.0, help="router poll_interval_s (compare runs: 1)")
    parser.add_argument("--json", help="write every run's row here")
    parser.add_argument("--router-src", help="import llmops_router from this directory instead")
    args = parser.parse_args()
    args.slots = [int(s) for s in args.slots.split(",")]
    policies = args.policies.split(",")
    import llmops_router  # noqa: PLC0415
    print(f"start: {load_note()}; router from {os.path.dirname(llmops_router.__file__)}", file=sys.stderr)
    rows = []
    for k in range(args.repeats):
        for policy in policies if k % 2 == 0 else policies[::-1]:
            row = asyncio.run(run_once(policy, args, seed=args.seed + k))
            rows.append(row)
            print(json.dumps({key: (round(v, 1) if isinstance(v, float) else v) for key, v in row.items()}),
                  file=sys.stderr)
    print(f"end: {load_note()}", file=sys.stderr)
    print("| policy | E2E p50 (ms) | E2E p95 | E2E p99 | TTFT p50 | TTFT p99 | req/s | share r0/r1 |")
    print("|---|---|---|---|---|---|---|---|")
    for policy in policies:
        mine = [r for r in rows if r["policy"] == policy]

        def cell(key: str, rows=mine) -> str:
            vals = [r[key] for r in rows]
            return f"{statistics.median(vals):.0f} [{min(vals):.0f}-{max(vals):.0f}]"
        shares = [r["share"] for r in mine]
        total = {name: sum(s[name] for s in shares) for name in shares[0]}
        print(f"| {policy} | {cell('e2e_p50')} | {cell('e2e_p95')} | {cell('e2e_p99')} | {cell('ttft_p50')} "
              f"| {cell('ttft_p99')} | {cell('requests_per_s')} | "
              f"{'/'.join(str(v) for v in total.values())} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
