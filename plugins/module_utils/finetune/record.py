"""What the platform records about a fine-tuning run, and how a promoted adapter joins the
served models. Pure Python: the llama_factory role's filters and the tests call it."""
from __future__ import annotations

import copy
from typing import Any, Mapping


def eval_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics of an llm_finetune_eval result (the gate's numbers, exact-match, and
    each model's benchmark medians when it was benchmarked)."""
    gate = result.get("gate") or {}
    out: dict[str, Any] = {
        "eval_base_nll": gate.get("base_nll"), "eval_tuned_nll": gate.get("tuned_nll"),
        "eval_delta_nll": gate.get("delta_nll"), "eval_base_perplexity": gate.get("base_perplexity"),
        "eval_tuned_perplexity": gate.get("tuned_perplexity"), "eval_examples": gate.get("examples"),
    }
    if gate.get("ci"):
        out["eval_delta_nll_ci_low"], out["eval_delta_nll_ci_high"] = gate["ci"]
    for role, share in (result.get("exact_match") or {}).items():
        out[f"eval_{role}_exact_match"] = share
    for role, summary in (result.get("bench") or {}).items():
        summary = summary or {}
        out[f"bench_{role}_ttft_p50_ms"] = (summary.get("ttft_ms") or {}).get("median")
        out[f"bench_{role}_e2e_p50_ms"] = (summary.get("e2e_ms") or {}).get("median")
        out[f"bench_{role}_output_tokens_per_s"] = (summary.get("throughput") or {}).get("output_tokens_per_s")
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def eval_tags(result: Mapping[str, Any]) -> dict[str, str]:
    return {"llmops.promoted": str(bool(result.get("promoted"))).lower(),
            "llmops.promotion_reason": str(result.get("reason", ""))[:5000],
            "llmops.eval_heldout_rows": str(result.get("heldout_rows", "")),
            "llmops.adapter_path": str(result.get("adapter", ""))}


def with_promoted(models: Any, promoted: Mapping[str, Any] | None) -> Any:
    """llm_models with each promoted adapter appended to the entry it names ({name, source}).
    An adapter of the same name already in the entry wins (the inventory is explicit);
    a promotion for a model no longer listed is ignored. Anything not a list is returned
    unchanged for normalize_models to reject with its own message."""
    adapters = list((promoted or {}).get("adapters") or [])
    if not isinstance(models, list) or not adapters:
        return models
    out = copy.deepcopy(models)
    for entry in out:
        if not isinstance(entry, dict):
            continue
        for adapter in adapters:
            if adapter.get("model") != entry.get("name"):
                continue
            listed = entry.setdefault("adapters", [])
            names = [a.get("name") for a in listed if isinstance(a, dict)] if isinstance(listed, list) else None
            if names is not None and adapter["name"] not in names:
                listed.append({"name": adapter["name"], "source": adapter["source"]})
    return out
