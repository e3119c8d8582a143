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


def test_each_replica_serves_its_own_args_on_its_own_port():
    from ansible_collections.llmops.platform.plugins.filter.vllm_server import vllm_server

    model = normalize_models([{**ENTRY, "vllm_args": {"max_num_seqs": 4, "block_size": 32},
                               "replica_vllm_args": [{}, {"max_num_seqs": 16}]}])[0]
    target = {"kind": "local", "device": "cpu"}
    for replica in expand_replicas([model]):
        argv = vllm_server(model, target, replica=replica["index"], model_dir="/models/m", python="/v/bin/python")["argv"]
        assert argv[:3] == ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
        assert argv[argv.index("--port") + 1] == str(replica["port"])
        assert argv[argv.index("--max-num-seqs") + 1] == str(replica["vllm_args"]["max_num_seqs"])
