"""llm_models validation: every bad entry names its field and the fix."""
import pytest

from ansible_collections.llmops.platform.plugins.module_utils.inventory import (
    InventoryError,
    expand_replicas,
    normalize_models,
    parse_source,
    vllm_cli_args,
)


def test_defaults_and_ports():
    models = normalize_models(
        [{"name": "chat", "source": "generated:tiny-llama", "replicas": 2},
         {"name": "code", "source": "hf:org/model@abc", "vllm_args": {"max_num_seqs": 8}}],
        default_args={"max_num_seqs": 64, "block_size": 16},
    )
    assert models[0]["ports"] == [8100, 8101]
    assert models[1]["ports"] == [8110]
    assert models[1]["vllm_args"] == {"max_num_seqs": 8, "block_size": 16}
    assert models[1]["source_ref"] == "org/model" and models[1]["revision"] == "abc"
    assert models[0]["gpus"] == 0


@pytest.mark.parametrize(
    "entry, field, words",
    [
        ({"source": "generated:tiny-llama"}, "llm_models[0].name", "missing"),
        ({"name": "chat", "source": "generated:tiny-llama", "replicas": -1}, "llm_models[0].replicas", "between 0"),
        ({"name": "chat", "source": "s3://bucket/x"}, "llm_models[0].source", "scheme"),
        ({"name": "chat", "source": "ftp:x"}, "llm_models[0].source", "unknown source scheme"),
        ({"name": "chat", "source": "path:relative/dir"}, "llm_models[0].source", "absolute"),
        ({"name": "chat", "source": "hf:not a repo"}, "llm_models[0].source", "repo id"),
        ({"name": "Chat_1", "source": "generated:tiny-llama"}, "llm_models[0].name", "lowercase"),
        ({"name": "vllm", "source": "generated:tiny-llama"}, "llm_models[0].name", "reserved"),
        ({"name": "chat", "source": "generated:tiny-llama", "replica": 2}, "llm_models[0].replica", "unknown key"),
        ({"name": "chat", "source": "generated:tiny-llama", "replicas": "two"}, "llm_models[0].replicas", "integer"),
        ({"name": "chat", "source": "generated:tiny-llama", "vllm_args": {"port": 1}}, "llm_models[0].vllm_args.port", "vllm role"),
        ({"name": "chat", "source": "generated:tiny-llama", "vllm_args": {"Max-Len": 1}}, "llm_models[0].vllm_args.Max-Len", "snake_case"),
        ({"name": "chat"}, "llm_models[0].source", "missing"),
    ],
)
def test_bad_entries_name_the_field(entry, field, words):
    with pytest.raises(InventoryError) as err:
        normalize_models([entry])
    assert err.value.field == field
    assert words in str(err.value)


def test_duplicate_names_and_port_clash():
    with pytest.raises(InventoryError, match="duplicate"):
        normalize_models([{"name": "a", "source": "generated:tiny-llama"}] * 2)
    with pytest.raises(InventoryError, match="already used"):
        normalize_models([{"name": "a", "source": "generated:tiny-llama", "replicas": 3, "port": 9000},
                          {"name": "b", "source": "generated:tiny-llama", "port": 9002}])


def test_cpu_block_size_must_be_multiple_of_32():
    entry = {"name": "a", "source": "generated:tiny-llama", "vllm_args": {"block_size": 16}}
    with pytest.raises(InventoryError) as err:
        normalize_models([entry], device="cpu")
    assert err.value.field == "llm_models[0].vllm_args.block_size"
    assert normalize_models([entry], device="gpu")[0]["vllm_args"]["block_size"] == 16


def test_not_a_list():
    with pytest.raises(InventoryError, match="must be a list"):
        normalize_models({"name": "a"})


def test_parse_source_hf_default_revision():
    assert parse_source("hf:meta-llama/Llama-3.2-1B") == {"scheme": "hf", "ref": "meta-llama/Llama-3.2-1B", "revision": "main"}


