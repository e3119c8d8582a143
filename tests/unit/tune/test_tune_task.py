import json
import os

import pytest
import yaml

from ansible_collections.llmops.platform.plugins.module_utils.tune.errors import TaskError
from ansible_collections.llmops.platform.plugins.module_utils.tune.task import (
    load_task_file,
    parse_scenario,
    parse_task,
    resolve_model_source,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 3))
SEED_TASK = {  # 004's documented format, verbatim apart from the model
    "task_name": "unique-identifier",
    "model": {"name": "llama-3-2-1b-instruct", "namespace": "autotuner"},
    "base_runtime": "sglang",
    "parameters": {"tp_size": {"type": "choice", "values": [1, 2]},
                   "mem_frac": {"type": "choice", "values": [0.7, 0.8, 0.9]}},
    "optimization": {"strategy": "grid_search", "objective": "minimize_latency",
                     "max_iterations": 10, "timeout_per_iteration": 600},
    "benchmark": {"task": "text-to-text", "model_name": "display-name",
                  "model_tokenizer": "HuggingFace/model-id", "traffic_scenarios": ["D(100,100)"],
                  "num_concurrency": [1, 4], "additional_params": {"temperature": 0.0}},
}


def test_seed_format_is_accepted_and_aliases_map_to_vllm_names():
    task = parse_task(SEED_TASK)
    assert task.space == {"tensor_parallel_size": [1, 2], "gpu_memory_utilization": [0.7, 0.8, 0.9]}
    assert task.strategy == "grid" and task.metric == "e2e_ms" and task.direction == "minimize"
    assert task.grid_size == 6 and task.max_iterations == 10
    assert task.scenarios[0].prompt_tokens == 100 and task.concurrency == [1, 4]
    assert task.base_runtime == "sglang"


@pytest.mark.parametrize("name", ["docker_task.json", "simple_task.json", "demo_task.yml"])
def test_shipped_examples_validate(name):
    task = load_task_file(os.path.join(ROOT, "examples", name))
    assert task.space


def test_yaml_and_json_give_the_same_task(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps(SEED_TASK))
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(SEED_TASK))
    a, b = load_task_file(str(tmp_path / "t.json")), load_task_file(str(tmp_path / "t.yaml"))
    assert a.space == b.space and a.concurrency == b.concurrency and a.raw == b.raw


def test_plain_list_equals_choice():
    data = dict(SEED_TASK, parameters={"max_num_seqs": [8, 16]})
    assert parse_task(data).space == {"max_num_seqs": [8, 16]}


def _error(data) -> TaskError:
    with pytest.raises(TaskError) as info:
        parse_task(data)
    return info.value


def test_string_temperature_names_the_field_and_fix():
    bench = dict(SEED_TASK["benchmark"], additional_params={"temperature": "0.0"})
    err = _error(dict(SEED_TASK, benchmark=bench))
    assert err.field == "benchmark.additional_params.temperature"
    assert "without quotes" in err.message


def test_unknown_parameter_is_an_error_listing_known_ones():
    err = _error(dict(SEED_TASK, parameters={"max_num_sequences": [8]}))
    assert err.field == "parameters.max_num_sequences"
    assert "max_num_seqs" in err.message


def test_reserved_and_typed_values():
    assert _error(dict(SEED_TASK, parameters={"port": [1]})).field == "parameters.port"
    err = _error(dict(SEED_TASK, parameters={"max_num_seqs": ["8"]}))
    assert err.field == "parameters.max_num_seqs.values[0]" and "quoted" in err.message
    err = _error(dict(SEED_TASK, parameters={"enable_chunked_prefill": ["true"]}))
    assert "boolean" in err.message


@pytest.mark.parametrize("patch,field", [
    ({"optimization": {"strategy": "hill_climb"}}, "optimization.strategy"),
    ({"optimization": {"objective": "min_cost"}}, "optimization.objective"),
    ({"optimization": {"timeout_per_iteration": "600"}}, "optimization.timeout_per_iteration"),
    ({"optimization": {"max_iterations": 0}}, "optimization.max_iterations"),
    ({"optimization": {"objective": "maximize_goodput"}}, "slo"),
    ({"slo": {"ttft": 1}}, "slo.ttft"),
    ({"slo": {"ttft_ms": 100, "mode": "soft"}}, "slo.mode"),
    ({"benchmark": {"traffic_scenarios": ["D(100)"]}}, "benchmark.traffic_scenarios[0]"),
    ({"benchmark": {"num_concurrency": [0]}}, "benchmark.num_concurrency[0]"),
    ({"runtime": "ome"}, "runtime"),
    ({"tuning": {}}, "tuning"),
])
def test_errors_name_the_field(patch, field):
    data = json.loads(json.dumps(SEED_TASK))
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    assert _error(data).field == field


def test_missing_model_name():
    assert _error(dict(SEED_TASK, model={"namespace": "x"})).field == "model.name"


def test_scenarios():
    assert parse_scenario("D(100,100)", "f").output_tokens == 100
    n = parse_scenario("N(480,240)/(300,150)", "f")
    assert (n.prompt_tokens, n.output_tokens) == (480, 300)
    u = parse_scenario("U(50,150)/(20,40)", "f")
    assert (u.prompt_tokens, u.output_tokens) == (100, 30)


def test_model_source_resolution(tmp_path):
    task = parse_task(SEED_TASK)
    (tmp_path / "llama-3-2-1b-instruct").mkdir()
    assert resolve_model_source(task, model_dir=str(tmp_path)) == f"path:{tmp_path}/llama-3-2-1b-instruct"
    assert resolve_model_source(task, override="generated:tiny-llama") == "generated:tiny-llama"
    with pytest.raises(TaskError) as info:
        resolve_model_source(task)
    assert info.value.field == "model.name"
    hf = parse_task(dict(SEED_TASK, model={"name": "org/repo"}))
    assert resolve_model_source(hf) == "hf:org/repo"
