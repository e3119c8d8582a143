"""Score a base model and its fine-tuned adapter on held-out rows, on one running vLLM server.

For each alpaca row (instruction, input, output) the conversation is rendered by the server's
own chat template (vLLM /tokenize with messages), so the tokens scored are exactly those a
chat client would send and the trainer trained on. The reference answer's tokens are those
after the longest common prefix of "user turn + generation prompt" and "user turn + answer"
(the answer and its end-of-sequence token). Their log-probabilities come from one
/v1/completions call with `prompt_logprobs` (no sampling, so deterministic). A greedy chat
completion per row gives exact-match as a second, coarser signal. HTTP through Ansible's open_url.
"""
from __future__ import annotations

import json
import math
import urllib.error
from typing import Any, Mapping, Sequence

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import open_url

from .gate import Scores


class EvalError(RuntimeError):
    pass


def _post(url: str, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    try:
        with open_url(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
                      method="POST", timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise EvalError(f"{url} answered HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, UrlConnectionError, OSError) as exc:
        raise EvalError(f"{url} did not answer: {exc}") from None


def user_message(row: Mapping[str, Any]) -> dict[str, str]:
    """LLaMA-Factory's alpaca mapping: the prompt is instruction, then input on a new line."""
    parts = [str(row.get("instruction") or ""), str(row.get("input") or "")]
    return {"role": "user", "content": "\n".join(p for p in parts if p)}


def answer_tokens(base_url: str, model: str, row: Mapping[str, Any], timeout: float = 60) -> tuple[list[int], int]:
    """(token ids of user turn + answer, index of the first answer token)."""
    user = user_message(row)
    url = base_url.rstrip("/") + "/tokenize"
    full = _post(url, {"model": model, "messages": [user, {"role": "assistant", "content": str(row["output"])}],
                       "add_generation_prompt": False}, timeout)["tokens"]
    prefix = _post(url, {"model": model, "messages": [user], "add_generation_prompt": True}, timeout)["tokens"]
    start = 0
    while start < min(len(full), len(prefix)) and full[start] == prefix[start]:
        start += 1
    if start == 0 or start >= len(full):
        raise EvalError(f"cannot locate the answer of {user['content'][:60]!r} in its chat-template tokens")
    return list(full), start


def answer_nll(base_url: str, model: str, ids: Sequence[int], start: int, timeout: float = 120) -> float:
    """Summed NLL (nats) of ids[start:] given what precedes each token."""
    answer = _post(base_url.rstrip("/") + "/v1/completions", {
        "model": model, "prompt": list(ids), "max_tokens": 1, "temperature": 0, "prompt_logprobs": 1}, timeout)
    logprobs = answer["choices"][0].get("prompt_logprobs")
    if not logprobs or len(logprobs) != len(ids):
        raise EvalError(f"{model}: the server returned no prompt_logprobs for {len(ids)} prompt tokens")
    total = 0.0
    for position in range(start, len(ids)):
        entry = (logprobs[position] or {}).get(str(ids[position]))
        if entry is None or not math.isfinite(float(entry["logprob"])):
            raise EvalError(f"{model}: no log-probability for prompt token {position}")
        total -= float(entry["logprob"])
    return total


def greedy_answer(base_url: str, model: str, row: Mapping[str, Any], max_tokens: int, timeout: float = 120) -> str:
    answer = _post(base_url.rstrip("/") + "/v1/chat/completions", {
        "model": model, "messages": [user_message(row)], "max_tokens": max_tokens, "temperature": 0, "seed": 0},
        timeout)
    return str(answer["choices"][0]["message"].get("content") or "")


def evaluate(base_url: str, models: Mapping[str, str], rows: Sequence[Mapping[str, Any]],
             max_tokens: int = 32) -> dict[str, Any]:
    """{"scores": {role: Scores}, "exact_match": {role: share}, "examples": [...]} for roles
    "base" and "tuned" (model names served by the one server at base_url)."""
    if not rows:
        raise EvalError("no held-out rows to evaluate")
    spans = [answer_tokens(base_url, models["base"], row) for row in rows]
    tokens = [len(ids) - start for ids, start in spans]
    scores, matches, examples = {}, {}, []
    for role in ("base", "tuned"):
        nll = [answer_nll(base_url, models[role], ids, start) for ids, start in spans]
        scores[role] = Scores(nll=nll, tokens=tokens)
        answers = [greedy_answer(base_url, models[role], row, max_tokens) for row in rows]
        hits = [a.strip() == str(row["output"]).strip() for a, row in zip(answers, rows)]
        matches[role] = sum(hits) / len(rows)
        for index, (answer, hit, value) in enumerate(zip(answers, hits, nll)):
            if role == "base":
                examples.append({"prompt": user_message(rows[index])["content"], "reference": rows[index]["output"],
                                 "answer_tokens": tokens[index]})
            examples[index][role] = {"answer": answer, "exact": hit, "nll_per_token": value / tokens[index]}
    return {"scores": scores, "exact_match": matches, "examples": examples}