def test_vllm_cli_args():
    argv = vllm_cli_args({"max_num_seqs": 64, "enforce_eager": True, "enable_prefix_caching": False,
                          "override_generation_config": {"temperature": 0.5}})
    assert argv == ["--enforce-eager", "--max-num-seqs", "64",
                    "--override-generation-config", '{"temperature": 0.5}']


def test_expand_replicas():
    models = normalize_models([{"name": "a", "source": "generated:tiny-llama", "replicas": 2}])
    replicas = expand_replicas(models, "127.0.0.1")
    assert [r["name"] for r in replicas] == ["vllm-a-0", "vllm-a-1"]
    assert replicas[1]["health_url"] == "http://127.0.0.1:8101/health"


def test_ports_are_not_checked_off_the_local_target():
    models = [{"name": "a", "source": "generated:tiny-llama", "replicas": 12},
              {"name": "b", "source": "generated:tiny-llama"}]
    with pytest.raises(InventoryError, match="already used"):
        normalize_models(models)
    assert len(normalize_models(models, check_ports=False)) == 2


@pytest.mark.parametrize("value", [0, 0.0, -0.5, 1.01, 90, "0.9", True])
def test_gpu_memory_utilization_outside_zero_one_is_named(value):
    from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError, normalize_models

    with pytest.raises(InventoryError) as err:
        normalize_models([{"name": "chat", "source": "generated:tiny-llama",
                           "vllm_args": {"gpu_memory_utilization": value}}])
    assert err.value.field == "llm_models[0].vllm_args.gpu_memory_utilization"
    if value == 90:
        assert "write 0.9" in str(err.value)


def test_gpu_memory_utilization_from_default_args_is_checked_too():
    from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError, normalize_models

    ok = normalize_models([{"name": "chat", "source": "generated:tiny-llama"}], {"gpu_memory_utilization": 1})
    assert ok[0]["vllm_args"]["gpu_memory_utilization"] == 1
    with pytest.raises(InventoryError):
        normalize_models([{"name": "chat", "source": "generated:tiny-llama"}], {"gpu_memory_utilization": 1.5})


