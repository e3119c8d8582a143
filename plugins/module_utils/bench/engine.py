"""Every load profile, repeats, warm-up and the server-side view: one run, many steps.

The module and the CLI both call `execute`, so the same arguments give the same summary.
"""
from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import aiohttp

from . import servermetrics
from .client import GONE_REASON, Counters, Phase, open_session, run_phase
from .config import MAX_CONCURRENCY, BenchConfig
from .metrics import summarize, summarize_records
from .records import RunResult
from .schedule import constant_offsets, gamma_offsets, load_trace
from .workload import build_requests, load_tokenizer

StepPlan = Dict[str, Any]  # profile, rate, concurrency, label
OnStep = Callable[[Dict[str, Any]], None]
# Gauges are sampled often enough to draw a short step (at least ~20 samples over
# min_step_s), never more often than every 0.1 s: each scrape costs the server work too.
SAMPLE_EVERY_S = 1.0
SAMPLE_MIN_S = 0.1
SAMPLES_PER_STEP = 20


def sample_interval(min_step_s: float) -> float:
    if min_step_s <= 0:
        return 0.25  # step length unknown: fine enough for a few seconds of load
    return max(SAMPLE_MIN_S, min(SAMPLE_EVERY_S, min_step_s / SAMPLES_PER_STEP))


class StepRun:
    """One load level: its repeats (RunResults), pooled summary and server view."""

    def __init__(self, index: int, plan: StepPlan) -> None:
        self.index = index
        self.plan = plan
        self.repeats: List[RunResult] = []
        self.summary: Dict[str, Any] = {}
        self.server: Optional[Dict[str, Any]] = None
        self.series: List[Dict[str, Any]] = []


async def _scrape(session: aiohttp.ClientSession, url: str,
                  names=servermetrics.ALL) -> Optional[servermetrics.Samples]:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            if resp.status != 200:
                return None
            return servermetrics.parse(await resp.text(), names)
    except Exception:  # noqa: BLE001 - a server without /metrics is normal, not an error
        return None


async def _sampler(session: aiohttp.ClientSession, url: str, t0: float,
                   series: List[Dict[str, Any]], stop: asyncio.Event,
                   every_s: float = SAMPLE_EVERY_S) -> None:
    # Gauges over time (running/waiting/KV use) for the report's server-side series.
    while not stop.is_set():
        samples = await _scrape(session, url, servermetrics.GAUGES)
        if samples is not None:
            series.append({"t_s": time.perf_counter() - t0, **servermetrics.gauges(samples)})
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except asyncio.TimeoutError:
            pass


