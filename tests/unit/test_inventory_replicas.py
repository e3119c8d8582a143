"""Per-replica vLLM args (replica_vllm_args): unequal replicas for the routing comparison."""
import pytest

from ansible_collections.llmops.platform.plugins.module_utils.inventory import (
    InventoryError,
    expand_replicas,
    normalize_models,
    vllm_cli_args,
)

ENTRY = {"name": "chat", "source": "generated:tiny-llama", "replicas": 2,
         "vllm_args": {"max_model_len": 1024, "max_num_seqs": 8}}


def test_overrides_apply_per_replica_over_model_args():
    models = normalize_models([{**ENTRY, "replica_vllm_args": [{"max_num_seqs": 2}, {"enforce_eager": True}]}],
                              default_args={"block_size": 32})
    replicas = expand_replicas(models)
    assert replicas[0]["vllm_args"] == {"block_size": 32, "max_model_len": 1024, "max_num_seqs": 2}
    assert replicas[1]["vllm_args"] == {"block_size": 32, "max_model_len": 1024, "max_num_seqs": 8,
                                        "enforce_eager": True}
    # The model-level args are untouched: only replicas differ.
    assert models[0]["vllm_args"]["max_num_seqs"] == 8
    assert "--max-num-seqs" in vllm_cli_args(replicas[0]["vllm_args"])
    assert vllm_cli_args(replicas[0]["vllm_args"])[-1] == "2"


def test_shorter_list_leaves_later_replicas_on_model_args():
    models = normalize_models([{**ENTRY, "replicas": 3, "replica_vllm_args": [{"max_num_seqs": 2}]}])
    seqs = [r["vllm_args"]["max_num_seqs"] for r in expand_replicas(models)]
    assert seqs == [2, 8, 8]


def test_no_overrides_means_equal_replicas():
    replicas = expand_replicas(normalize_models([ENTRY]))
    assert replicas[0]["vllm_args"] == replicas[1]["vllm_args"] == {"max_model_len": 1024, "max_num_seqs": 8}


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ([{}, {}, {}], "llm_models[0].replica_vllm_args", "at most replicas (2)"),
        ({"max_num_seqs": 2}, "llm_models[0].replica_vllm_args", "list"),
        (["max_num_seqs"], "llm_models[0].replica_vllm_args[0]", "mapping"),
        ([{}, {"port": 1}], "llm_models[0].replica_vllm_args[1].port", "vllm role"),
        ([{"Max-Seqs": 1}], "llm_models[0].replica_vllm_args[0].Max-Seqs", "snake_case"),
    ],
)
def test_bad_overrides_name_the_field(overrides, field, words):
    with pytest.raises(InventoryError) as err:
        normalize_models([{**ENTRY, "replica_vllm_args": overrides}])
    assert err.value.field == field
    assert words in str(err.value)


def test_role_filter_and_tuner_build_the_same_server_command():
    from ansible_collections.llmops.platform.plugins.filter.llm_models import vllm_server_argv
    from ansible_collections.llmops.platform.plugins.module_utils.vllm_command import server_argv

    args = {"max_num_seqs": 4, "enable_prefix_caching": True, "block_size": 32}
    argv = vllm_server_argv(args, "/v/bin/python", "/models/m", "chat", "127.0.0.1", "8100")
    assert argv == server_argv("/v/bin/python", "/models/m", "chat", "127.0.0.1", 8100, args)
    assert argv[:3] == ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--port") + 1] == "8100" and argv[argv.index("--max-num-seqs") + 1] == "4"
