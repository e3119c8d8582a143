"""The sweep report's charts, drawn by the shared chart module (module_utils/charts.py)."""
from __future__ import annotations

from typing import Optional, Sequence

from ansible_collections.llmops.platform.plugins.module_utils.charts import Axis, Series, xy_chart

GOOD, OTHER = "#059669", "#94a3b8"


def objective_chart(values: Sequence[Optional[float]], direction: str, label: str) -> str:
    """Each trial's objective (dots; infeasible as a red x on the floor) and the best so far."""
    best, running = None, []
    for i, value in enumerate(values):
        if value is not None and (best is None or (value < best if direction == "minimize" else value > best)):
            best = value
        if best is not None:
            running.append((float(i), best))
    trials = Series("trial", [(float(i), v) for i, v in enumerate(values)], color="#2563eb", line=False)
    return xy_chart("Objective over trials", [trials, Series("best so far", running, color=GOOD, markers=False)],
                    Axis("trial", integer=True, lo=-0.5, hi=len(values) - 0.5), Axis(label, zero=False))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated when maximising x (throughput) and minimising y (latency)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 >= x and y2 <= y) and (x2 > x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return front


def pareto_chart(points: Sequence[tuple[float, float]], labels: Sequence[str]) -> str:
    front = sorted(pareto_front(points), key=lambda i: points[i][0])
    rest = [i for i in range(len(points)) if i not in front]
    return xy_chart("Throughput vs latency (Pareto front in green)", [
        Series("Pareto front", [points[i] for i in front], color=GOOD, labels=[labels[i] for i in front]),
        Series("other trials", [points[i] for i in rest], color=OTHER, line=False, labels=[labels[i] for i in rest]),
    ], Axis("output tokens/s", zero=False), Axis("mean E2E latency (ms)", zero=False))
