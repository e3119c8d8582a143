"""roles/vllm/files/download_model.py, the Kubernetes init step that fills the model cache:
the model into the hub cache, hf: LoRA adapters into their own directories, once each."""
import json
import os
import runpy
import sys
import types

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "roles", "vllm", "files", "download_model.py")


@pytest.fixture
def hub(monkeypatch):
    """A stand-in huggingface_hub whose snapshot_download records its calls and writes files."""
    calls = []

    def snapshot_download(repo_id, revision, token=None, cache_dir=None, local_dir=None, ignore_patterns=None):
        calls.append({"repo": repo_id, "revision": revision, "local_dir": local_dir, "cache_dir": cache_dir})
        path = local_dir or os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"), "snapshots", "c0ffee")
        os.makedirs(path, exist_ok=True)
        if "not-an-adapter" not in repo_id:
            open(os.path.join(path, "adapter_config.json" if local_dir else "config.json"), "w").close()
        return path

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    return calls


def _run(monkeypatch, env):
    for key in ("LLM_MODEL_REPO", "LLM_MODEL_REVISION", "LLM_MODEL_MARKER", "LLM_ADAPTERS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runpy.run_path(SCRIPT, run_name="__main__")


def test_model_and_adapters_are_fetched_once(tmp_path, monkeypatch, hub):
    adapters = [{"name": "chat-sql", "repo": "org/sql-lora", "revision": "abc",
                 "dir": str(tmp_path / "adapters" / "org--sql-lora" / "abc"),
                 "marker": str(tmp_path / ".llmops" / "complete" / "adapters" / "org--sql-lora@abc")}]
    env = {"LLM_MODEL_REPO": "org/model", "LLM_MODEL_REVISION": "main",
           "LLM_MODEL_MARKER": str(tmp_path / ".llmops" / "complete" / "org--model@main"),
           "HF_HUB_CACHE": str(tmp_path / "hub"), "LLM_ADAPTERS": json.dumps(adapters)}
    _run(monkeypatch, env)
    assert [(c["repo"], c["local_dir"]) for c in hub] == [("org/model", None), ("org/sql-lora", adapters[0]["dir"])]
    assert open(adapters[0]["marker"]).read().strip() == adapters[0]["dir"]
    _run(monkeypatch, env)  # a restart: both markers exist, nothing is downloaded again
    assert len(hub) == 2


def test_adapters_alone_and_a_repo_that_is_no_adapter_fails(tmp_path, monkeypatch, hub):
    bad = [{"name": "x", "repo": "org/not-an-adapter", "revision": "main", "dir": str(tmp_path / "x"),
            "marker": str(tmp_path / "m" / "x")}]
    with pytest.raises(SystemExit) as exit_:
        _run(monkeypatch, {"HF_HUB_CACHE": str(tmp_path / "hub"), "LLM_ADAPTERS": json.dumps(bad)})
    assert "no adapter_config.json" in str(exit_.value.code) and "llm_models[].adapters" in str(exit_.value.code)
    assert [c["repo"] for c in hub] == ["org/not-an-adapter"]  # no model repo: adapters only
    assert not os.path.exists(bad[0]["marker"])  # retried on the next start
