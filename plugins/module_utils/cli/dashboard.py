"""`llmops dashboard [--dir reports/compare] [--prometheus-url URL] [--host 127.0.0.1] [--port 8501]`:
the Streamlit dashboard (apps/dashboard/compare_app.py) over a results directory, with its
"monitoring" page (apps/dashboard/pages/monitoring.py) over a Prometheus.

Uses the streamlit next to this interpreter (the control venv's, pinned in the lock), headless,
on loopback unless told otherwise: the app has no login. The process execs into streamlit, so
Ctrl-C and a kill of the printed pid stop the server itself, with no orphan left behind.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Optional

# plugins/module_utils/cli/dashboard.py -> repository root (the collection is the checkout)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
APP = os.path.join(ROOT, "apps", "dashboard", "compare_app.py")


def register(subparsers: "argparse._SubParsersAction") -> None:
    p = subparsers.add_parser(
        "dashboard", help="serve the baseline-vs-managed comparison dashboard (Streamlit)",
        description="Starts apps/dashboard/compare_app.py with the control venv's streamlit over "
                    "the comparisons playbooks/compare.yml writes; see docs/compare.md.")
    p.add_argument("--dir", default=None,
                   help="results directory holding <run>/<arm>/run<k>/<model>/ (default reports/compare; "
                        "when the default does not exist yet, only the monitoring page has data)")
    p.add_argument("--prometheus-url", default=None,
                   help="Prometheus of the monitoring page "
                        "(default: the local target's, from LLMOPS_HOME/run/monitoring.json)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; the dashboard has no authentication)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.set_defaults(func=run)


def streamlit_bin(python: str = sys.executable) -> str:
    # Not resolved through symlinks: the venv's bin/python is a link to the base interpreter.
    return os.path.join(os.path.dirname(python), "streamlit")


def problem(args: argparse.Namespace, streamlit: str) -> Optional[str]:
    """Why the dashboard cannot start, naming the flag or the fix; None when it can."""
    if args.dir is not None and not os.path.isdir(args.dir):
        return (f"--dir {args.dir}: no such directory; run `ansible-playbook playbooks/compare.yml` "
                "to produce a comparison, or point --dir at a directory of comparison runs")
    if not (os.path.isfile(streamlit) and os.access(streamlit, os.X_OK)):
        return (f"streamlit is not installed next to {sys.executable} ({streamlit} missing); "
                "run `make control` (it is in requirements/control.lock), or pip install streamlit "
                "into the interpreter that runs llmops")
    if not 0 < args.port < 65536:
        return f"--port {args.port}: not a TCP port"
    return None


def results_dir(args: argparse.Namespace) -> str:
    return args.dir if args.dir is not None else os.path.join("reports", "compare")


def command(args: argparse.Namespace, streamlit: str) -> tuple[list[str], dict[str, str]]:
    """The streamlit argv and environment for these arguments."""
    argv = [streamlit, "run", APP, "--server.address", args.host, "--server.port", str(args.port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--global.developmentMode", "false", "--client.toolbarMode", "viewer"]
    env = dict(os.environ, LLMOPS_COMPARE_DIR=os.path.abspath(results_dir(args)))
    if args.prometheus_url:
        env["LLMOPS_PROMETHEUS_URL"] = args.prometheus_url
    return argv, env


def url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    streamlit = streamlit_bin()
    why = problem(args, streamlit)
    if why:
        print(f"llmops dashboard: {why}", file=sys.stderr)
        return 2
    argv, env = command(args, streamlit)
    print(f"llmops dashboard: {url(args.host, args.port)} (results: {os.path.abspath(results_dir(args))}; "
          f"pid {os.getpid()}; Ctrl-C stops it)", flush=True)
    if not _loopback(args.host):
        print(f"llmops dashboard: warning: bound to {args.host}; anyone who can reach it sees the "
              "reports (there is no login)", file=sys.stderr, flush=True)
    os.execve(streamlit, argv, env)
    return 0  # not reached
