"""Local monitoring for real: site.yml with Prometheus and Alertmanager scraping two vLLM
replicas, the router and the gateway; a replica crash must reach a webhook on loopback within
the alert's `for` plus two scrape intervals, and resolve when the supervisor has it back.

Ordered: the tests share one running platform (starting vLLM costs over a minute on 2 cores).
Short intervals (scrape 2 s, evaluation 1 s, `for` 10 s) keep it quick.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import BASE_PORT, ROOT, Platform, changed_tasks
from procs import terminate

sys.path.insert(0, os.path.join(ROOT, "apps", "dashboard"))
from screenshot import CHROMIUM, capture, png_size  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils.monitoring import panels  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.monitoring.prometheus_api import query_range  # noqa: E402

SCRAPE_S, EVAL_S, DOWN_FOR_S = 2, 1, 10
# Its own port block: the session's platform (test_local_target) keeps its servers, router,
# gateway, Prometheus and Alertmanager on BASE_PORT's block until the session ends.
MON_BASE = BASE_PORT + 300
WEBHOOK_PORT = MON_BASE - 96
MODEL = "tiny-chat"
VICTIM, SURVIVOR = f"vllm-{MODEL}-1", f"vllm-{MODEL}-0"


class Webhook:
    """Alertmanager's webhook receiver: keeps every notification with its arrival time."""

    def __init__(self, port: int):
        self.notifications: list[tuple[float, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.notifications.append((time.time(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float) -> tuple[float, dict] | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for arrived, body in list(self.notifications):
                for alert in body["alerts"]:
                    if predicate(body, alert):
                        return arrived, alert
            time.sleep(0.1)
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def epoch(stamp: str) -> float:
    """Alertmanager's RFC 3339 times (nanoseconds, Z) as a Unix time."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp).replace("Z", "+00:00")).timestamp()


def get_json(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def query(prom: str, expr: str) -> list[dict]:
    body = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture(scope="module")
def webhook():
    hook = Webhook(WEBHOOK_PORT)
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, webhook):
    base = tmp_path_factory.mktemp("monitored")
    plat = Platform(str(base / "home"), str(base / "reports"), str(base / "vars.yml"))
    plat.write_vars(
        # 4 sequences per replica: the load below fills both replicas' batches.
        llm_models=[{"name": MODEL, "source": "generated:tiny-llama", "replicas": 2, "vllm_args": {"max_num_seqs": 4}}],
        monitoring_scrape_interval=f"{SCRAPE_S}s",
        # Steps of at least 2 s: the benchmark spans several scrapes, so its report can draw
        # every replica's series from Prometheus (a shorter run fits in one point).
        llm_benchmark_min_step_s=2,
        monitoring_evaluation_interval=f"{EVAL_S}s",
        monitoring_alert_target_down_for=f"{DOWN_FOR_S}s",
        monitoring_alertmanager_group_wait="0s",
        monitoring_alertmanager_group_interval="1s",
        monitoring_alertmanager_repeat_interval="1h",
        monitoring_alertmanager_receivers=[{"name": "test-hook", "webhook_url": f"http://127.0.0.1:{WEBHOOK_PORT}/alerts"}],
        vllm_base_port=MON_BASE,
        router_port=MON_BASE - 100,
        gateway_port=MON_BASE - 99,
        monitoring_prometheus_port=MON_BASE - 98,
        monitoring_alertmanager_port=MON_BASE - 97,
    )
    started = time.monotonic()
    result = plat.play("site.yml")
    assert result.returncode == 0, result.stdout[-4000:]
    plat.site_seconds = time.monotonic() - started
    with open(os.path.join(plat.home, "run", "monitoring.json"), encoding="utf-8") as handle:
        plat.urls = json.load(handle)
    yield plat
    plat.play("playbooks/teardown.yml")


def report(pytestconfig, line: str) -> None:
    """Measurements go to the terminal even when output is captured."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[monitoring] {line}")


def test_every_replica_router_and_gateway_are_scraped(monitored, pytestconfig):
    prom = monitored.urls["prometheus_url"]
    deadline = time.time() + 30
    while time.time() < deadline:
        up = {(s["metric"]["job"], s["metric"].get("pod")): s["value"][1] for s in query(prom, 'up{namespace="llm-platform"}')}
        if up and all(v == "1" for v in up.values()):
            break
        time.sleep(1)
    assert up == {("vllm", SURVIVOR): "1", ("vllm", VICTIM): "1", ("llm-router", "router"): "1", ("llm-gateway", "gateway"): "1"}
    running = query(prom, "vllm:num_requests_running")
    assert sorted(s["metric"]["pod"] for s in running) == [SURVIVOR, VICTIM]
    assert {s["metric"]["model_name"] for s in running} == {MODEL}
    # The same rules as the kubernetes target are loaded and evaluated.
    groups = get_json(f"{prom}/api/v1/rules")["data"]["groups"]
    assert sorted(g["name"] for g in groups) == ["llm-gpu", "llm-serving", "llm-serving-records"]
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
    report(pytestconfig, f"site.yml (serving 2 replicas, monitoring, bench) took {monitored.site_seconds:.0f}s")


def test_benchmark_report_has_every_replica_from_prometheus(monitored, pytestconfig):
    """site.yml's benchmark took its server series from the local Prometheus: both replicas."""
    found = sorted(glob.glob(os.path.join(monitored.reports, "*", MODEL, "results.json")))
    assert found, f"no benchmark results under {monitored.reports}"
    with open(found[-1], encoding="utf-8") as handle:
        prometheus = json.load(handle)["prometheus"]
    assert prometheus["url"] == monitored.urls["prometheus_url"] and prometheus["error"] is None, prometheus
    assert prometheus["fresh"] is True
    names = {kind: sorted(row["name"] for row in rows) for kind, rows in prometheus["series"].items()}
    assert names == {kind: [SURVIVOR, VICTIM] for kind in ("running", "waiting", "kv_cache")}
    with open(os.path.join(os.path.dirname(found[-1]), "report.html"), encoding="utf-8") as handle:
        html = handle.read()
    assert "Server series from Prometheus (every replica)" in html and f"replicas: {SURVIVOR}, {VICTIM}" in html
    points = sum(len(row["points"]) for row in prometheus["series"]["running"])
    report(pytestconfig, f"benchmark report: {points} running-request points from Prometheus over 2 replicas")


def test_monitoring_rerun_changes_nothing(monitored):
    result = monitored.play("site.yml", "--tags", "monitoring", json_output=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert changed_tasks(result.json) == []


def post_json(url: str, body: dict, timeout: float = 60) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def test_every_vllm_dashboard_panel_returns_data_after_the_benchmark(monitored, pytestconfig):
    """The Grafana panels' queries (as the Streamlit page runs them) against the real series."""
    gateway = f"http://127.0.0.1:{MON_BASE - 99}"

    def ask(i: int) -> int:
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"hi {i}"}], "max_tokens": 64, "ignore_eos": True}
        return post_json(f"{gateway}/v1/chat/completions", body)["usage"]["completion_tokens"]

    # Bounded load on loopback, through gateway and router (so the router panels have traffic):
    # 12 clients against 2 x 4 sequences keep both batches full. A fast machine finishes a fixed
    # burst between two scrapes, so the load runs until a scrape has seen requests running
    # (at most 60 s and 480 requests), and then one more scrape interval.
    prom = monitored.urls["prometheus_url"]
    stop, sent, tokens = threading.Event(), [], []
    lock = threading.Lock()

    def client(worker: int) -> None:
        while not stop.is_set():
            with lock:
                if len(sent) >= 480:
                    return
                sent.append(worker)
            tokens.append(ask(len(sent)))

    def running_now() -> float:
        result = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": "sum(vllm:num_requests_running)"}))
        return max((float(r["value"][1]) for r in result["data"]["result"]), default=0.0)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(client, w) for w in range(12)]
        seen_at = None
        while time.monotonic() - started < 60 and not all(f.done() for f in futures):
            if seen_at is None and running_now() > 0:
                seen_at = time.monotonic()
            if seen_at is not None and time.monotonic() - seen_at > SCRAPE_S:
                break
            time.sleep(0.5)
        stop.set()
        for f in futures:
            f.result()
    load_s = time.monotonic() - started
    assert tokens and set(tokens) == {64}, f"completions of the wrong length: {sorted(set(tokens))}"
    time.sleep(2 * SCRAPE_S + 1)
    end = time.time()
    start = end - monitored.site_seconds - 120
    empty = []
    checked = 0
    for panel in panels.VLLM.panels():
        for q in panel.queries:
            series = query_range(prom, panels.substitute(q.expr, {}, "30s"), start, end, SCRAPE_S, q.legend)
            checked += 1
            if not any(s.points for s in series):
                empty.append(f"{panel.title}: {q.expr}")
    assert empty == [], f"panel queries with no data: {empty}"
    assert checked == sum(len(p.queries) for p in panels.VLLM.panels()) >= 20
    # The variable queries find this platform's namespace, model and both replicas.
    values = get_json(f"{prom}/api/v1/series?" + urllib.parse.urlencode({"match[]": "vllm:num_requests_running"}))["data"]
    assert sorted(v["pod"] for v in values) == [SURVIVOR, VICTIM]
    # The GPU board reads DCGM series only: nothing to check on a machine without GPUs.
    assert all("DCGM_" in q.expr for p in panels.GPU.panels() for q in p.queries)
    # The router is queue-aware: it holds what the replicas cannot run, so vLLM's own queue may stay 0.
    peak = {name: max((float(v) for s in query_range(prom, f"sum({name})", end - load_s - 10, end, 1) for _, v in s.points),
                      default=0.0)
            for name in ("vllm:num_requests_running", "vllm:num_requests_waiting")}
    assert peak["vllm:num_requests_running"] > 0, "the load never ran"
    report(pytestconfig, f"{checked} vLLM dashboard queries returned data (load: {len(tokens)} requests in {load_s:.1f}s, "
                         f"peak running {peak['vllm:num_requests_running']:.0f}, waiting {peak['vllm:num_requests_waiting']:.0f})")


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed (browser check only)")
def test_monitoring_page_in_chromium(monitored, tmp_path, pytestconfig):
    """The Streamlit page over the live Prometheus, in headless Chromium (LLMOPS_DOCS_IMG=dir keeps the PNG)."""
    port = MON_BASE - 95
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([os.path.join(ROOT, "scripts", "llmops"), "dashboard", "--port", str(port),
                                 "--dir", str(tmp_path), "--prometheus-url", monitored.urls["prometheus_url"]],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:
                    if resp.read().strip() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        png = tmp_path / "monitoring-local.png"
        shot = capture(url + "monitoring?minutes=5", str(png), wait_for=["Router choices per replica", SURVIVOR],
                       width=1400, height=2200, timeout_s=90)
        assert png_size(str(png)) == (1400, 2200)
        for text in ("Queue depth", "KV cache usage", "Generated tokens/s", "Time to first token", VICTIM):
            assert text in shot.text
        assert "No data in this window" not in shot.text
        if os.environ.get("LLMOPS_DOCS_IMG"):
            shutil.copy(png, os.path.join(os.environ["LLMOPS_DOCS_IMG"], "monitoring-local.png"))
        report(pytestconfig, f"monitoring page rendered in Chromium in {shot.seconds:.1f}s")
    finally:
        terminate(proc, 15)


def _wait_quiet(monitored, timeout: float = 60) -> None:
    """No platform alert pending or firing (startup ones resolved) before the fault."""
    prom = monitored.urls["prometheus_url"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not query(prom, 'ALERTS{alertname=~"VLLMReplicaDown|RouterDown|GatewayDown"}'):
            return
        time.sleep(1)
    raise AssertionError(query(prom, "ALERTS"))


def test_replica_crash_alerts_the_webhook_then_resolves(monitored, webhook, pytestconfig):
    _wait_quiet(monitored)
    status = monitored.status(VICTIM)
    child = status["child_pid"]
    assert child and status["ready"]
    fault = time.time()
    os.killpg(child, signal.SIGKILL)  # a crash: the supervisor brings it back by itself

    def fired(body, alert):
        return (alert["status"] == "firing" and alert["labels"]["alertname"] == "VLLMReplicaDown"
                and alert["labels"].get("pod") == VICTIM and arrived_after(alert))

    def arrived_after(alert):
        return epoch(alert["startsAt"]) >= fault - 1

    bound = DOWN_FOR_S + 2 * SCRAPE_S
    hit = webhook.wait_for(fired, timeout=bound + 30)
    assert hit, f"no VLLMReplicaDown for {VICTIM} reached the webhook; got {webhook.notifications[-3:]}"
    delivered, alert = hit
    latency = delivered - fault
    report(pytestconfig, f"fault -> webhook delivery {latency:.1f}s (bound: for {DOWN_FOR_S}s + 2 x scrape {SCRAPE_S}s = {bound}s)")
    assert latency <= bound, f"delivered after {latency:.1f}s, more than for + two scrape intervals ({bound}s)"
    assert alert["labels"]["model"] == MODEL and alert["labels"]["severity"] == "warning"
    assert VICTIM in alert["annotations"]["summary"] and alert["annotations"]["action"]
    # Only the crashed replica alerts: the other one, the router and the gateway stay up.
    am = monitored.urls["alertmanager_url"]
    active = get_json(f"{am}/api/v2/alerts?active=true")
    assert {(a["labels"]["alertname"], a["labels"].get("pod")) for a in active} == {("VLLMReplicaDown", VICTIM)}

    def resolved(body, alert):
        # This fault's alert, not a resolved one left from an earlier outage (startup, quiet wait).
        return (alert["status"] == "resolved" and alert["labels"]["alertname"] == "VLLMReplicaDown"
                and alert["labels"].get("pod") == VICTIM and arrived_after(alert))

    back = webhook.wait_for(resolved, timeout=600)
    assert back, "the alert did not resolve after the supervisor restarted the replica"
    report(pytestconfig, f"replica back and alert resolved {back[0] - fault:.0f}s after the fault")
    assert monitored.status(VICTIM)["restarts"] >= 1

    # No data from the surviving replica was lost: scraped every interval through the fault.
    prom = monitored.urls["prometheus_url"]
    window = int(time.time() - fault) + 1
    survivor = query(prom, f'min_over_time(up{{pod="{SURVIVOR}"}}[{window}s])')
    assert [s["value"][1] for s in survivor] == ["1"]
    samples = float(query(prom, f'count_over_time(up{{pod="{SURVIVOR}"}}[{window}s])')[0]["value"][1])
    assert samples >= 0.9 * window / SCRAPE_S, (samples, window)


def test_teardown_stops_prometheus_and_alertmanager(monitored):
    result = monitored.play("playbooks/teardown.yml")
    assert result.returncode == 0, result.stdout[-2000:]
    for name in ("prometheus", "alertmanager"):
        assert monitored.status(name)["state"] == "stopped"
    for url in monitored.urls.values():
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{url}/-/ready", timeout=2)
