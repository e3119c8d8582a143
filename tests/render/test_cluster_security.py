"""Cluster bring-up hardening, on the rendered files of seed 000's inventory: the API
server's audit policy (nothing above Metadata, credentials-bearing resources never with
bodies), Secrets encrypted at rest (flag, read-only mount, no key on the controller), and
the same flags on K3s. Each policy check also gets a broken input, to show it fails."""
from __future__ import annotations

import os

import pytest
import yaml
from cluster_render import ROOT, files, load_docs, render_all

SENSITIVE = [("", "secrets"), ("", "configmaps"), ("authentication.k8s.io", "tokenreviews")]


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
    return next(d for d in load_docs(os.path.join(render_dir, "kubeadm", "cp1-init.yaml")) if d["kind"] == "ClusterConfiguration")


def _args(api_server: dict) -> dict:
    args = api_server.get("extraArgs") or {}
    return {a["name"]: a["value"] for a in args} if isinstance(args, list) else args


def test_audit_policy_is_metadata_level(renders):
    policy = load_docs(os.path.join(renders["kubeadm"], "kubeadm", "control-plane", "audit-policy.yaml"))[0]
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


@pytest.mark.parametrize("variant", ["kubeadm", "kubeadm_1_29"])
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
    for variant in ("kubeadm", "kubeadm_1_29"):
        config = load_docs(os.path.join(renders[variant], "kubeadm", "control-plane", "encryption-config.yaml"))[0]
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


def _k3s(render_dir: str, host: str) -> dict:
    return load_docs(os.path.join(render_dir, "k3s", host, "config.yaml"))[0]


def test_k3s_servers_encrypt_secrets_and_audit(renders):
    server = _k3s(renders["k3s"], "cp1")
    assert server["secrets-encryption"] is True
    assert server["kube-apiserver-arg"] == [
        "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml", "audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
        "audit-log-maxage=30", "audit-log-maxbackup=10", "audit-log-maxsize=100"]
    # One policy for both distributions.
    policy = load_docs(os.path.join(renders["k3s"], "k3s", "cp1", "audit-policy.yaml"))[0]
    assert audit_violations(policy) == []
    assert policy == load_docs(os.path.join(renders["kubeadm"], "kubeadm", "control-plane", "audit-policy.yaml"))[0]
    for agent in ("cpu1", "gpu1"):
        config = _k3s(renders["k3s"], agent)
        assert "secrets-encryption" not in config and "kube-apiserver-arg" not in config
        assert sorted(os.listdir(os.path.join(renders["k3s"], "k3s", agent))) == ["config.yaml", "k3s-agent.service"]


def test_kubelets_protect_kernel_defaults(renders):
    for host in ("cp1", "cpu1", "gpu1"):
        assert _k3s(renders["k3s"], host)["protect-kernel-defaults"] is True, host
    kubelet = next(d for d in load_docs(os.path.join(renders["kubeadm"], "kubeadm", "cp1-init.yaml"))
                   if d["kind"] == "KubeletConfiguration")
    assert kubelet["protectKernelDefaults"] is True
    # node_prep sets every tunable the kubelet checks (pkg/kubelet/cm/container_manager_linux.go,
    # setupKernelTunables), at the kubelet's values.
    with open(os.path.join(ROOT, "roles", "node_prep", "defaults", "main.yml"), encoding="utf-8") as handle:
        node_prep = yaml.safe_load(handle)
    assert node_prep["node_prep_kubelet_sysctls"] == {
        "vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10", "kernel.panic_on_oops": "1",
        "kernel.keys.root_maxkeys": "1000000", "kernel.keys.root_maxbytes": "25000000"}
    with open(os.path.join(ROOT, "roles", "node_prep", "tasks", "kernel.yml"), encoding="utf-8") as handle:
        assert "node_prep_sysctls | combine(node_prep_kubelet_sysctls)" in handle.read()


def test_k3s_writes_the_audit_policy_before_it_starts():
    with open(os.path.join(ROOT, "roles", "k3s", "tasks", "install.yml"), encoding="utf-8") as handle:
        names = [t["name"] for t in yaml.safe_load(handle)]
    policy = names.index("Install the rendered audit policy (servers)")
    assert policy < names.index("Install the rendered config.yaml") < names.index("Start K3s")
    assert names.index("Create the audit log directory (servers)") < names.index("Start K3s")


