"""Publishing a local model into the mirror's Hugging Face layout (module_utils/mirror/hf.py)."""
import json
import os

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.mirror import hf
from ansible_collections.llmops.platform.plugins.module_utils.mirror.server import hf_repo_dir, hf_resolve


def _model(path, weights=b"\x00" * 64):
    (path / "sub").mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "sub" / "model.safetensors").write_bytes(weights)
    return str(path)


def test_publish_installs_once_then_only_moves_the_revision(tmp_path):
    root = str(tmp_path / "mirror")
    first = hf.publish(root, "org/tiny", "main", _model(tmp_path / "m1"))
    assert first["changed"] is True
    commit_dir = os.path.join(hf_repo_dir(root, "org/tiny"), "commits", first["commit"])
    assert sorted(f["path"] for f in first["files"]) == ["config.json", "sub/model.safetensors"]
    assert os.path.getsize(os.path.join(commit_dir, "sub", "model.safetensors")) == 64
    listing = json.loads(open(commit_dir + ".json", encoding="utf-8").read())
    assert listing["commit"] == first["commit"] and listing["repo"] == "org/tiny"
    assert hf_resolve(root, "org/tiny", "main") == first["commit"]
    # No build directory is left beside the commit.
    assert sorted(os.listdir(os.path.dirname(commit_dir))) == [first["commit"], first["commit"] + ".json"]

    again = hf.publish(root, "org/tiny", "main", _model(tmp_path / "m2"))
    assert again["changed"] is False and again["commit"] == first["commit"]

    tagged = hf.publish(root, "org/tiny", "v1", _model(tmp_path / "m3"))
    assert tagged["changed"] is True and tagged["commit"] == first["commit"]
    assert hf_resolve(root, "org/tiny", "v1") == first["commit"]

    other = hf.publish(root, "org/tiny", "main", _model(tmp_path / "m4", weights=b"\x01" * 64))
    assert other["changed"] is True and other["commit"] != first["commit"]
    assert hf_resolve(root, "org/tiny", "main") == other["commit"]


def test_publish_refuses_a_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(hf.HfError, match="no config.json"):
        hf.publish(str(tmp_path / "mirror"), "org/tiny", "main", str(tmp_path))
