"""The platform's rules, evaluated by Prometheus's own promtool: `check rules` on the rendered
file, `test rules` on the cases in promtool/, and a coverage count both ways (every alert has a
firing and a non-firing case; every case names an existing alert; every record is tested)."""
from __future__ import annotations

import copy
import glob
import os
import re
import shutil

import pytest
import yaml
from rule_files import PROMTOOL_CASES, role_settings, run_promtool, write_rules

from ansible_collections.llmops.platform.plugins.module_utils.monitoring import rules

CASE_FILES = sorted(glob.glob(os.path.join(PROMTOOL_CASES, "*.yml")))


def _cases() -> list[dict]:
    return [yaml.safe_load(open(path, encoding="utf-8")) for path in CASE_FILES]


def _with_static_annotations(case_file: dict, groups: list[dict]) -> dict:
    """Add each alert's untemplated annotations (description, action) to its expected alerts;
    the templated summary stays as the case file asserts it."""
    static = {}
    for rule in (r for g in groups for r in g["rules"] if "alert" in r):
        static[rule["alert"]] = {k: v for k, v in rule["annotations"].items() if "{{" not in v}
        assert "{{" not in " ".join(static[rule["alert"]].values())
    out = copy.deepcopy(case_file)
    for test in out["tests"]:
        for check in test.get("alert_rule_test", []):
            for alert in check.get("exp_alerts") or []:
                alert["exp_annotations"] = {**static[check["alertname"]], **alert.get("exp_annotations", {})}
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("rules"))
    path, groups = write_rules(directory)
    return directory, path, groups


def test_rendered_rules_pass_promtool_check(rendered):
    _, path, groups = rendered
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in result.stdout


@pytest.mark.parametrize("case_path", CASE_FILES, ids=os.path.basename)
def test_promtool_unit_tests_pass(rendered, case_path):
    directory, _, groups = rendered
    case = _with_static_annotations(yaml.safe_load(open(case_path, encoding="utf-8")), groups)
    target = os.path.join(directory, os.path.basename(case_path))
    with open(target, "w", encoding="utf-8") as handle:
        yaml.safe_dump(case, handle, sort_keys=False, width=1000)
    result = run_promtool("test", "rules", target, cwd=directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_case_and_every_case_a_rule(rendered):
    _, _, groups = rendered
    alerts = set(rules.alert_names(groups))
    firing, silent = {}, {}
    for case_file in _cases():
        for test in case_file["tests"]:
            for check in test.get("alert_rule_test", []):
                bucket = firing if check.get("exp_alerts") else silent
                bucket[check["alertname"]] = bucket.get(check["alertname"], 0) + 1
    assert set(firing) | set(silent) <= alerts, f"cases for alerts that do not exist: {(set(firing) | set(silent)) - alerts}"
    assert alerts - set(firing) == set(), f"alerts with no firing case: {sorted(alerts - set(firing))}"
    assert alerts - set(silent) == set(), f"alerts with no non-firing case: {sorted(alerts - set(silent))}"
    # Reported in the test log: cases per alert.
    print({a: (firing[a], silent[a]) for a in sorted(alerts)})


def test_every_recording_rule_is_tested_and_every_tested_record_exists(rendered):
    _, _, groups = rendered
    records = set(rules.record_names(groups))
    tested = {name for case_file in _cases() for test in case_file["tests"]
              for check in test.get("promql_expr_test", [])
              for name in re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", check["expr"])}
    assert tested == records


def test_a_wrong_threshold_is_caught(tmp_path):
    """The cases assert the role's defaults: a rule file with another threshold fails them."""
    _, groups = write_rules(str(tmp_path), {**role_settings(), "queue_waiting": 12})
    case_path = os.path.join(PROMTOOL_CASES, "vllm_alerts.yml")
    case = _with_static_annotations(yaml.safe_load(open(case_path, encoding="utf-8")), groups)
    target = tmp_path / "vllm_alerts.yml"
    target.write_text(yaml.safe_dump(case, sort_keys=False, width=1000))
    result = run_promtool("test", "rules", str(target), cwd=str(tmp_path))
    assert result.returncode != 0 and "VLLMQueueDepthHigh" in result.stdout + result.stderr


def test_role_defaults_are_the_rule_defaults():
    """The rule module's own defaults (used by tools outside Ansible) are the role's."""
    assert rules.RuleSettings.from_dict(role_settings()) == rules.RuleSettings()


@pytest.mark.parametrize("bad, message", [
    ({"queue_for": "5 minutes"}, "monitoring_alert_queue_for"),
    ({"kv_cache_usage": "high"}, "monitoring_alert_kv_cache_usage"),
    ({"error_ratio": -1}, "must not be negative"),
    ({"namespace": "Bad_NS"}, "namespace"),
    ({"no_such": 1}, "unknown rule setting"),
])
def test_bad_settings_name_the_field(bad, message):
    with pytest.raises(rules.RuleSettingsError, match=message):
        rules.rule_groups(bad)


def test_promtool_is_installed_by_the_bootstrap():
    script = open(os.path.join(os.path.dirname(PROMTOOL_CASES), "..", "..", "..", "scripts",
                               "install-monitoring-packages.sh"), encoding="utf-8").read()
    assert "prometheus_debian" in script.replace("${package//-/_}_debian", "prometheus_debian")
    assert shutil.which("promtool")


def test_docs_explain_every_alert_with_meaning_and_first_response(rendered):
    _, _, groups = rendered
    text = open(os.path.join(PROMTOOL_CASES, "..", "..", "..", "..", "docs", "monitoring.md"), encoding="utf-8").read()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*\|$", text, re.M)}
    for rule in (r for g in groups for r in g["rules"] if "alert" in r):
        assert rule["alert"] in rows, f"docs/monitoring.md has no row for {rule['alert']}"
        assert rows[rule["alert"]].count("|") == 6  # name, severity, when, meaning, first response
        assert f"| {rule['labels']['severity']} |" in rows[rule["alert"]]
