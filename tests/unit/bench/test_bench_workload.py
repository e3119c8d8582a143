"""Scenarios, datasets and tokenizer-exact prompts: lengths with known answers."""
import json

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (
    BenchConfig,
    BenchConfigError,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.scenario import (
    ScenarioError,
    parse_scenario,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.schedule import (
    constant_offsets,
    gamma_offsets,
    load_trace,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.workload import (
    build_requests,
    count_tokens,
    load_tokenizer,
)

BASE = {"base_url": "http://127.0.0.1:8000", "model": "chat"}


def test_scenarios_parse_and_sample():
    assert parse_scenario("D(128,32)").sample(3, 0) == [(128, 32)] * 3
    u = parse_scenario("U(10,20)/(1,3)").sample(500, 1)
    assert {i for i, _ in u} == set(range(10, 21)) and {o for _, o in u} == {1, 2, 3}
    n = parse_scenario("N(480,240)/(300,150)").sample(4000, 2)
    mean_in = sum(i for i, _ in n) / len(n)
    assert 460 < mean_in < 500 and min(i for i, _ in n) >= 1
    assert parse_scenario("N(10,5)/(5,1)").sample(5, 3) == parse_scenario("N(10,5)/(5,1)").sample(5, 3)
    for bad in ("D(0,5)", "D(1.5,2)", "U(5,1)/(1,2)", "X(1,2)", "N(1,2)", "D(1,2)/(3,4)"):
        with pytest.raises(ScenarioError):
            parse_scenario(bad)
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, scenario="D(1)")
    assert err.value.field == "scenario"


def test_scenario_sets_lengths_and_max_tokens():
    specs = build_requests(BenchConfig(**BASE, scenario="D(7,3)"), 4, "m")
    bodies = [json.loads(s.body) for s in specs]
    assert all(b["max_tokens"] == 3 for b in bodies)
    assert all(len(b["messages"][0]["content"].split()) == 7 for b in bodies)


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    from ansible_collections.llmops.platform.plugins.module_utils.model_source import resolve

    path = resolve("generated:tiny-llama", str(tmp_path_factory.mktemp("models")))["path"]
    return path, load_tokenizer(path)


def test_exact_prompt_lengths_from_the_models_tokenizer(tiny_tokenizer):
    path, tok = tiny_tokenizer
    cfg = BenchConfig(**BASE, endpoint="completions", scenario="U(5,200)/(1,4)", tokenizer=path)
    specs = build_requests(cfg, 40, "m", tok)
    for spec in specs:
        prompt = json.loads(spec.body)["prompt"]
        assert count_tokens(tok, prompt) == spec.prompt_tokens  # exact, not approximate
    assert len({s.prompt_tokens for s in specs}) > 10


def test_datasets(tmp_path, tiny_tokenizer):
    _, tok = tiny_tokenizer
    share = tmp_path / "sg.json"
    share.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "hello there"},
                           {"from": "gpt", "value": "the of and to in"}]},
        {"conversations": [{"from": "human", "value": "only one turn"}]},
    ]))
    alpaca = tmp_path / "al.json"
    alpaca.write_text(json.dumps([{"instruction": "Sum", "input": "1 2", "output": "3"}]))
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "a b c"}\n\n{"text": "d e"}\n')
    sg = build_requests(BenchConfig(**BASE, dataset="sharegpt", dataset_path=str(share)), 3, "m",
                        tok)
    assert [json.loads(s.body)["messages"][0]["content"] for s in sg] == ["hello there"] * 3
    assert sg[0].max_tokens == count_tokens(tok, "the of and to in")  # reference answer length
    al = build_requests(BenchConfig(**BASE, dataset="alpaca", dataset_path=str(alpaca)), 1, "m")
    assert json.loads(al[0].body)["messages"][0]["content"] == "Sum\n\n1 2"
    jl = build_requests(BenchConfig(**BASE, dataset="jsonl", dataset_path=str(lines),
                                    endpoint="completions"), 4, "m")
    assert sorted({json.loads(s.body)["prompt"] for s in jl}) == ["a b c", "d e"]
    with pytest.raises(BenchConfigError):
        BenchConfig(**BASE, dataset="sharegpt")


def test_arrival_schedules():
    assert constant_offsets(4, 2.0) == [0.0, 0.5, 1.0, 1.5]
    offs = gamma_offsets(20001, 100.0, 1.0, seed=5)
    assert offs[0] == 0.0 and offs == sorted(offs)
    assert 20000 / offs[-1] == pytest.approx(100.0, rel=0.03)  # mean rate
    gaps = [b - a for a, b in zip(offs, offs[1:])]
    mean = sum(gaps) / len(gaps)
    cv2 = sum((g - mean) ** 2 for g in gaps) / len(gaps) / mean ** 2
    assert cv2 == pytest.approx(1.0, rel=0.08)  # Poisson: CV^2 = 1/shape
    bursty = gamma_offsets(20001, 100.0, 0.25, seed=5)
    bgaps = [b - a for a, b in zip(bursty, bursty[1:])]
    bmean = sum(bgaps) / len(bgaps)
    assert sum((g - bmean) ** 2 for g in bgaps) / len(bgaps) / bmean ** 2 == pytest.approx(4.0,
                                                                                         rel=0.15)


def test_trace_loading(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp_ms": 3000, "input_length": 4}\n'
                    '{"timestamp_ms": 1000, "output_length": 2}\n')
    assert load_trace(str(path), speed=2.0) == [(0.0, None, 2), (1.0, 4, None)]
    path.write_text('{"t": 1}\n')
    with pytest.raises(ValueError):
        load_trace(str(path))