async def _server_info(session: aiohttp.ClientSession, base_url: str) -> Dict[str, Any]:
    """vLLM's /version (and the served model list) for provenance; empty when absent."""
    info: Dict[str, Any] = {}
    for path, key in (("/version", "version"), ("/v1/models", "models")):
        try:
            async with session.get(base_url + path,
                                   timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status == 200:
                    data = await resp.json(content_type=None)
                    info[key] = (data.get("version") if key == "version" and isinstance(data, dict)
                                 else [m.get("id") for m in data.get("data", [])
                                       if isinstance(m, dict)] if isinstance(data, dict) else None)
        except Exception:  # noqa: BLE001 - provenance is best effort
            continue
    return info


class Engine:
    def __init__(self, config: BenchConfig, counters: Optional[Counters] = None,
                 on_step: Optional[OnStep] = None) -> None:
        self.config = config
        self.counters = counters or Counters()
        self.on_step = on_step
        self.tokenizer = load_tokenizer(config.tokenizer) if config.tokenizer else None
        self.trace = (load_trace(config.trace_path, config.trace_speed, config.num_requests)
                      if config.profile == "trace" and config.trace_path else None)
        count = len(self.trace) if self.trace else config.num_requests
        lengths = [(r[1], r[2]) for r in self.trace] if self.trace else None
        self.specs = build_requests(config, count, "m", self.tokenizer, lengths)
        self.warm_specs = build_requests(config, config.warmup_requests, "w", self.tokenizer)
        self.steps: List[StepRun] = []
        self.warmup_completed = 0
        self.metrics_available: Optional[bool] = None
        self.stopped_reason: Optional[str] = None
        self.server_info: Dict[str, Any] = {}
        self.prometheus: Optional[Dict[str, Any]] = None

    # ---- plans --------------------------------------------------------------------------
    def _max_inflight(self) -> int:
        return self.config.max_concurrency or min(len(self.specs), MAX_CONCURRENCY)

    def _phase(self, plan: StepPlan) -> Phase:
        cfg, n = self.config, len(self.specs)
        profile = plan["profile"]
        bounds = {"min_s": cfg.min_step_s, "max_s": cfg.max_seconds}
        if profile == "concurrency":
            return Phase(cfg, self.specs, None, concurrency=plan["concurrency"], **bounds)
        if profile in ("poisson", "constant") and cfg.min_step_s:
            n = max(n, math.ceil(plan["rate"] * cfg.min_step_s))  # enough arrivals to fill it
        if profile == "throughput":
            offsets = [0.0] * n
        elif profile == "trace":
            offsets = [r[0] for r in self.trace or []]
        elif profile == "poisson":
            offsets = gamma_offsets(n, plan["rate"], cfg.burstiness, cfg.seed)
        else:
            offsets = constant_offsets(n, plan["rate"])
        return Phase(cfg, self.specs, offsets, max_concurrency=cfg.max_concurrency or
                     (self._max_inflight() if profile == "throughput" else None),
                     guard=cfg.saturation_guard and profile != "throughput", max_s=cfg.max_seconds)

    def _rate_profile(self) -> str:
        return "poisson" if self.config.burstiness != 1.0 else "constant"

    # ---- running ------------------------------------------------------------------------
    async def _run_step(self, session: aiohttp.ClientSession, plan: StepPlan, t0: float,
                        deadline: float) -> StepRun:
        step = StepRun(len(self.steps), plan)
        self.steps.append(step)
        cfg = self.config
        before = await _scrape(session, cfg.metrics_url) if cfg.server_metrics else None
        if self.metrics_available is None:
            self.metrics_available = before is not None
        stop = asyncio.Event()
        sampler = (asyncio.ensure_future(_sampler(session, cfg.metrics_url, t0, step.series, stop,
                                                  sample_interval(cfg.min_step_s)))
                   if before is not None else None)
        for repeat in range(cfg.repeats):
            if time.perf_counter() >= deadline:
                break
            self.counters.label = f"{plan['label']} #{repeat + 1}/{cfg.repeats}"
            result = await run_phase(session, self._phase(plan), t0, deadline, self.counters)
            result.profile, result.target_rate = plan["profile"], plan.get("rate")
            result.concurrency, result.step, result.repeat = plan.get("concurrency"), step.index, repeat
            for rec in result.records:
                rec.step, rec.repeat = step.index, repeat
            step.repeats.append(result)
            if result.stopped_reason:
                break
        stop.set()
        if sampler:
            await sampler
        after = await _scrape(session, cfg.metrics_url) if before is not None else None
        step.summary = pooled_summary(step.repeats, cfg)
        step.summary["step"] = {"index": step.index, **plan}
        if before is not None and after is not None:
            step.server = servermetrics.delta(before, after)
            step.summary["server"] = step.server
            step.summary["server_disagreements"] = servermetrics.compare(step.summary, step.server)
            step.summary["server_gap"] = servermetrics.frontend_gap(step.summary, step.server)
        if self.on_step:
            self.on_step(step.summary)
        return step

    async def run(self) -> None:
        cfg = self.config
        t0 = time.perf_counter()
        wall0 = time.time()  # the same instant on the clock Prometheus stamps samples with
        deadline = t0 + cfg.run_timeout_s
        self.t0 = t0
        async with open_session(cfg) as session:
            self.server_info = await _server_info(session, cfg.base_url)
            if self.warm_specs:
                self.counters.label = "warm-up"
                warm = await run_phase(session, Phase(cfg, self.warm_specs), t0, deadline,
                                       self.counters)
                self.warmup_completed = sum(1 for r in warm.records if r.ok)
            await self._run_profile(session, t0, deadline)
        if cfg.prometheus_url:
            from . import promseries
            self.prometheus = await asyncio.get_running_loop().run_in_executor(
                None, promseries.collect, cfg.prometheus_url, cfg.model, wall0, time.time())

    def _listed_plans(self) -> Optional[List[StepPlan]]:
        """One step per listed concurrency or rate; None for the multi-step searches."""
        cfg = self.config
        if cfg.profile == "concurrency":
            return [{"profile": "concurrency", "concurrency": c, "label": f"concurrency {c}"}
                    for c in cfg.concurrency_levels]
        if cfg.profile in ("constant", "poisson"):
            return [{"profile": cfg.profile, "rate": r, "label": f"{cfg.profile} {r:g}/s"}
                    for r in cfg.rate_levels]
        return {"throughput": [{"profile": "throughput", "label": "max throughput"}],
                "trace": [{"profile": "trace", "label": "trace replay"}]}.get(cfg.profile)

    def _gone(self, step: StepRun) -> bool:
        """The server vanished during this step: say so and run no further step."""
        reason = next((r.stopped_reason for r in step.repeats
                       if (r.stopped_reason or "").startswith(GONE_REASON)), None)
        if reason:
            self.stopped_reason = reason
        return reason is not None

    async def _run_profile(self, session: aiohttp.ClientSession, t0: float,
                           deadline: float) -> None:
        cfg = self.config
        plans = self._listed_plans()
        if plans is not None:
            for plan in plans:
                if time.perf_counter() >= deadline:
                    self.stopped_reason = "run_timeout_s reached; later load steps skipped"
                    break
                step = await self._run_step(session, plan, t0, deadline)
                if self._gone(step):
                    break
            return
        sync = await self._run_step(session, {"profile": "concurrency", "concurrency": 1,
                                              "label": "synchronous"}, t0, deadline)
        if self._gone(sync):
            return
        top = await self._run_step(session, {"profile": "throughput", "label": "max throughput"},
                                   t0, deadline)
        lo = sync.summary["throughput"]["requests_per_s"] or 0.0
        hi = top.summary["throughput"]["requests_per_s"] or 0.0
        if not lo or not hi or hi <= lo:
            self.stopped_reason = (f"no rate range to {cfg.profile} (synchronous {lo:.3g}/s, "
                                   f"max {hi:.3g}/s)")
            return
        kind = self._rate_profile()
        if cfg.profile == "sweep":
            for k in range(1, cfg.sweep_steps + 1):
                if time.perf_counter() >= deadline:
                    self.stopped_reason = "run_timeout_s reached during the sweep"
                    break
                rate = lo + (hi - lo) * k / (cfg.sweep_steps + 1)
                step = await self._run_step(session, {"profile": kind, "rate": rate,
                                                      "label": f"{kind} {rate:.3g}/s"},
                                            t0, deadline)
                if self._gone(step):
                    break
                if any(r.saturated for r in step.repeats):
                    self.stopped_reason = f"saturated at {rate:.3g}/s; higher rates skipped"
                    break
            return
        # slo_search: bisection on the rate for the highest one whose goodput share meets
        # slo_target; sweep_steps bounds the number of probes.
        good_lo, bad_hi = lo, hi
        for _step in range(cfg.sweep_steps):
            if time.perf_counter() >= deadline:
                self.stopped_reason = "run_timeout_s reached during the SLO search"
                break
            rate = (good_lo + bad_hi) / 2.0
            step = await self._run_step(session, {"profile": kind, "rate": rate,
                                                  "label": f"{kind} {rate:.3g}/s"}, t0, deadline)
            if self._gone(step):
                break
            gp = step.summary.get("goodput") or {}
            if gp.get("meets_target") and step.summary["valid"]:
                good_lo = rate
            else:
                bad_hi = rate


def pooled_summary(repeats: List[RunResult], config: BenchConfig) -> Dict[str, Any]:
    """Percentiles pooled over all repeats' requests, plus the spread between repeats."""
    if len(repeats) == 1:
        return summarize(repeats[0])
    records = [r for res in repeats for r in res.records]
    scheduled = bool(repeats) and repeats[0].profile in ("constant", "poisson", "trace")
    stopped = "; ".join(sorted({r.stopped_reason for r in repeats if r.stopped_reason}))
    summary = summarize_records(
        records, sum(r.duration_s for r in repeats),
        planned=sum(len(r.records) + r.not_sent for r in repeats),
        not_sent=sum(r.not_sent for r in repeats), stopped_reason=stopped or None,
        percentiles=config.percentiles, slos=config.slos, slo_target=config.slo_target,
        target_rate=repeats[0].target_rate if repeats else None,
        max_lag_ms=config.max_dispatch_lag_ms if scheduled else None)
    from .stats import describe
    per = [summarize(r) for r in repeats]
    summary["repeats"] = {
        "count": len(repeats),
        "requests_per_s": describe([p["throughput"]["requests_per_s"] or 0.0 for p in per]),
        "ttft_mean_ms": describe([p["ttft_ms"]["mean"] for p in per if p["ttft_ms"]["mean"]]),
        "e2e_mean_ms": describe([p["e2e_ms"]["mean"] for p in per if p["e2e_ms"]["mean"]]),
    }
    return summary


def headline(steps: List[StepRun]) -> Optional[StepRun]:
    """The step the top-level summary shows: the only one, else the highest valid throughput."""
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    valid = [s for s in steps if s.summary.get("valid")] or steps
    return max(valid, key=lambda s: s.summary["throughput"]["requests_per_s"] or 0.0)


def slo_best(steps: List[StepRun]) -> Optional[Tuple[float, Dict[str, Any]]]:
    """Highest tested open-loop rate that was valid and met the goodput target."""
    passing = [(s.plan["rate"], s.summary) for s in steps
               if s.plan.get("rate") and s.summary.get("valid")
               and (s.summary.get("goodput") or {}).get("meets_target")]
    return max(passing, key=lambda p: p[0]) if passing else None


class QuietGC:
    """No cyclic-GC pauses inside a measured run: a full collection over a process holding
    tens of thousands of records takes milliseconds, landing on whichever first token the
    event loop was about to read (it was the largest part of the client's TTFT p99 bias at
    64 streams). Objects alive at the start are frozen out of collection, generation 0 runs
    rarely (each of its passes is short), and everything is collected once at the end."""

    THRESHOLDS = (50_000, 1_000, 1_000)

    def __enter__(self) -> "QuietGC":
        import gc
        self.saved = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(*self.THRESHOLDS)
        return self

    def __exit__(self, *exc: Any) -> None:
        import gc
        gc.set_threshold(*self.saved)
        gc.unfreeze()
        gc.collect()


def execute(config: BenchConfig, counters: Optional[Counters] = None,
            on_step: Optional[OnStep] = None) -> Engine:
    engine = Engine(config, counters, on_step)
    with QuietGC():
        run_loop(engine.run())
    return engine


def run_loop(coro: Any) -> Any:
    """asyncio.run on uvloop where it is installed (the control venv pins it): its loop
    spends less CPU per callback, which shortens the wait of a chunk that arrives while the
    loop serves other streams (TTFT bias). LLMOPS_BENCH_LOOP=asyncio forces the default loop."""
    if os.environ.get("LLMOPS_BENCH_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop  # pylint: disable=import-outside-toplevel
        except ImportError:
            uvloop = None
        if uvloop is not None and hasattr(asyncio, "Runner"):  # Python >= 3.11
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro)
    return asyncio.run(coro)
