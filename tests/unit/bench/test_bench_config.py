"""Every bad option is rejected with an error that names it; options stay in sync."""
import math

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench.config import (
    BenchConfig,
    BenchConfigError,
)
from ansible_collections.llmops.platform.plugins.module_utils.bench.workload import (
    request_body,
    synthetic_prompt,
)

BASE = {"base_url": "http://127.0.0.1:8000", "model": "chat"}


@pytest.mark.parametrize("field, value", [
    ("base_url", "ftp://127.0.0.1:8000"),
    ("base_url", "127.0.0.1:8000"),
    ("base_url", "http://"),
    ("base_url", "http://127.0.0.1:99999"),
    ("base_url", "http://127.0.0.1:8000/v1"),
    ("base_url", "http://127.0.0.1:8000/?x=1"),
    ("model", ""),
    ("model", None),
    ("endpoint", "embeddings"),
    ("num_requests", 0),
    ("num_requests", "10"),
    ("concurrency", 0),
    ("concurrency", True),
    ("concurrency", 10**6),
    ("warmup_requests", -1),
    ("max_tokens", 0),
    ("prompt_tokens", 0),
    ("ignore_eos", "yes"),
    ("seed", -1),
    ("request_timeout_s", 0),
    ("request_timeout_s", "fast"),
    ("run_timeout_s", math.nan),
    ("run_timeout_s", -5),
    ("api_key", 12345),
    ("additional_params", ["temperature", 0]),
    ("concurrency", []),
    ("concurrency", [1, 4, 4]),
    ("concurrency", [1, 0]),
    ("min_step_s", -1),
    ("min_step_s", "long"),
    ("max_seconds", 0),
    ("headers", {"Content-Type": "text/plain"}),
    ("headers", ["X-A: b"]),
    ("headers", {"bad name": "x"}),
    ("label", 5),
])
def test_bad_field_is_named(field, value):
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**{**BASE, field: value})
    assert err.value.field == field
    assert field in str(err.value) and len(err.value.message) > 10


@pytest.mark.parametrize("params, field", [
    ({"nested": {"a": 1}}, "additional_params.nested"),
    ({"stop": [["x"]]}, "additional_params.stop"),
    ({"temperature": math.inf}, "additional_params.temperature"),
    ({"stream": False}, "additional_params.stream"),
    ({"max_tokens": 5}, "additional_params.max_tokens"),
    ({"model": "other"}, "additional_params.model"),
])
def test_additional_params_errors_name_the_key(params, field):
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, additional_params=params)
    assert err.value.field == field


def test_valid_config_normalises_and_redacts():
    cfg = BenchConfig(base_url="http://127.0.0.1:8000/router/", model="chat", api_key="s3cret",
                      additional_params={"temperature": 0.0, "stop": ["\n", "END"], "top_k": 5})
    assert cfg.url == "http://127.0.0.1:8000/router/v1/chat/completions"
    assert "api_key" not in cfg.to_dict() and "s3cret" not in repr(cfg)
    assert cfg.to_dict(redact=False)["api_key"] == "s3cret"
    assert BenchConfig(**BASE, endpoint="completions").url.endswith("/v1/completions")


def test_from_dict_rejects_unknown_and_missing():
    with pytest.raises(BenchConfigError) as err:
        BenchConfig.from_dict({**BASE, "concurency": 4})
    assert err.value.field == "concurency"
    with pytest.raises(BenchConfigError) as err:
        BenchConfig.from_dict({"model": "chat"})
    assert err.value.field == "base_url"
    assert BenchConfig.from_dict({**BASE, "api_key": None}).api_key is None


def test_body_and_prompts_are_deterministic_and_distinct():
    cfg = BenchConfig(**BASE, prompt_tokens=20, additional_params={"temperature": 0.5})
    assert synthetic_prompt(1, 3, 20) == synthetic_prompt(1, 3, 20)
    assert synthetic_prompt(1, 3, 20) != synthetic_prompt(1, 4, 20)
    assert len(synthetic_prompt(1, 3, 20).split()) == 20
    body = request_body(cfg, "hi")
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert body["ignore_eos"] is True and body["temperature"] == 0.5
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    no_eos = request_body(BenchConfig(**BASE, endpoint="completions", ignore_eos=False), "hi")
    assert "ignore_eos" not in no_eos and no_eos["prompt"] == "hi"
    assert no_eos["stream_options"] == {"include_usage": True}


