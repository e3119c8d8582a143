"""The vLLM server filter: templates and tasks lay out what module_utils.vllm_server builds."""
from __future__ import annotations

import copy

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError
from ansible_collections.llmops.platform.plugins.module_utils.vllm_k8s_pod import k8s_server
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import ServerError, local_server, target_from


def _resolved(adapters, ranks):
    ranks = dict(ranks or {})
    return {name: {"path": found, "rank": ranks.get(name)} if isinstance(found, str) else dict(found)
            for name, found in dict(adapters or {}).items()}


def vllm_server(model, target, replica=0, model_dir=None, python="python3", vllm_args=None, adapters=None,
                adapter_ranks=None):
    """The server of one llm_models entry on `target` (the role's vllm_server_target).

    Local: replica `replica`'s argv, env, port and GPUs (model_dir and python required;
    `adapters` maps the entry's adapter names to their resolved directories, `adapter_ranks` to
    their ranks: llm_model_source kind adapter's path and rank).
    Kubernetes: the same plus container, pod ({metadata, spec}), resources, probes, ...
    """
    try:
        facts = target_from(dict(target or {}))
        if facts.kind == "local":
            server = local_server(dict(model), facts, str(model_dir or ""), str(python), int(replica),
                                  vllm_args=vllm_args, adapters=_resolved(adapters, adapter_ranks))
        else:
            server = k8s_server(dict(model), facts, vllm_args=vllm_args)
    except (ServerError, InventoryError) as exc:
        raise AnsibleFilterError(f"Invalid vLLM server: {exc}") from None
    # Fresh objects: the YAML dumper would write anchors for shared ones.
    return copy.deepcopy(server)


class FilterModule:
    def filters(self):
        return {"vllm_server": vllm_server}
