"""What gcp_infra would request from Compute Engine (never run against GCP: no emulator).

The plan is asserted exactly, and the role is checked to pass every key of it through.
"""
import os

import yaml
from cloud_fixtures import gcp_cloud

from ansible_collections.llmops.platform.plugins.module_utils.cloud import gcp_plan
from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import normalize_cloud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NET = "https://www.googleapis.com/compute/v1/projects/llmops-demo-123/global/networks/llmops-net"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests admin@test"


def plan_for(pubkey, **overrides):
    return gcp_plan.plan(normalize_cloud(gcp_cloud(pubkey, **overrides), encapsulation="VXLAN"), KEY + "\n")


def test_network_and_subnetwork(pubkey):
    plan = plan_for(pubkey)
    assert plan["network"] == {"name": "llmops-net", "auto_create_subnetworks": False,
                               "description": "llmops cluster llmops"}
    assert plan["subnetwork"] == {"name": "llmops-nodes", "region": "us-central1", "ip_cidr_range": "10.10.0.0/20",
                                  "network": {"selfLink": NET}, "private_ip_google_access": True,
                                  "description": "llmops cluster llmops nodes"}


def test_firewall_rules_exactly(pubkey):
    rules = {r["name"]: r for r in plan_for(pubkey)["firewalls"]}
    common = {"network": {"selfLink": NET}}
    assert rules == {
        "llmops-in-admin-control-plane": {**common, "description": "llmops: kube-apiserver-admin", "direction": "INGRESS",
                                          "priority": 1000, "allowed": [{"ip_protocol": "tcp", "ports": ["6443"]}],
                                          "source_ranges": ["203.0.113.0/24"], "target_tags": ["llmops-control-plane"],
                                          "name": "llmops-in-admin-control-plane"},
        "llmops-in-admin-nodes": {**common, "description": "llmops: ssh-admin", "direction": "INGRESS", "priority": 1000,
                                  "allowed": [{"ip_protocol": "tcp", "ports": ["22"]}],
                                  "source_ranges": ["203.0.113.0/24"], "target_tags": ["llmops-node"],
                                  "name": "llmops-in-admin-nodes"},
        "llmops-in-internal-control-plane": {**common, "description": "llmops: etcd, kube-apiserver-nodes",
                                             "direction": "INGRESS", "priority": 1000,
                                             "allowed": [{"ip_protocol": "tcp", "ports": ["2379-2380", "6443"]}],
                                             "source_ranges": ["10.10.0.0/16"], "target_tags": ["llmops-control-plane"],
                                             "name": "llmops-in-internal-control-plane"},
        "llmops-in-internal-nodes": {**common, "direction": "INGRESS", "priority": 1000,
                                     "description": "llmops: kubelet, nodeport-tcp, nodeport-udp, calico-bgp, calico-vxlan, "
                                                    "calico-typha, node-exporter, icmp",
                                     "allowed": [{"ip_protocol": "icmp"},
                                                 {"ip_protocol": "tcp", "ports": ["179", "5473", "9100", "10250", "30000-32767"]},
                                                 {"ip_protocol": "udp", "ports": ["4789", "30000-32767"]}],
                                     "source_ranges": ["10.10.0.0/16"], "target_tags": ["llmops-node"],
                                     "name": "llmops-in-internal-nodes"},
        "llmops-out-internal-nodes": {**common, "description": "llmops: egress-internal", "direction": "EGRESS",
                                      "priority": 1000, "allowed": [{"ip_protocol": "all"}],
                                      "destination_ranges": ["10.10.0.0/16"], "target_tags": ["llmops-node"],
                                      "name": "llmops-out-internal-nodes"},
        "llmops-out-web-nodes": {**common, "description": "llmops: egress-80, egress-443", "direction": "EGRESS",
                                 "priority": 1000, "allowed": [{"ip_protocol": "tcp", "ports": ["80", "443"]}],
                                 "destination_ranges": ["0.0.0.0/0"], "target_tags": ["llmops-node"],
                                 "name": "llmops-out-web-nodes"},
        "llmops-out-deny-nodes": {**common, "description": "llmops: no egress beyond the allow rules",
                                  "direction": "EGRESS", "priority": 65000, "denied": [{"ip_protocol": "all"}],
                                  "destination_ranges": ["0.0.0.0/0"], "target_tags": ["llmops-node"],
                                  "name": "llmops-out-deny-nodes"},
    }
    ingress = [r for r in rules.values() if r["direction"] == "INGRESS"]
    assert not [r for r in ingress if "0.0.0.0/0" in r["source_ranges"]]


