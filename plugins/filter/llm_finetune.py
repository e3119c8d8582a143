"""Filters of the fine-tuning layer (logic in plugins/module_utils/finetune/record.py)."""
from __future__ import annotations

from ansible_collections.llmops.platform.plugins.module_utils.finetune import record


class FilterModule:
    def filters(self):
        return {
            "llm_finetune_eval_metrics": record.eval_metrics,
            "llm_finetune_eval_tags": record.eval_tags,
            "llm_models_with_promoted": record.with_promoted,
        }