def _render_k3s_config(**overrides) -> dict:
    """config.yaml.j2 rendered directly (Jinja2 with ansible-core's filters) for a first server."""
    import jinja2
    from ansible.plugins.filter.core import FilterModule
    from ansible.plugins.filter.mathstuff import FilterModule as MathFilters

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROOT, "roles", "k3s", "templates")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, extensions=["jinja2.ext.do"])
    env.filters.update(FilterModule().filters())
    env.filters.update(MathFilters().filters())
    node = {"cluster_node_facts_role": "control_plane", "cluster_node_facts_name": "cp1", "cluster_node_facts_address": "10.0.0.1",
            "cluster_node_facts_labels": {}, "cluster_node_facts_taints": [], "cluster_node_facts_is_gpu": False}
    variables = dict(
        hostvars={"cp1": node}, groups={"kube_control_plane": ["cp1"]}, k3s_render_host="cp1", k3s_first_server="cp1",
        cluster_control_plane_group="kube_control_plane", k3s_token_file="/t", k3s_container_runtime_endpoint="",
        k3s_gpu_default_runtime="nvidia", k3s_server_endpoint="10.0.0.1:6443", cluster_pod_cidr="10.244.0.0/16",
        cluster_service_cidr="10.96.0.0/12", cluster_dns_domain="cluster.local", cluster_api_port=6443, k3s_tls_san=[],
        k3s_server_disable=[], cluster_cni="calico", k3s_server_extra_config={}, k3s_agent_extra_config={},
        k3s_protect_kernel_defaults=True, k3s_secrets_encryption=True, k3s_audit_enabled=True,
        k3s_audit_policy_file="/p.yaml", k3s_audit_log_path="/l/audit.log", k3s_audit_log_maxage=30,
        k3s_audit_log_maxbackup=10, k3s_audit_log_maxsize=100)
    variables.update(overrides)
    return yaml.safe_load(env.get_template("config.yaml.j2").render(**variables))


def test_k3s_extra_apiserver_args_are_appended_and_controls_can_be_turned_off():
    config = _render_k3s_config(k3s_server_extra_config={"kube-apiserver-arg": ["request-timeout=2m"], "debug": True})
    assert config["kube-apiserver-arg"][0] == "audit-policy-file=/p.yaml"
    assert config["kube-apiserver-arg"][-1] == "request-timeout=2m" and len(config["kube-apiserver-arg"]) == 6
    assert config["debug"] is True
    off = _render_k3s_config(k3s_audit_enabled=False, k3s_secrets_encryption=False, k3s_protect_kernel_defaults=False)
    assert not {"kube-apiserver-arg", "secrets-encryption", "protect-kernel-defaults"} & set(off)


@pytest.mark.parametrize("variant", ["kubeadm", "k3s"])
def test_device_plugin_hands_out_gpus_as_volume_mounts(renders, variant):
    path = os.path.join(renders[variant], "nvidia-device-plugin", "device-plugin.yaml")
    daemonset = next(d for d in load_docs(path) if d["kind"] == "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert {"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"} in container["env"]
    # The plugin's own GPUs come the same way: /dev/null at the toolkit's mount root.
    mount = next(m for m in container["volumeMounts"] if m["mountPath"].startswith("/var/run/nvidia-container-devices"))
    assert mount == {"name": "nvidia-devices-all", "mountPath": "/var/run/nvidia-container-devices/all", "readOnly": True}
    assert {"name": "nvidia-devices-all", "hostPath": {"path": "/dev/null", "type": "CharDevice"}} in spec["volumes"]
    # Not privileged: the toolkit would honour NVIDIA_VISIBLE_DEVICES for a privileged container.
    assert not container["securityContext"].get("privileged") and container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_toolkit_and_device_plugin_read_one_strategy():
    defaults = {}
    for role, name in (("nvidia_container_toolkit", "main.yml"), ("nvidia_device_plugin", "main.yml")):
        with open(os.path.join(ROOT, "roles", role, "defaults", name), encoding="utf-8") as handle:
            defaults.update(yaml.safe_load(handle))
    assert defaults["nvidia_device_plugin_device_list_strategy"] == "{{ platform_nvidia_device_list_strategy }}"
    config = defaults["nvidia_container_toolkit_config"]
    assert config["accept-nvidia-visible-devices-as-volume-mounts"] == "{{ platform_nvidia_device_list_strategy == 'volume-mounts' }}"
    assert config["accept-nvidia-visible-devices-envvar-when-unprivileged"] == "{{ platform_nvidia_device_list_strategy == 'envvar' }}"