def test_max_model_len_above_the_models_positions_fails_naming_the_field(tmp_path):
    import json

    from ansible_collections.llmops.platform.plugins.module_utils.inventory import (
        InventoryError,
        context_length_check,
        normalize_models,
    )

    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}))
    models = normalize_models([
        {"name": "fits", "source": f"path:{tmp_path}", "vllm_args": {"max_model_len": 2048}},
        {"name": "long", "source": f"path:{tmp_path}", "vllm_args": {"max_model_len": 4096}}])
    with pytest.raises(InventoryError) as err:
        context_length_check(models)
    assert err.value.field == "llm_models[1].vllm_args.max_model_len" and "2048" in str(err.value)
    assert context_length_check(models[:1]) == models[:1]
    vlm = tmp_path / "vlm"
    vlm.mkdir()
    (vlm / "config.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 1024}}))
    gen = normalize_models([{"name": "g", "source": "generated:tiny-llama", "vllm_args": {"max_model_len": 4096}}])
    with pytest.raises(InventoryError):
        context_length_check(gen, {"g": str(vlm)})  # a resolved directory counts as on disk
    assert context_length_check(gen) == gen  # no config on disk: nothing to check against


def _with_adapters(*adapters, **extra):
    return [{"name": "tiny-chat", "source": "generated:tiny-llama", "adapters": list(adapters)},
            {"name": "other", "source": "generated:tiny-llama", **extra}]


def test_adapters_are_normalised_with_their_sources():
    models = normalize_models(_with_adapters({"name": "tiny-chat-ft", "source": "path:/srv/adapters/ft"},
                                             {"name": "tiny-chat-sql", "source": "hf:org/sql-lora@abc"}))
    assert models[0]["adapters"] == [
        {"name": "tiny-chat-ft", "source": "path:/srv/adapters/ft", "source_scheme": "path",
         "source_ref": "/srv/adapters/ft", "revision": ""},
        {"name": "tiny-chat-sql", "source": "hf:org/sql-lora@abc", "source_scheme": "hf",
         "source_ref": "org/sql-lora", "revision": "abc"}]
    assert models[1]["adapters"] == []  # every normalised entry has the key


@pytest.mark.parametrize("adapters, field, words", [
    ("ft", "llm_models[tiny-chat].adapters", "must be a list"),
    (["ft"], "llm_models[tiny-chat].adapters[0]", "mapping {name, source}"),
    ([{"source": "path:/a"}], "llm_models[tiny-chat].adapters[0].name", "is missing"),
    ([{"name": "Tiny_FT", "source": "path:/a"}], "llm_models[tiny-chat].adapters[0].name", "lowercase"),
    ([{"name": "ft"}], "llm_models[tiny-chat].adapters[0].source", "path:/abs/dir"),
    ([{"name": "ft", "source": "path:/a", "rank": 8}], "llm_models[tiny-chat].adapters[0].rank", "unknown key"),
    ([{"name": "ft", "source": "generated:tiny-llama"}], "llm_models[tiny-chat].adapters[0].source",
     "is a base model, not a LoRA adapter; use path:/abs/dir"),
    ([{"name": "ft", "source": "s3://bucket/a"}], "llm_models[tiny-chat].adapters[0].source", "adapter source"),
    ([{"name": "ft", "source": "path:relative"}], "llm_models[tiny-chat].adapters[0].source", "absolute"),
    ([{"name": "ft", "source": "hf:not a repo"}], "llm_models[tiny-chat].adapters[0].source", "repo id"),
    ([{"name": "ft", "source": "path:/a"}, {"name": "ft", "source": "path:/b"}],
     "llm_models[tiny-chat].adapters[1].name", "llm_models[tiny-chat].adapters[0].name"),
])
def test_bad_adapters_name_the_field_and_the_fix(adapters, field, words):
    with pytest.raises(InventoryError) as err:
        normalize_models([{"name": "tiny-chat", "source": "generated:tiny-llama", "adapters": adapters}])
    assert err.value.field == field
    assert words in str(err.value)


def test_an_adapter_named_like_a_model_names_both():
    # A model listed after the adapter counts too: clients pick either by `model`.
    with pytest.raises(InventoryError) as err:
        normalize_models(_with_adapters({"name": "other", "source": "path:/a"}))
    assert err.value.field == "llm_models[tiny-chat].adapters[0].name"
    assert "llm_models[1].name" in str(err.value) and "rename one" in str(err.value)
    with pytest.raises(InventoryError) as err:
        normalize_models(_with_adapters({"name": "tiny-chat", "source": "path:/a"}))
    assert "llm_models[0].name" in str(err.value)


def test_adapter_names_are_unique_across_models():
    with pytest.raises(InventoryError) as err:
        normalize_models(_with_adapters({"name": "ft", "source": "path:/a"},
                                        adapters=[{"name": "ft", "source": "path:/b"}]))
    assert err.value.field == "llm_models[other].adapters[0].name"
    assert "llm_models[tiny-chat].adapters[0].name" in str(err.value)


def test_lora_modules_in_vllm_args_points_at_adapters():
    with pytest.raises(InventoryError) as err:
        normalize_models([{"name": "a", "source": "generated:tiny-llama", "vllm_args": {"lora_modules": "x=/y"}}])
    assert err.value.field == "llm_models[0].vllm_args.lora_modules" and "adapters:" in str(err.value)
    ok = normalize_models([{"name": "a", "source": "generated:tiny-llama",
                            "vllm_args": {"max_loras": 4, "max_lora_rank": 64}}])
    assert ok[0]["vllm_args"]["max_lora_rank"] == 64
