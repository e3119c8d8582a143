"""Traffic scenarios in genai-bench notation: lengths of prompt and output per request.

  D(in,out)                          every request exactly in prompt / out output tokens
  N(mean_in,sd_in)/(mean_out,sd_out) normal, rounded, clamped to >= 1
  U(min_in,max_in)/(min_out,max_out) uniform integers, bounds included
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import List, Tuple

_NUM = r"\s*(\d+(?:\.\d+)?)\s*"
_PAIR = rf"\({_NUM},{_NUM}\)"
_PATTERNS = {
    "D": re.compile(rf"^D{_PAIR}$"),
    "N": re.compile(rf"^N{_PAIR}/{_PAIR}$"),
    "U": re.compile(rf"^U{_PAIR}/{_PAIR}$"),
}


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Scenario:
    kind: str
    params: Tuple[float, ...]
    text: str

    def sample(self, count: int, seed: int) -> List[Tuple[int, int]]:
        """(prompt_tokens, output_tokens) for `count` requests; same seed, same lengths."""
        rng = random.Random(f"scenario:{seed}:{self.text}")
        out = []
        for _index in range(count):
            if self.kind == "D":
                lengths = (self.params[0], self.params[1])
            elif self.kind == "N":
                lengths = (rng.gauss(self.params[0], self.params[1]),
                           rng.gauss(self.params[2], self.params[3]))
            else:
                lengths = (rng.randint(int(self.params[0]), int(self.params[1])),
                           rng.randint(int(self.params[2]), int(self.params[3])))
            out.append((max(1, int(round(lengths[0]))), max(1, int(round(lengths[1])))))
        return out


def parse_scenario(text: str) -> Scenario:
    if not isinstance(text, str):
        raise ScenarioError(f"got {text!r}; use e.g. D(128,32), N(480,240)/(300,150), "
                            "U(50,100)/(200,250)")
    compact = text.strip()
    pattern = _PATTERNS.get(compact[:1])
    match = pattern.match(compact) if pattern else None
    if not match:
        raise ScenarioError(f"got {text!r}; use D(in,out), N(mean_in,sd_in)/(mean_out,sd_out) "
                            "or U(min_in,max_in)/(min_out,max_out)")
    params = tuple(float(g) for g in match.groups())
    kind = compact[0]
    if kind == "D" and (params[0] < 1 or params[1] < 1 or params[0] % 1 or params[1] % 1):
        raise ScenarioError(f"{text}: D() lengths must be whole numbers >= 1")
    if kind == "N" and (params[0] < 1 or params[2] < 1):
        raise ScenarioError(f"{text}: N() means must be >= 1")
    if kind == "U" and (params[0] > params[1] or params[2] > params[3] or min(params) < 1
                        or any(p % 1 for p in params)):
        raise ScenarioError(f"{text}: U() needs whole numbers 1 <= min <= max")
    return Scenario(kind, params, compact)