def test_module_options_match_engine_defaults_and_docs():
    """The module's argument_spec, its DOCUMENTATION and BenchConfig must agree."""
    from dataclasses import MISSING, fields

    import yaml

    from ansible_collections.llmops.platform.plugins.modules import llm_benchmark as mod

    doc = yaml.safe_load(mod.DOCUMENTATION)["options"]
    yaml.safe_load(mod.RETURN)
    yaml.safe_load(mod.EXAMPLES)
    assert set(doc) == set(mod.ARGUMENT_SPEC)
    for name, spec in mod.ARGUMENT_SPEC.items():
        assert doc[name]["type"] == spec["type"], name
        assert doc[name].get("default") == spec.get("default"), name
        assert bool(doc[name].get("required")) == bool(spec.get("required")), name
    engine = {f.name: f for f in fields(BenchConfig)}
    assert set(engine) == set(mod.ARGUMENT_SPEC) - set(mod.MODULE_ONLY)
    for name, f in engine.items():
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if default is not MISSING:
            assert mod.ARGUMENT_SPEC[name].get("default") == default, name
    assert mod.ARGUMENT_SPEC["api_key"]["no_log"] is True


def test_lists_of_concurrencies_and_rates():
    cfg = BenchConfig(**BASE, concurrency=[1, 4, 16, 64])
    assert cfg.concurrency_levels == [1, 4, 16, 64] and cfg.to_dict()["concurrency"] == [1, 4, 16, 64]
    assert BenchConfig(**BASE, concurrency=[8]).concurrency == 8  # one value is a number
    assert BenchConfig(**BASE, profile="poisson", rate=[2, 4.5]).rate_levels == [2.0, 4.5]
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, profile="sweep", concurrency=[1, 2])
    assert err.value.field == "concurrency" and "profile concurrency" in err.value.message
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, profile="poisson", rate=[1, -2])
    assert err.value.field == "rate"
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, profile="throughput", rate=[1, 2])
    assert err.value.field == "rate"


def test_step_bounds_headers_and_label():
    cfg = BenchConfig(**BASE, min_step_s=5, max_seconds=30, headers={"X-Tenant": "a"}, label="x")
    assert (cfg.min_step_s, cfg.max_seconds) == (5.0, 30.0)
    assert cfg.to_dict()["headers"] == {"X-Tenant": "<redacted>"}
    assert cfg.to_dict(redact=False)["headers"] == {"X-Tenant": "a"}
    with pytest.raises(BenchConfigError) as err:
        BenchConfig(**BASE, min_step_s=10, max_seconds=5)
    assert err.value.field == "max_seconds"


def test_module_number_lists():
    pytest.importorskip("ansible")
    from ansible_collections.llmops.platform.plugins.modules.llm_benchmark import number_list

    assert number_list("8", int) == 8 and number_list(8, int) == 8
    assert number_list("1,4,16,64", int) == [1, 4, 16, 64]
    assert number_list(["1", "4"], int) == [1, 4] and number_list("[2.5, 5]", float) == [2.5, 5.0]
    assert number_list("many", int) == ["many"]  # left for BenchConfig to reject by name
    assert number_list(None, float) is None


def _module():
    pytest.importorskip("ansible")
    from ansible_collections.llmops.platform.plugins.modules import llm_benchmark

    return llm_benchmark


def _params(**options):
    mod = _module()
    params = {name: spec.get("default") for name, spec in mod.ARGUMENT_SPEC.items()}
    params.update(base_url="http://127.0.0.1:8000", model="chat", output_dir="/tmp/out",
                  num_requests=12, options=options)
    return params


def test_options_replace_top_level_values_converted_like_them():
    merged = _module().merge_options(_params(profile="poisson", rate="4", repeats="2", ignore_eos="no",
                                             percentiles=[50, "99"], num_requests=30))
    assert "options" not in merged
    assert (merged["profile"], merged["rate"], merged["repeats"], merged["ignore_eos"]) == ("poisson", 4.0, 2, False)
    assert merged["percentiles"] == [50.0, 99.0] and merged["num_requests"] == 30
    # A key left out keeps the top-level value, not the option's default.
    assert _module().merge_options(_params())["num_requests"] == 12
    config = BenchConfig(**{k: v for k, v in merged.items() if k not in _module().MODULE_ONLY})
    assert config.rate == 4.0 and config.profile == "poisson"


@pytest.mark.parametrize(("options", "field", "text"), [
    ({"rat": 4}, "options.rat", "unknown option; use one of"),
    ({"model": "other"}, "options.model", "unknown option"),
    ({"api_key": "sk-x"}, "options.api_key", "unknown option"),
    ({"rate": "fast"}, "options", "rate"),
    ({"profile": "bursty"}, "options", "profile"),
])
def test_bad_options_name_the_key(options, field, text):
    with pytest.raises(BenchConfigError) as caught:
        _module().merge_options(_params(**options))
    assert caught.value.field == field and text in caught.value.message
