"""The local target air-gapped: the serving and bench layers in a network namespace that has
only loopback, with every wheel of the serving lock taken from the offline mirror alone.

1. On the connected host, playbooks/mirror.yml puts the wheels of requirements/serving.lock
   into a mirror (under LLMOPS_CACHE/mirrors, keyed by the lock's sha256: a rerun copies no
   wheel again; pip download takes them from this machine's configured package sources).
2. A new network namespace (`ip netns`): loopback up, no other interface, no route. Inside it the
   mirror server serves that directory on 127.0.0.1, and pip, with no configuration and no
   cache, installs the whole serving lock from it (--no-index --find-links <mirror>/pypi/
   --require-hashes --no-deps, as scripts/venv.sh does) into a fresh venv with --dry-run: every
   wheel downloaded from the mirror and checked against the lock's hash, nothing unpacked.
3. The embedded local inventory's serving and bench layers run in the namespace with
   platform_mirror_url and platform_offline: true (preflight reads the served manifest), using
   the serving venv already built from the same lock (unpacking it again costs ~130 s here).
   With LLMOPS_OFFLINE_VENV=build, the serving layer builds that venv itself, in a fresh
   LLMOPS_CACHE, from the mirror (scripts/venv.sh with LLMOPS_PIP_FIND_LINKS), and vLLM runs
   from it; that is what a real air-gapped host does (about 5 minutes in all here).
4. The model answers a chat request sent from inside the namespace, and the benchmark report
   counts every request answered.

Needs root (ip netns). Skipped where systemd is PID 1: the platform's processes would be systemd
units, started outside the namespace.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

import pytest
import yaml
from conftest import BIN, ROOT, Platform

NS = f"llmops-offline-{os.getpid()}"
MIRROR_PORT = 24050
SERVER = os.path.join(ROOT, "plugins", "module_utils", "mirror", "server.py")
LOCK = os.path.join(ROOT, "requirements", "serving.lock")
CACHE = os.environ.get("LLMOPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "llmops")
# deb.debian.org and pypi.org (Fastly) by address: no DNS involved, only the network decides.
PROBE = """
import socket
for addr in (("151.101.2.132", 80), ("151.101.0.223", 443)):
    try:
        socket.create_connection(addr, timeout=5).close()
        print(addr[0], "connected")
    except OSError as exc:
        print(addr[0], type(exc).__name__, exc)