def test_ipip_rule_with_ipip(pubkey):
    model = normalize_cloud(gcp_cloud(pubkey), encapsulation="IPIP")
    internal = next(r for r in gcp_plan.firewalls(model) if r["name"] == "llmops-in-internal-nodes")
    assert {"ip_protocol": "ipip"} in internal["allowed"]


def test_instances(pubkey):
    cp, worker, gpu = plan_for(pubkey, tags={"team": "ml"})["instances"]
    assert gpu["name"] == "llmops-gpu-worker-0" and gpu["machine_type"] == "g2-standard-96"
    assert gpu["scheduling"] == {"on_host_maintenance": "TERMINATE", "automatic_restart": True, "preemptible": False}
    assert cp["scheduling"]["on_host_maintenance"] == "MIGRATE"
    assert gpu["guest_accelerators"] == []  # G2's eight L4 come with the machine type
    assert gpu["labels"] == {"llmops-cluster": "llmops", "llmops-role": "gpu_worker", "team": "ml"}
    assert cp["tags"] == {"items": ["llmops-node", "llmops-control-plane"]} and worker["tags"] == {"items": ["llmops-node"]}
    assert gpu["disks"] == [{"auto_delete": True, "boot": True, "initialize_params": {
        "source_image": "projects/debian-cloud/global/images/family/debian-12", "disk_size_gb": 500,
        "disk_type": "projects/llmops-demo-123/zones/us-central1-a/diskTypes/pd-balanced"}}]
    assert gpu["service_accounts"] == [{"email": "llmops-node@llmops-demo-123.iam.gserviceaccount.com",
                                        "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    assert gpu["metadata"] == {"block-project-ssh-keys": "TRUE", "ssh-keys": f"admin:{KEY}"}
    assert gpu["shielded_instance_config"]["enable_secure_boot"] is False
    assert gpu["network_interfaces"][0]["subnetwork"]["selfLink"].endswith("/regions/us-central1/subnetworks/llmops-nodes")


def test_n1_takes_guest_accelerators(pubkey):
    nodes = [{"role": "control_plane", "type": "e2-standard-4"},
             {"role": "gpu_worker", "type": "n1-standard-8", "accelerator": {"type": "nvidia-tesla-t4", "count": 1}}]
    gpu = plan_for(pubkey, nodes=nodes)["instances"][1]
    assert gpu["guest_accelerators"] == [{
        "accelerator_type": "projects/llmops-demo-123/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4",
        "accelerator_count": 1}]
    assert gpu["scheduling"]["on_host_maintenance"] == "TERMINATE"


def _tasks(path):
    def walk(items):
        for task in items:
            yield task
            yield from walk(task.get("block", []))
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return list(walk(yaml.safe_load(handle)))


def test_the_role_passes_every_planned_key_to_its_module(pubkey):
    plan = plan_for(pubkey)
    sources = {"google.cloud.gcp_compute_network": ("gcp_infra_plan.network", plan["network"]),
               "google.cloud.gcp_compute_subnetwork": ("gcp_infra_plan.subnetwork", plan["subnetwork"]),
               "google.cloud.gcp_iam_service_account": ("gcp_infra_plan.service_account", plan["service_account"])}
    seen = set()
    for task in _tasks("roles/gcp_infra/tasks/main.yml"):
        module = next((k for k in task if k.startswith("google.cloud.")), None)
        if module is None or task.get("loop") is None and module not in sources:
            continue
        args = {k: v for k, v in task[module].items() if k != "state"}
        if "loop" in task:
            section = task["loop"].strip("{} ").split(".")[-1]
            if section not in ("firewalls", "instances"):
                continue
            keys = set().union(*(entry.keys() for entry in plan[section]))
            prefix = "item"
        else:
            prefix, data = sources[module]
            keys = set(data)
        seen.add(module)
        assert keys == set(args), f"{module}: plan keys {sorted(keys)} vs task args {sorted(args)}"
        for key in keys:
            assert f"{prefix}.{key}" in str(args[key]), f"{module}.{key} is not taken from the plan: {args[key]}"
    assert seen == {"google.cloud.gcp_compute_network", "google.cloud.gcp_compute_subnetwork",
                    "google.cloud.gcp_compute_firewall", "google.cloud.gcp_iam_service_account",
                    "google.cloud.gcp_compute_instance"}
