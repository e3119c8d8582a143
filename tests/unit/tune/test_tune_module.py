import yaml

from ansible_collections.llmops.platform.plugins.modules import llm_sweep


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(llm_sweep.DOCUMENTATION)["options"]
    assert set(doc) == set(llm_sweep.ARGUMENT_SPEC)
    for name, spec in llm_sweep.ARGUMENT_SPEC.items():
        assert doc[name]["type"] == spec["type"], name
        assert doc[name].get("default") == spec.get("default"), name
        assert doc[name].get("choices") == spec.get("choices"), name


def test_return_and_examples_parse():
    assert {"best", "trials", "new_trials", "paths", "best_snippet"} <= set(yaml.safe_load(llm_sweep.RETURN))
    assert yaml.safe_load(llm_sweep.EXAMPLES)[0]["llmops.platform.llm_sweep"]["task_file"]


def test_optuna_pin_matches_the_lock_and_the_installed_version():
    import os
    import re

    import optuna
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 3))
    versions = yaml.safe_load(open(os.path.join(root, "roles/platform_defaults/defaults/main/versions.yml")))
    lock = open(os.path.join(root, "requirements", "control.lock")).read()
    pin = versions["platform_versions"]["optuna"]
    assert re.search(rf"^optuna=={re.escape(pin)}( --hash=sha256:[0-9a-f]{{64}})+$", lock, re.M)
    assert optuna.__version__ == pin
