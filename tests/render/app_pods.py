"""Run an app the way its rendered pod would: the files of the `<name>-code` ConfigMap laid
out as the pod's volume items place them, then `python -m <module>` with the pod's
PYTHONPATH, on a loopback port. Used by the router and gateway render tests."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Iterator

import k8s_policy as policy


def code_volume_items(deployment: dict) -> list[dict]:
    """The code volume's items (ConfigMap key -> path below its mount)."""
    volumes = {v["name"]: v for v in policy.pod_spec(deployment)["volumes"]}
    return volumes["code"]["configMap"]["items"]


def unpack(code: dict[str, str], items: list[dict], dest: str) -> None:
    """Write each ConfigMap key where the pod's volume puts it (ConfigMap text as rendered)."""
    assert sorted(i["key"] for i in items) == sorted(code), "every code key is mounted, and nothing else"
    for item in items:
        path = os.path.join(dest, item["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(code[item["key"]] + "\n")


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@contextlib.contextmanager
def running(module: str, config: str, pythonpath: str, cwd: str) -> Iterator[str]:
    """`python -m module --config config` on a free loopback port; yields its base URL once
    it answers /health (any status), stops it after the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", module, "--config", config, "--host", "127.0.0.1",
                             "--port", str(port)], cwd=cwd, env={**os.environ, "PYTHONPATH": pythonpath},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{module} exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{module} did not answer /health within 30 s")
            try:
                get_json(url + "/health")
                break
            except OSError:
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