@pytest.mark.parametrize("field, value", [
    ("profile", "ramp"), ("rate", 0), ("burstiness", -1), ("sweep_steps", 0),
    ("max_concurrency", 0), ("trace_speed", 0), ("repeats", 0), ("percentiles", [100]),
    ("percentiles", []), ("slo_target", 1.5), ("slo_ttft_ms", -1), ("dataset", "csv"),
    ("server_args", "x"),
])
def test_new_options_are_checked(field, value):
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**{**BASE, field: value})
    assert err.value.field == field


def test_profile_requirements():
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, profile="constant")
    assert err.value.field == "rate"
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, profile="trace")
    assert err.value.field == "trace_path"
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, profile="slo_search")
    assert err.value.field == "profile"
    assert BenchConfig(**BASE, percentiles=[99.9, 50, 50]).percentiles == [50.0, 99.9]


def _shared(**extra):
    return BenchConfig(**BASE, dataset="shared_prefix", prefix_groups=3, prefix_tokens=20, prompt_tokens=5,
                       seed=4, **extra)


def test_shared_prefix_chat_groups_share_their_system_prompt():
    bodies = [json.loads(s.body) for s in build_requests(_shared(), 60, "m")]
    systems = [b["messages"][0] for b in bodies]
    assert all(m["role"] == "system" and len(m["content"].split()) == 20 for m in systems)
    assert len({m["content"] for m in systems}) == 3  # every group is used, and only 3
    questions = [b["messages"][1]["content"] for b in bodies]
    assert len(set(questions)) == 60 and all(len(q.split()) == 5 for q in questions)
    groups = [m["content"] for m in systems]
    assert len(set(groups[:6])) > 1  # users of the groups arrive interleaved, not group by group
    # Seeded: the same run again is the same; another seed another set of prefixes.
    assert bodies == [json.loads(s.body) for s in build_requests(_shared(), 60, "m")]
    other = build_requests(BenchConfig(**BASE, dataset="shared_prefix", prefix_groups=3, prefix_tokens=20,
                                       prompt_tokens=5, seed=5), 60, "m")
    assert not {json.loads(s.body)["messages"][0]["content"] for s in other} & set(groups)
    # Warmup (another salt) uses the same prefixes with other questions.
    warm = [json.loads(s.body) for s in build_requests(_shared(), 10, "w")]
    assert {b["messages"][0]["content"] for b in warm} <= set(groups)
    assert not {b["messages"][1]["content"] for b in warm} & set(questions)


def test_shared_prefix_completions_start_with_the_group_prompt():
    bodies = [json.loads(s.body) for s in build_requests(_shared(endpoint="completions"), 12, "m")]
    prefixes = {b["prompt"].split("\n\n")[0] for b in bodies}
    assert len(prefixes) <= 3 and all(len(p.split()) == 20 for p in prefixes)


def test_shared_prefix_exact_lengths_with_a_tokenizer(tiny_tokenizer):
    path, tok = tiny_tokenizer
    cfg = _shared(tokenizer=path)
    for spec in build_requests(cfg, 10, "m", tok):
        system, user = (m["content"] for m in json.loads(spec.body)["messages"])
        assert count_tokens(tok, system) == 20 and count_tokens(tok, user) == 5
        assert spec.prompt_tokens == 25


@pytest.mark.parametrize("field,value", [("prefix_groups", 0), ("prefix_tokens", 0), ("prefix_groups", "8"),
                                         ("prefix_tokens", True)])
def test_shared_prefix_options_are_checked(field, value):
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, dataset="shared_prefix", **{field: value})
    assert err.value.field == field


# --- multi_turn: conversations that resend their history ----------------------------------

def _turn_messages(spec):
    return json.loads(spec.body)["messages"]


def test_multi_turn_resends_each_conversation_turn_by_turn():
    cfg = BenchConfig(**BASE, dataset="multi_turn", turns=3, prompt_tokens=6, max_tokens=4)
    specs = build_requests(cfg, 7, "m")  # ceil(7 / 3) = 3 conversations, the last one cut short
    messages = [_turn_messages(s) for s in specs]
    # Turn by turn: requests 0-2 open conversations 0-2, 3-5 are their second turns, 6 a third.
    assert [len(m) for m in messages] == [1, 1, 1, 3, 3, 3, 5]
    for first, second in zip(messages[:3], messages[3:6]):
        assert second[:1] == first  # the earlier question comes back first ...
        assert second[1]["role"] == "assistant" and len(second[1]["content"].split()) == 4  # ... with its answer
        assert second[2]["role"] == "user" and second[2] != first[0]
    assert messages[6][:3] == messages[3]  # the third turn resends the whole second request
    assert len({m[0]["content"] for m in messages[:3]}) == 3  # conversations differ
    assert build_requests(cfg, 7, "m")[5].body == specs[5].body  # seeded
    warm = build_requests(cfg, 3, "w")
    assert all(_turn_messages(w)[0] != m[0] for w, m in zip(warm, messages))  # warm-up talks of other things


def test_multi_turn_completions_concatenate_the_history():
    cfg = BenchConfig(**BASE, dataset="multi_turn", turns=2, endpoint="completions", prompt_tokens=5, max_tokens=3)
    first, _other, second, _ = build_requests(cfg, 4, "m")
    assert json.loads(second.body)["prompt"].startswith(json.loads(first.body)["prompt"] + "\n\n")


def test_turns_is_checked():
    with pytest.raises(BenchConfigError, match="turns"):
        BenchConfig(**BASE, dataset="multi_turn", turns=0)
