"""Write the Grafana dashboards (roles/monitoring/files/dashboards/*.json) from their code
(plugins/module_utils/monitoring/panels.py, built with grafana-foundation-sdk).

    $(scripts/venv.sh path control)/bin/python scripts/render-dashboards.py          # write
    $(scripts/venv.sh path control)/bin/python scripts/render-dashboards.py --check  # exit 1 on drift
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.llmops.platform.plugins.module_utils.monitoring.grafana import render_all  # noqa: E402

TARGET = os.path.join(ROOT, "roles", "monitoring", "files", "dashboards")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args()
    rendered = render_all()
    stale = sorted(set(os.listdir(TARGET)) - set(rendered))
    drift = []
    for name, text in rendered.items():
        path = os.path.join(TARGET, name)
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != text:
            drift.append(name)
            if not args.check:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
    if args.check:
        for name in drift + stale:
            print(
                f"render-dashboards: {name} is not what panels.py builds; run scripts/render-dashboards.py",
                file=sys.stderr,
            )
        return 1 if drift or stale else 0
    for name in stale:
        os.unlink(os.path.join(TARGET, name))
    print(f"render-dashboards: {len(rendered)} dashboards, {len(drift)} rewritten, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
