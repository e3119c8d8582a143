"""When each request should be sent: offsets (s) from the start of a phase.

Open-loop senders anchor every send to start + offset (absolute deadlines), so a late send
never shifts the ones after it; the lag is recorded instead.
"""
from __future__ import annotations

import json
import random
from typing import List, Optional, Tuple

TraceRow = Tuple[float, Optional[int], Optional[int]]


def constant_offsets(count: int, rate: float) -> List[float]:
    return [i / rate for i in range(count)]


def gamma_offsets(count: int, rate: float, burstiness: float, seed: int) -> List[float]:
    """Gamma inter-arrivals with mean 1/rate; shape 1 is Poisson, < 1 burstier, > 1 smoother.

    The first request goes at 0 so every schedule starts with the clock.
    """
    rng = random.Random(f"arrivals:{seed}:{rate}:{burstiness}")
    offsets, t = [], 0.0
    for i in range(count):
        if i:
            t += rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
        offsets.append(t)
    return offsets


def load_trace(path: str, speed: float = 1.0, limit: Optional[int] = None) -> List[TraceRow]:
    """Rows of a timestamped JSONL trace: (offset_s, input_length, output_length).

    Accepts "timestamp" (s) or "timestamp_ms"; lengths from input_length/output_length
    (or prompt_tokens/max_tokens). Sorted by time; offsets start at 0 and divide by speed.
    """
    rows: List[Tuple[float, Optional[int], Optional[int]]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if "timestamp" in item:
                t = float(item["timestamp"])
            elif "timestamp_ms" in item:
                t = float(item["timestamp_ms"]) / 1000.0
            else:
                raise ValueError(f"{path}:{number}: needs timestamp (s) or timestamp_ms")
            lin = item.get("input_length", item.get("prompt_tokens"))
            lout = item.get("output_length", item.get("max_tokens"))
            rows.append((t, int(lin) if lin else None, int(lout) if lout else None))
    if not rows:
        raise ValueError(f"{path}: empty trace")
    rows.sort(key=lambda r: r[0])
    start = rows[0][0]
    rows = [((t - start) / speed, lin, lout) for t, lin, lout in rows]
    return rows[:limit] if limit else rows
