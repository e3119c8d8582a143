#!/usr/bin/python
"""Run a long-lived process (vLLM server, router, MLflow) supervised on the local target."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_process
short_description: Supervise a local server process (systemd unit or a built-in supervisor)
description:
  - C(state=started) makes sure the process runs with exactly this command and environment;
    a different command or environment restarts it, the same one leaves it alone (changed=false).
  - C(state=ready) waits until the process answers I(wait_urls); it fails fast when the process
    exits before it is ready, stops it (nothing is left running) and returns the log tail.
  - C(state=stopped) stops it. Only processes this module started are ever stopped.
  - Where systemd is PID 1 (I(manager=auto)) the process is a C(llmops-NAME.service) unit;
    elsewhere a small supervisor restarts it on crash and keeps pid, status and log files.
options:
  name:
    description: Process name, unique on the host (for example C(vllm-chat-0)).
    type: str
    required: true
  state:
    description: Desired state.
    type: str
    choices: [started, ready, stopped]
    default: started
  argv:
    description: Command and arguments. Required for I(state=started).
    type: list
    elements: str
  env:
    description: Extra environment variables.
    type: dict
    default: {}
  cwd:
    description: Working directory.
    type: path
  state_dir:
    description: Directory for pid, spec and status files.
    type: path
    required: true
  log_dir:
    description: Directory for the process log (C(NAME.log)).
    type: path
    required: true
  ready_url:
    description: URL the supervisor probes to learn that a start succeeded.
    type: str
  port:
    description: Port the process listens on; a start fails when another process holds it.
    type: int
  wait_urls:
    description: URLs that must all answer 2xx for I(state=ready).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for readiness.
    type: int
    default: 600
  start_retries:
    description: Exits before the first readiness that are retried before giving up.
    type: int
    default: 0
  stop_timeout:
    description: Seconds between SIGTERM and SIGKILL.
    type: int
    default: 20
  log_lines:
    description: Lines of log returned on failure.
    type: int
    default: 40
  manager:
    description: C(auto) uses systemd when it is PID 1, else the built-in supervisor.
    type: str
    choices: [auto, supervisor, systemd]
    default: auto
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Start a vLLM replica
  llmops.platform.llm_process:
    name: vllm-chat-0
    argv: [/opt/venv/bin/python, -m, vllm.entrypoints.openai.api_server, --port, "8100"]
    state_dir: /var/lib/llmops/run
    log_dir: /var/log/llmops
    ready_url: http://127.0.0.1:8100/health

- name: Wait for it
  llmops.platform.llm_process:
    name: vllm-chat-0
    state: ready
    state_dir: /var/lib/llmops/run
    log_dir: /var/log/llmops
    wait_urls: [http://127.0.0.1:8100/health, http://127.0.0.1:8100/v1/models]
"""

RETURN = r"""
manager:
  description: C(systemd) or C(supervisor).
  returned: always
  type: str
log_file:
  description: Path of the process log.
  returned: always
  type: str
log_tail:
  description: Last lines of the log (on readiness failure).
  returned: failure
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils import local_process, systemd_unit


def _backend(manager: str):
    if manager == "auto":
        manager = "systemd" if os.path.isdir("/run/systemd/system") else "supervisor"
    return manager, (systemd_unit if manager == "systemd" else local_process)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "default": "started", "choices": ["started", "ready", "stopped"]},
            "argv": {"type": "list", "elements": "str"},
            "env": {"type": "dict", "default": {}},
            "cwd": {"type": "path"},
            "state_dir": {"type": "path", "required": True},
            "log_dir": {"type": "path", "required": True},
            "ready_url": {"type": "str"},
            "port": {"type": "int"},
            "wait_urls": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "int", "default": 600},
            "start_retries": {"type": "int", "default": 0},
            "stop_timeout": {"type": "int", "default": 20},
            "log_lines": {"type": "int", "default": 40},
            "manager": {"type": "str", "default": "auto", "choices": ["auto", "supervisor", "systemd"]},
        },
        required_if=[("state", "started", ["argv"])],
        supports_check_mode=True,
    )
    p = module.params
    spec = local_process.ProcessSpec(
        name=p["name"], argv=p["argv"] or [], state_dir=p["state_dir"], log_dir=p["log_dir"],
        env={k: str(v) for k, v in p["env"].items()}, cwd=p["cwd"], ready_url=p["ready_url"],
        start_retries=p["start_retries"], stop_timeout_s=float(p["stop_timeout"]), port=p["port"],
    )
    manager, backend = _backend(p["manager"])
    result = {"manager": manager, "log_file": spec.log_file, "changed": False}
    if module.check_mode:
        if p["state"] == "started" and manager == "supervisor":
            result["changed"] = not local_process.is_current(spec)
        module.exit_json(**result)
    try:
        if p["state"] == "started":
            result["changed"] = backend.start(spec)
        elif p["state"] == "stopped":
            result["changed"] = backend.stop(spec)
        else:
            ok, reason = backend.wait_ready(spec, p["wait_urls"], float(p["timeout"]))
            if not ok:
                tail = local_process.log_tail(spec.log_file, p["log_lines"])
                backend.stop(spec)  # a server that failed to come up is not left running
                module.fail_json(msg=f"{reason}. Last lines of {spec.log_file}:\n{tail}",
                                 log_tail=tail, **result)
    except (OSError, RuntimeError) as exc:
        module.fail_json(msg=f"{spec.name}: {exc}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
