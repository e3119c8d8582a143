"""Cluster bring-up hardening, on the rendered files of seed 000's inventory: the API
server's audit policy (nothing above Metadata, credentials-bearing resources never with
bodies), Secrets encrypted at rest (flag, read-only mount, no key on the controller), and
the same flags on K3s. Each policy check also gets a broken input, to show it fails."""
from __future__ import annotations

import os

import pytest
import yaml
from cluster_render import ROOT, files, render_all

SENSITIVE = [("", "secrets"), ("", "configmaps"), ("authentication.k8s.io", "tokenreviews")]


def _load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


@pytest.fixture(scope="module")
def renders() -> dict[str, str]:
    return render_all()


def _rule_matches(rule: dict, group: str, resource: str) -> bool:
    """Would `rule` match a request by an arbitrary user to group/resource (any verb, namespace)?
    Rules narrowed to some users, verbs or namespaces match only some requests: for the
    question "what level can a request to this resource get" they count as matching."""
    if "nonResourceURLs" in rule:
        return False
    if "resources" not in rule:
        return True
    for entry in rule["resources"]:
        if entry.get("group", "") == group and (not entry.get("resources") or resource in entry["resources"]):
            return True
    return False


def audit_violations(policy: dict) -> list[str]:
    errors = []
    if policy.get("apiVersion") != "audit.k8s.io/v1" or policy.get("kind") != "Policy":
        errors.append("not an audit.k8s.io/v1 Policy")
    rules = policy.get("rules") or []
    for i, rule in enumerate(rules):
        if rule.get("level") not in ("None", "Metadata"):
            errors.append(f"rule {i}: level {rule.get('level')} logs request bodies")
    for group, resource in SENSITIVE:
        first = next((r for r in rules if _rule_matches(r, group, resource)), None)
        if first is None or first.get("level") != "Metadata" or set(first) - {"level", "resources", "omitStages"}:
            errors.append(f"{group or 'core'}/{resource}: first matching rule is not an unconditional Metadata rule")
    if not rules or set(rules[-1]) - {"level", "omitStages"} or rules[-1].get("level") != "Metadata":
        errors.append("no catch-all Metadata rule at the end")
    return errors


def _cluster_config(render_dir: str) -> dict:
    return next(d for d in _load(os.path.join(render_dir, "kubeadm", "cp1-init.yaml")) if d["kind"] == "ClusterConfiguration")


def _args(api_server: dict) -> dict:
    args = api_server.get("extraArgs") or {}
    return {a["name"]: a["value"] for a in args} if isinstance(args, list) else args


def test_audit_policy_is_metadata_level(renders):
    policy = _load(os.path.join(renders["kubeadm"], "kubeadm", "control-plane", "audit-policy.yaml"))[0]
    assert audit_violations(policy) == []
    # Broken copies: a RequestResponse rule for Secrets first, and no catch-all.
    leaky = {**policy, "rules": [{"level": "RequestResponse", "resources": [{"group": "", "resources": ["secrets"]}]}]
             + policy["rules"]}
    errors = audit_violations(leaky)
    assert "rule 0: level RequestResponse logs request bodies" in errors
    assert "core/secrets: first matching rule is not an unconditional Metadata rule" in errors
    silent = {**policy, "rules": [{"level": "None"}] + policy["rules"]}
    assert "core/configmaps: first matching rule is not an unconditional Metadata rule" in audit_violations(silent)
    assert audit_violations({**policy, "rules": policy["rules"][:-1]}) == ["no catch-all Metadata rule at the end"]


@pytest.mark.parametrize("variant", ["kubeadm", "kubeadm_v1beta4"])
def test_apiserver_gets_audit_and_encryption_flags_and_mounts(renders, variant):
    api_server = _cluster_config(renders[variant])["apiServer"]
    args = _args(api_server)
    assert args["audit-policy-file"] == "/etc/kubernetes/audit/policy.yaml"
    assert args["audit-log-path"] == "/var/log/kubernetes/audit/audit.log"
    assert (args["audit-log-maxage"], args["audit-log-maxbackup"], args["audit-log-maxsize"]) == ("30", "10", "100")
    assert args["encryption-provider-config"] == "/etc/kubernetes/encryption/config.yaml"
    volumes = {v["name"]: v for v in api_server["extraVolumes"]}
    assert set(volumes) == {"audit-policy", "audit-log", "encryption-config"}
    # Every flag's file is inside a mounted directory; only the log directory is writable.
    for flag, volume in (("audit-policy-file", "audit-policy"), ("audit-log-path", "audit-log"),
                         ("encryption-provider-config", "encryption-config")):
        assert os.path.dirname(args[flag]) == volumes[volume]["mountPath"] == volumes[volume]["hostPath"]
        assert volumes[volume]["readOnly"] is (volume != "audit-log")


def test_encryption_config_never_holds_a_key_on_the_controller(renders):
    for variant in ("kubeadm", "kubeadm_v1beta4"):
        config = _load(os.path.join(renders[variant], "kubeadm", "control-plane", "encryption-config.yaml"))[0]
        assert config["apiVersion"] == "apiserver.config.k8s.io/v1" and config["kind"] == "EncryptionConfiguration"
        (resource,) = config["resources"]
        assert resource["resources"] == ["secrets"]
        first, last = resource["providers"]
        assert list(first) == ["secretbox"] and last == {"identity": {}}
        assert first["secretbox"]["keys"] == [{"name": "key1", "secret": "REDACTED"}]


def test_key_handling_tasks_are_no_log_and_host_to_host():
    with open(os.path.join(ROOT, "roles", "kubeadm", "tasks", "apiserver_files.yml"), encoding="utf-8") as handle:
        tasks = yaml.safe_load(handle)
    block = next(t for t in tasks if "block" in t)["block"]
    by_name = {t["name"]: t for t in block}
    generate = next(t for n, t in by_name.items() if n.startswith("Generate the key"))
    # Made on the first control plane, once; never with a controller-side lookup.
    assert generate["delegate_to"] == "{{ kubeadm_first_control_plane }}" and generate["run_once"] is True
    assert "lookup(" not in yaml.safe_dump(tasks)
    for task in block:
        if any(k in task for k in ("ansible.builtin.command", "ansible.builtin.template", "ansible.builtin.slurp",
                                   "ansible.builtin.copy")):
            assert task.get("no_log") is True, task["name"]
        for module in ("ansible.builtin.template", "ansible.builtin.copy"):
            if module in task:
                assert (task[module]["mode"], task[module]["owner"]) == ("0600", "root"), task["name"]
    # No task writes the key to localhost.
    assert all(t.get("delegate_to") != "localhost" for t in block)


def test_render_lists_the_control_plane_files(renders):
    assert [f for f in files(renders["kubeadm"]) if f.startswith("kubeadm/control-plane/")] == [
        "kubeadm/control-plane/audit-policy.yaml", "kubeadm/control-plane/encryption-config.yaml"]