"""
ASK = """
import json, sys, urllib.request
body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
req = urllib.request.Request(sys.argv[1] + "/v1/chat/completions", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=60).read().decode())
"""

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns)"),
    pytest.mark.skipif(os.path.isdir("/run/systemd/system"),
                       reason="systemd is PID 1: llm_process would start the servers as units outside the namespace"),
]


def in_ns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *cmd]


def run(cmd, timeout=120, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def build_mirror(tmp_path) -> tuple[str, float]:
    """playbooks/mirror.yml (wheels of the serving lock) on the connected host, cached."""
    with open(LOCK, "rb") as handle:
        key = hashlib.sha256(handle.read()).hexdigest()[:16]
    mirror = os.path.join(CACHE, "mirrors", f"serving-wheels-{key}")
    inventory = tmp_path / "mirror-hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    extra = {"platform_home": str(tmp_path / "build-home"), "platform_mirror_dir": mirror, "platform_target": "local",
             "platform_mirror_venvs": ["serving"], "mirror_kinds": ["wheels"]}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=os.path.join(ROOT, ".ansible"), PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    started = time.monotonic()
    built = run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), "playbooks/mirror.yml",
                 "--tags", "mirror_build", "-e", json.dumps(extra)], timeout=1800, cwd=ROOT, env=env)
    assert built.returncode == 0, built.stdout[-4000:]
    return mirror, time.monotonic() - started


@pytest.fixture
def netns():
    """A network namespace with loopback only; deleted afterwards."""
    run(["ip", "netns", "delete", NS])
    added = run(["ip", "netns", "add", NS])
    assert added.returncode == 0, added.stderr
    try:
        up = run(in_ns("ip", "link", "set", "lo", "up"))
        assert up.returncode == 0, up.stderr
        yield NS
    finally:
        run(["ip", "netns", "delete", NS])


def mirror_wheel_requests(log_path) -> set[str]:
    """The wheel files the mirror server answered with 200 (its request log)."""
    text = log_path.read_text(encoding="utf-8")
    return {urllib.parse.unquote(m) for m in re.findall(r'"GET /pypi/([^ ?#]+\.whl) HTTP/1\.1" 200', text)}


def test_serving_and_bench_layers_air_gapped(tmp_path, netns):
    build_venv = os.environ.get("LLMOPS_OFFLINE_VENV", "") == "build"
    mirror, build_s = build_mirror(tmp_path)
    wheels = sorted(os.path.basename(p) for p in glob.glob(os.path.join(mirror, "pypi", "*.whl")))
    pins = [line for line in open(LOCK, encoding="utf-8") if "==" in line and not line.startswith("#")]
    assert len(wheels) == len(pins), (len(wheels), len(pins))

    # Nothing but loopback in the namespace: one interface, no route, the internet unreachable.
    links = run(in_ns("ip", "-o", "link", "show"))
    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"], links.stdout
    routes = run(in_ns("ip", "route", "show"))
    assert routes.stdout.strip() == "", routes.stdout
    probe = run(in_ns(sys.executable, "-c", PROBE), timeout=60)
    assert len(probe.stdout.splitlines()) == 2 and "connected" not in probe.stdout, probe.stdout + probe.stderr

    log_path = tmp_path / "mirror-server.log"
    log = open(log_path, "w", encoding="utf-8")
    server = subprocess.Popen(in_ns(sys.executable, SERVER, "--root", mirror, "--bind", "127.0.0.1",
                                    "--port", str(MIRROR_PORT)), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{MIRROR_PORT}"
    # pip with nothing but the mirror: no configuration file, no PIP_* sources, no cache.
    pip_env = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1", "PIP_FIND_LINKS": None,
               "PIP_INDEX_URL": None, "PIP_EXTRA_INDEX_URL": None}
    fresh_cache = tmp_path / "cache"
    platform = Platform(str(tmp_path / "home"), str(tmp_path / "reports"), str(tmp_path / "vars.yml"),
                        prefix=in_ns(), env_extra={**pip_env, **({"LLMOPS_CACHE": str(fresh_cache)} if build_venv else {})})
    timings = {"mirror build": build_s}
    try:
        for _ in range(100):
            if "llmops mirror: serving" in log_path.read_text(encoding="utf-8") or server.poll() is not None:
                break
            time.sleep(0.1)
        assert server.poll() is None, log_path.read_text(encoding="utf-8")

        if not build_venv:
            # The serving lock installed from the mirror alone (pip resolves, downloads and checks
            # the hash of every file; --dry-run leaves the unpacking out), as scripts/venv.sh runs it.
            python = run([os.path.join(ROOT, "scripts", "venv.sh"), "python", "serving"]).stdout.strip()
            assert run([python, "-m", "venv", str(tmp_path / "dry")]).returncode == 0
            env = {k: v for k, v in os.environ.items() if k not in pip_env}
            env.update({k: v for k, v in pip_env.items() if v is not None})
            started = time.monotonic()
            dry = run(in_ns(str(tmp_path / "dry" / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                            "--dry-run", "--report", str(tmp_path / "pip-report.json"), "--no-index", "--find-links",
                            f"{url}/pypi/", "--require-hashes", "--no-deps", "-r", LOCK), timeout=600, env=env)
            timings["pip install --dry-run from the mirror"] = time.monotonic() - started
            assert dry.returncode == 0, dry.stderr[-3000:]
            report = json.load(open(tmp_path / "pip-report.json", encoding="utf-8"))
            assert len(report["install"]) == len(pins), len(report["install"])
            assert sorted(mirror_wheel_requests(log_path)) == wheels, sorted(set(wheels) ^ mirror_wheel_requests(log_path))

        platform.write_vars(
            llm_models=[{"name": "tiny-chat", "source": "generated:tiny-llama", "replicas": 1}],
            vllm_base_port=24010, router_port=24001, gateway_port=24002,
            monitoring_prometheus_port=24003, monitoring_alertmanager_port=24004,
            llm_benchmark_concurrency=[1, 4],
            platform_mirror_url=url, platform_offline=True)
        started = time.monotonic()
        served = platform.play("playbooks/serving.yml")
        timings["serving layer"] = time.monotonic() - started
        assert served.returncode == 0, served.stdout[-4000:]
        venv = run([os.path.join(ROOT, "scripts", "venv.sh"), "path", "serving"],
                   env={**os.environ, "LLMOPS_CACHE": str(fresh_cache) if build_venv else CACHE}).stdout.strip()
        assert os.path.isfile(os.path.join(venv, ".complete")), venv
        pid = platform.status("vllm-tiny-chat-0")["child_pid"]
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        assert argv[0].decode().startswith(venv + "/"), (argv[:3], venv)
        if build_venv:
            # The serving layer built the venv in the fresh cache, every wheel from the mirror.
            assert sorted(mirror_wheel_requests(log_path)) == wheels, sorted(set(wheels) ^ mirror_wheel_requests(log_path))

        endpoint = platform.endpoints()[0]["base_url"]
        asked = run(in_ns(sys.executable, "-c", ASK, endpoint))
        assert asked.returncode == 0, asked.stderr[-2000:]
        assert json.loads(asked.stdout)["usage"]["completion_tokens"] == 5, asked.stdout

        started = time.monotonic()
        bench = platform.play("playbooks/bench.yml")
        timings["bench layer"] = time.monotonic() - started
        assert bench.returncode == 0, bench.stdout[-4000:]
        runs = sorted(r for r in os.listdir(platform.reports) if os.path.isdir(os.path.join(platform.reports, r)))
        summary = json.load(open(os.path.join(platform.reports, runs[-1], "tiny-chat", "results.json")))["summary"]
        assert [s["concurrency"] for s in summary["steps"]] == [1, 4], summary["steps"]
        assert all(s["succeeded"] == 8 and s["failed"] == 0 for s in summary["steps"]), summary["steps"]
        assert summary["requests"]["succeeded"] == 8, summary["requests"]
        print("offline local target" + (" (venv built from the mirror)" if build_venv else "") + ": "
              + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items()))
    finally:
        platform.play("playbooks/teardown.yml")
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(fresh_cache, ignore_errors=True)
        shutil.rmtree(tmp_path / "dry", ignore_errors=True)
