"""The systemd flavour of a supervised process, for hosts where systemd is PID 1.

Same contract as local_process (start returns changed, wait_ready fails fast with a
reason, stop only touches our own `llmops-*` units); systemd does the restarting.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time

from ansible_collections.llmops.platform.plugins.module_utils import local_process

UNIT_DIR = "/etc/systemd/system"


def unit_name(spec: local_process.ProcessSpec) -> str:
    return f"llmops-{spec.name}.service"


def render_unit(spec: local_process.ProcessSpec) -> str:
    env_lines = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in sorted(spec.env.items()))
    return (
        "# Managed by llmops.platform (llm_process); changes are overwritten.\n"
        "[Unit]\n"
        f"Description=llmops {spec.name}\n"
        "After=network-online.target\n"
        # A crash loop before readiness must stop, not spin: the wait reports it.
        f"StartLimitIntervalSec=300\nStartLimitBurst={spec.start_retries + 1}\n\n"
        "[Service]\n"
        f"ExecStart={shlex.join(spec.argv)}\n"
        f"{env_lines}"
        + (f"WorkingDirectory={spec.cwd}\n" if spec.cwd else "")
        + f"StandardOutput=append:{spec.log_file}\nStandardError=append:{spec.log_file}\n"
        "Restart=on-failure\nRestartSec=2\n"
        f"TimeoutStopSec={int(spec.stop_timeout_s)}\nKillMode=control-group\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def _systemctl(*args: str, check: bool = True) -> str:
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"systemctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _show(spec: local_process.ProcessSpec) -> dict[str, str]:
    out = _systemctl("show", unit_name(spec), "-p", "ActiveState,SubState,NRestarts,ExecMainStatus", check=False)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def start(spec: local_process.ProcessSpec) -> bool:
    path = os.path.join(UNIT_DIR, unit_name(spec))
    content = render_unit(spec)
    try:
        with open(path, encoding="utf-8") as handle:
            unchanged = handle.read() == content
    except OSError:
        unchanged = False
    if unchanged and _show(spec).get("ActiveState") == "active":
        return False
    os.makedirs(spec.log_dir, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
    _systemctl("daemon-reload")
    _systemctl("reset-failed", unit_name(spec), check=False)
    _systemctl("enable", unit_name(spec))
    _systemctl("restart", unit_name(spec))
    return True


def stop(spec: local_process.ProcessSpec) -> bool:
    path = os.path.join(UNIT_DIR, unit_name(spec))
    if not os.path.exists(path):
        return False
    _systemctl("disable", "--now", unit_name(spec), check=False)
    os.unlink(path)
    _systemctl("daemon-reload")
    return True


def wait_ready(spec: local_process.ProcessSpec, urls: list[str], timeout_s: float) -> tuple[bool, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = _show(spec)
        if state.get("ActiveState") == "failed" or int(state.get("NRestarts", "0") or 0) > spec.start_retries:
            return False, (f"{unit_name(spec)} exited before it became ready "
                           f"(exit status {state.get('ExecMainStatus')}, {state.get('NRestarts')} restarts)")
        if state.get("ActiveState") == "active" and local_process._urls_ok(urls):
            return True, "ready"
        time.sleep(0.5)
    return False, f"{unit_name(spec)} was not ready within {timeout_s:.0f}s"
