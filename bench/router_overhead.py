#!/usr/bin/env python3
"""Proxy overhead: added TTFT (p50/p99) versus going direct, and the most concurrent streams
held with no errors, for the llmops router, the llmops gateway and vllm-router side by side,
in one run.

    python bench/router_overhead.py [--vllm-router-venv DIR | --vllm-router PATH] [--python PY]
                                    [--baseline-apps OTHER_CHECKOUT/apps]

--vllm-router-venv creates DIR (once) and pip-installs vllm-router at the version pinned in
roles/platform_defaults/defaults/main/versions.yml (vllm_router) into it. --python runs our
router and gateway (default: this interpreter; they need what the serving venv has).

Everything runs on 127.0.0.1 in ports 19800-19819: the fake OpenAI server with a fixed
latency (tests/fakes/fake_openai.py, own process; its timings are set, so only the proxies'
overhead is measured), each proxy (own process; the gateway straight in front of the fake),
and the load generator (this process). Every phase is bounded in request count and time.
Needs aiohttp and prometheus_client.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.abspath(os.path.join(HERE, "..", "apps"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fakes"))
import fake_openai  # noqa: E402

BACKEND_PORT, LLMOPS_PORT, VR_PORT, VR_PROM_PORT, GATEWAY_PORT = 19800, 19801, 19802, 19803, 19804
POLICY_PORT = 19810  # routers with the other --policies: 19810.. (and 19814.. for --baseline-apps)
MODEL = "fixture"


def pinned_vllm_router() -> str:
    path = os.path.join(HERE, "..", "roles", "platform_defaults", "defaults", "main", "versions.yml")
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip().startswith("vllm_router:"):
                return line.split(":", 1)[1].strip().strip('"')
    raise RuntimeError(f"no vllm_router pin in {path}")


def ensure_vllm_router(venv: str) -> str:
    """Scratch venv with the pinned vllm-router; returns its executable."""
    exe = os.path.join(venv, "bin", "vllm-router")
    version = pinned_vllm_router()
    marker = os.path.join(venv, f".vllm-router-{version}")
    if not os.path.exists(marker):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", f"vllm-router=={version}"], check=True)
        open(marker, "w").close()
    return exe


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- processes ---------------------------------------------------------------------------
def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def start(argv: list[str], log: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# -- load ----------------------------------------------------------------------------------
BODY = json.dumps({"model": MODEL, "stream": True, "max_tokens": 8,
                   "messages": [{"role": "user", "content": "hello"}]}).encode()


def _has_content(line: bytes) -> bool:
    """A token, not the role-only chunk that opens a chat stream."""
    choices = json.loads(line[6:]).get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content"))


async def one_stream(session: aiohttp.ClientSession, url: str, timeout: float) -> tuple[float | None, str | None]:
    """(ttft seconds, error). TTFT = request sent -> first content chunk received."""
    start = time.perf_counter()
    ttft = None
    try:
        async with session.post(url, data=BODY, headers={"Content-Type": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                return None, f"http {resp.status}"
            done = False
            async for line in resp.content:
                if ttft is None and line.startswith(b"data: {") and _has_content(line):
                    ttft = time.perf_counter() - start
                if line.startswith(b"data: [DONE]"):
                    done = True
            return (ttft, None) if done and ttft is not None else (ttft, "stream ended early")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        return ttft, type(exc).__name__


async def ttft_run(base: str, n: int, concurrency: int) -> list[float]:
    url = base + "/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=0)
    out: list[float] = []
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = list(range(n))

        async def worker():
            while queue:
                queue.pop()
                ttft, err = await one_stream(session, url, 30)
                if err:
                    errors.append(err)
                elif ttft is not None:
                    out.append(ttft)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        raise RuntimeError(f"{base}: {len(errors)} errors in the TTFT run, e.g. {errors[0]}")
    return out


async def streams_level(base: str, n: int, timeout: float) -> tuple[int, list[str], float]:
    """Open n streams at once and hold them; (completed ok, errors, wall seconds)."""
    url = base + "/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    start = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:
        results = await asyncio.gather(*(one_stream(session, url, timeout) for _ in range(n)))
    errors = [e for _, e in results if e]
    return n - len(errors), errors, time.monotonic() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def set_backend(cfg: dict) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{BACKEND_PORT}/fixture/config", data=json.dumps(cfg).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vllm-router", default=shutil.which("vllm-router"),
                        help="vllm-router executable (pip install vllm-router==0.1.17 in a scratch venv)")
    parser.add_argument("--vllm-router-venv", help="create/reuse this venv with the pinned vllm-router")
    parser.add_argument("--ttft-ms", type=float, default=20.0, help="fake backend's time to first token")
    parser.add_argument("--requests", type=int, default=300, help="requests per target per TTFT round")
    parser.add_argument("--rounds", type=int, default=3, help="TTFT rounds (targets interleaved per round)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--levels", default="250,500,1000,1500,2000,3000", help="concurrent stream counts to try")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs the llmops router and gateway")
    parser.add_argument("--baseline-apps", help="also run the router and gateway from this apps/ folder "
                        "(another checkout, e.g. before a change) in the same rounds")
    parser.add_argument("--policies", default="queue_aware,prefix_aware,round_robin",
                        help="router policies to measure, one router each; the first is 'llmops-router'")
    parser.add_argument("--log-dir", default="/tmp/router-bench")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    raise_nofile()
    os.makedirs(args.log_dir, exist_ok=True)
    if args.vllm_router_venv:
        args.vllm_router = ensure_vllm_router(args.vllm_router_venv)

    procs: list[subprocess.Popen] = []
    targets = {"direct": f"http://127.0.0.1:{BACKEND_PORT}"}
    pids: dict[str, int] = {}  # proxy -> its process, for CPU time per request
    notes: dict[str, str] = {}
    backend_args = ["--ttft-ms", str(args.ttft_ms), "--itl-ms", "5", "--model", MODEL]
    with contextlib.ExitStack() as stack:
        stack.enter_context(fake_openai.running(backend_args, port=BACKEND_PORT, log=f"{args.log_dir}/backend.log"))
        stack.callback(lambda: [stop(proc) for proc in reversed(procs)])
        backend = f"http://127.0.0.1:{BACKEND_PORT}"
        # Our router and gateway, and with --baseline-apps the same pair from another checkout
        # (before a change), measured in the same interleaved rounds.
        builds = [("", APPS, 0)] + ([(" (baseline)", os.path.abspath(args.baseline_apps), 4)]
                                    if args.baseline_apps else [])
        # The router gets two replicas (the same backend twice), so every policy has a choice
        # to make; the first policy listed is "llmops-router", the others are named by policy.
        policies = args.policies.split(",")
        replicas = [{"name": f"backend-{k}", "url": backend} for k in "ab"]
        for suffix, apps, offset in builds:
            others = [("router", POLICY_PORT + offset + k, policy, f" {policy}")
                      for k, policy in enumerate(policies[1:])]
            pairs = [("router", LLMOPS_PORT + offset, policies[0], "")] + others + \
                [("gateway", GATEWAY_PORT + offset, None, "")]
            for name, port, policy, tag in pairs:
                config = ({"host": "127.0.0.1", "port": port, "policy": policy, "poll_interval_s": 1,
                           "models": [{"name": MODEL, "replicas": replicas}]}
                          if name == "router" else {"host": "127.0.0.1", "port": port, "upstream_url": backend})
                label = f"llmops-{name}{tag}{suffix}"
                cfg_path = f"{args.log_dir}/{label.replace(' ', '-').replace('(', '').replace(')', '')}.json"
                with open(cfg_path, "w") as handle:
                    json.dump(config, handle)
                pythonpath = os.pathsep.join(os.path.join(apps, d) for d in (name, "common"))
                proc = start([args.python, "-m", f"llmops_{name}", "--config", cfg_path, "--log-level", "WARNING"],
                             cfg_path[:-5] + ".log", env={"PYTHONPATH": pythonpath})
                procs.append(proc)
                wait_http(f"http://127.0.0.1:{port}/health", 30, proc)
                targets[label] = f"http://127.0.0.1:{port}"
                pids[label] = proc.pid

        if not args.vllm_router:
            notes["vllm-router"] = "not measured: no vllm-router executable (pass --vllm-router)"
        else:
            vr = start([args.vllm_router, "--host", "127.0.0.1", "--port", str(VR_PORT),
                        "--worker-urls", f"http://127.0.0.1:{BACKEND_PORT}", "--policy", "round_robin",
                        "--prometheus-host", "127.0.0.1", "--prometheus-port", str(VR_PROM_PORT),
                        "--log-level", "warning"], f"{args.log_dir}/vllm-router.log")
            procs.append(vr)
            try:
                wait_http(f"http://127.0.0.1:{VR_PORT}/health", 60, vr)
                targets["vllm-router"] = f"http://127.0.0.1:{VR_PORT}"
                pids["vllm-router"] = vr.pid
            except RuntimeError as exc:
                with open(f"{args.log_dir}/vllm-router.log", errors="replace") as handle:
                    tail = handle.read()[-600:]
                notes["vllm-router"] = f"could not run: {exc}; log tail: {tail}"

        # 1) Added TTFT: rounds interleave the targets so machine noise hits all of them alike.
        # CPU seconds each proxy spends per request: unlike latency, barely moved by other load.
        ttfts: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, float] = {name: 0.0 for name in pids}
        for _ in range(args.rounds):
            for name, base in targets.items():
                asyncio.run(ttft_run(base, 20, args.concurrency))  # warm the connection pools
                before = cpu_seconds(pids[name]) if name in pids else 0.0
                ttfts[name] += asyncio.run(ttft_run(base, args.requests, args.concurrency))
                if name in pids:
                    cpu[name] += cpu_seconds(pids[name]) - before
        result: dict = {"backend_ttft_ms": args.ttft_ms, "concurrency": args.concurrency,
                        "requests_per_target": args.requests * args.rounds, "ttft_ms": {}, "streams": {},
                        "notes": notes}
        direct50, direct99 = pct(ttfts["direct"], 50), pct(ttfts["direct"], 99)
        for name, values in ttfts.items():
            p50, p99 = pct(values, 50), pct(values, 99)
            result["ttft_ms"][name] = {"p50": p50 * 1e3, "p99": p99 * 1e3, "mean": statistics.mean(values) * 1e3,
                                       "added_p50": (p50 - direct50) * 1e3, "added_p99": (p99 - direct99) * 1e3,
                                       "cpu_ms_per_request": cpu[name] * 1e3 / len(values) if name in cpu else None}

        # 2) Concurrent streams: each stream lasts ~2.5 s (5 chunks 0.5 s apart), all opened at once.
        set_backend({"ttft": 0.05, "itl": 0.5, "tokens": 5})
        levels = [int(x) for x in args.levels.split(",")]
        for name, base in targets.items():
            best = 0
            tried = []
            for n in levels:
                ok, errors, wall = asyncio.run(streams_level(base, n, timeout=60))
                tried.append({"streams": n, "ok": ok, "errors": len(errors), "wall_s": round(wall, 2),
                              "first_error": errors[0] if errors else None})
                if errors:
                    break
                best = n
                time.sleep(1)  # let sockets from this level close
            result["streams"][name] = {"max_without_errors": best, "levels": tried}
        set_backend({"ttft": args.ttft_ms / 1000, "itl": 0.005, "tokens": None})

    print(f"Fake backend: TTFT {args.ttft_ms:.0f} ms; {result['requests_per_target']} streamed requests per "
          f"target at concurrency {args.concurrency}, {args.rounds} interleaved rounds; "
          f"machine: {os.cpu_count()} cores")
    print(f"{'target':34} {'TTFT p50':>9} {'p99':>8} {'added p50':>10} {'added p99':>10} {'CPU/req':>8} "
          f"{'max streams (0 errors)':>24}")
    for name in targets:
        t, s = result["ttft_ms"][name], result["streams"][name]
        top = s["max_without_errors"]
        last = s["levels"][-1]
        more = "" if top == levels[-1] else f" (fails at {last['streams']}: {last['first_error']})"
        cpu_text = "-" if t["cpu_ms_per_request"] is None else f"{t['cpu_ms_per_request']:.2f}ms"
        print(f"{name:34} {t['p50']:7.2f}ms {t['p99']:6.2f}ms {t['added_p50']:+8.2f}ms {t['added_p99']:+8.2f}ms "
              f"{cpu_text:>8} {top:>10}{more}")
    for name, note in notes.items():
        print(f"{name}: {note}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
