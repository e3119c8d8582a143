"""Benchmark targets per platform (logic in module_utils.bench.targets)."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.bench import targets


def llm_benchmark_targets(models, platform_target, vllm_host, service_url=None):
    try:
        return targets.benchmark_targets(list(models), str(platform_target), str(vllm_host),
                                         service_url or None)
    except targets.TargetError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"llm_benchmark_targets": llm_benchmark_targets}
