#!/usr/bin/python
"""Evaluate a fine-tuned adapter against its base on held-out rows and decide its promotion."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_finetune_eval
short_description: Held-out perplexity and exact-match of base vs fine-tuned model, and the promotion gate
description:
  - Both models are served by one vLLM server at I(base_url) (the base under I(base_model), the
    LoRA adapter under I(tuned_model)). For every held-out row the reference answer's tokens are
    scored with vLLM C(prompt_logprobs) (mean NLL per token, perplexity) and a greedy chat
    completion is compared with the reference (exact-match).
  - The gate promotes the fine-tuned model only when a seeded paired bootstrap over the held-out
    rows puts the whole confidence interval of the NLL change below -I(min_gain) nats per token;
    otherwise it says why not. A refused model is a result, not a failure.
  - Writes the result (with I(extra) merged in) to I(result_file); changed only when it changes.
options:
  base_url: {description: The evaluation server's base URL., type: str, required: true}
  base_model: {description: Served name of the base model., type: str, required: true}
  tuned_model: {description: Served name of the fine-tuned adapter., type: str, required: true}
  eval_file: {description: Held-out rows (alpaca JSON)., type: path, required: true}
  result_file: {description: Where the JSON result is written., type: path, required: true}
  min_gain: {description: Nats per token the held-out NLL must drop by., type: float, default: 0.01}
  confidence: {description: Confidence of the bootstrap interval., type: float, default: 0.95}
  resamples: {description: Bootstrap resamples., type: int, default: 2000}
  seed: {description: Bootstrap seed., type: int, default: 0}
  max_tokens: {description: Generation budget of the exact-match completions., type: int, default: 32}
  extra:
    description: More facts to keep in the result (run hash, adapter path, benchmark summaries).
    type: dict
    default: {}
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- llmops.platform.llm_finetune_eval:
    base_url: http://127.0.0.1:21011
    base_model: tiny-chat-ft-base
    tuned_model: tiny-chat-ft
    eval_file: /runs/x/heldout.json
    result_file: /runs/x/eval.json
"""

RETURN = r"""
promoted:
  description: Whether the gate promotes the fine-tuned model.
  type: bool
  returned: always
reason:
  description: The gate's sentence, numbers included.
  type: str
  returned: always
gate:
  description: Mean NLL and perplexity of both models, the interval of the change, and the gate's settings.
  type: dict
  returned: always
exact_match:
  description: Share of held-out rows each model answered exactly.
  type: dict
  returned: always
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.files import write_json_if_changed as write_json
from ansible_collections.llmops.platform.plugins.module_utils.finetune import evaluate, gate


def main() -> None:
    module = AnsibleModule(argument_spec={
        "base_url": {"type": "str", "required": True},
        "base_model": {"type": "str", "required": True},
        "tuned_model": {"type": "str", "required": True},
        "eval_file": {"type": "path", "required": True},
        "result_file": {"type": "path", "required": True},
        "min_gain": {"type": "float", "default": 0.01},
        "confidence": {"type": "float", "default": 0.95},
        "resamples": {"type": "int", "default": 2000},
        "seed": {"type": "int", "default": 0},
        "max_tokens": {"type": "int", "default": 32, "no_log": False},  # a count, not a secret
        "extra": {"type": "dict", "default": {}},
    })
    p = module.params
    try:
        with open(p["eval_file"], encoding="utf-8") as handle:
            rows = json.load(handle)
        measured = evaluate.evaluate(p["base_url"], {"base": p["base_model"], "tuned": p["tuned_model"]}, rows,
                                     p["max_tokens"])
        verdict = gate.decide(measured["scores"]["base"], measured["scores"]["tuned"], p["min_gain"],
                              p["confidence"], p["resamples"], p["seed"])
    except (OSError, ValueError, evaluate.EvalError, gate.GateError) as exc:
        module.fail_json(msg=f"fine-tuning evaluation failed: {exc}")
    result = {**p["extra"], "models": {"base": p["base_model"], "tuned": p["tuned_model"]},
              "promoted": verdict["promoted"], "reason": verdict["reason"], "gate": verdict,
              "exact_match": measured["exact_match"], "examples": measured["examples"]}
    changed = write_json(p["result_file"], result)
    module.exit_json(changed=changed, promoted=verdict["promoted"], reason=verdict["reason"], gate=verdict,
                     exact_match=measured["exact_match"])


if __name__ == "__main__":
    main()
