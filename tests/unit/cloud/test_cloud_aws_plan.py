"""What aws_infra requests: subnets, least-privilege security groups, IAM, instances, images."""
import json

import pytest
from cloud_fixtures import aws_cloud

from ansible_collections.llmops.platform.plugins.module_utils.cloud import aws_plan
from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import normalize_cloud

ZONES = ["us-east-1c", "us-east-1a", "us-east-1b"]


def plan_for(pubkey, encapsulation="VXLAN", **overrides):
    return aws_plan.plan(normalize_cloud(aws_cloud(pubkey, **overrides), encapsulation=encapsulation), ZONES)


def ingress(plan, group):
    sg = next(g for g in plan["security_groups"] if g["name"] == group)
    return {(r["rule_desc"], r["proto"], r.get("from_port"), r.get("to_port"), tuple(r["cidr_ip"])) for r in sg["rules"]}


def test_zones_and_subnets(pubkey):
    plan = plan_for(pubkey)
    assert plan["azs"] == ["us-east-1a", "us-east-1b"]  # first az_count zones by name
    assert [(s["name"], s["cidr"], s["map_public"]) for s in plan["subnets"]] == [
        ("llmops-public-us-east-1a", "10.10.0.0/20", True), ("llmops-public-us-east-1b", "10.10.16.0/20", True)]
    private = plan_for(pubkey, connection="ssm", ssm_bucket="b-ssm", private_subnets=True)
    assert [(s["tier"], s["cidr"]) for s in private["subnets"]] == [
        ("public", "10.10.0.0/20"), ("private", "10.10.128.0/20"), ("public", "10.10.16.0/20"), ("private", "10.10.144.0/20")]
    assert private["nat"] and all(i["subnet"].startswith("llmops-private-") and not i["public_ip"]
                                  for i in private["instances"])


def test_security_groups_are_exactly_least_privilege(pubkey):
    plan = plan_for(pubkey)
    vpc, admin = ("10.10.0.0/16",), ("203.0.113.0/24",)
    assert ingress(plan, "llmops-control-plane") == {
        ("kube-apiserver-admin", "tcp", 6443, 6443, admin),
        ("kube-apiserver-nodes", "tcp", 6443, 6443, vpc),
        ("etcd", "tcp", 2379, 2380, vpc)}
    assert ingress(plan, "llmops-nodes") == {
        ("ssh-admin", "tcp", 22, 22, admin),
        ("kubelet", "tcp", 10250, 10250, vpc),
        ("nodeport-tcp", "tcp", 30000, 32767, vpc),
        ("nodeport-udp", "udp", 30000, 32767, vpc),
        ("calico-bgp", "tcp", 179, 179, vpc),
        ("calico-vxlan", "udp", 4789, 4789, vpc),
        ("calico-typha", "tcp", 5473, 5473, vpc),
        ("node-exporter", "tcp", 9100, 9100, vpc),
        ("icmp", "icmp", -1, -1, vpc)}
    nodes = next(g for g in plan["security_groups"] if g["name"] == "llmops-nodes")
    assert {(r["proto"], r.get("from_port"), tuple(r["cidr_ip"])) for r in nodes["rules_egress"]} == {
        ("all", None, vpc), ("tcp", 80, ("0.0.0.0/0",)), ("tcp", 443, ("0.0.0.0/0",))}
    everything = [r for g in plan["security_groups"] for r in g["rules"]]
    assert not [r for r in everything if "0.0.0.0/0" in r["cidr_ip"]]


def test_ipip_only_with_an_ipip_encapsulation_and_ssh_only_with_ssh(pubkey):
    assert not [r for r in plan_for(pubkey)["security_groups"][0]["rules"] if r["proto"] == "4"]
    ipip = plan_for(pubkey, encapsulation="IPIPCrossSubnet")
    assert [r for r in ipip["security_groups"][0]["rules"] if r["proto"] == "4"] == [
        {"proto": "4", "cidr_ip": ["10.10.0.0/16"], "rule_desc": "calico-ipip", "from_port": -1, "to_port": -1}]
    ssm = plan_for(pubkey, connection="ssm", ssm_bucket="b-ssm")
    assert not [r for g in ssm["security_groups"] for r in g["rules"] if r.get("from_port") == 22]
    assert ssm["key_name"] == ""


def test_world_access_only_when_allowed(pubkey):
    plan = plan_for(pubkey, admin_cidrs=["0.0.0.0/0"], allow_world=True)
    assert ("kube-apiserver-admin", "tcp", 6443, 6443, ("0.0.0.0/0",)) in ingress(plan, "llmops-control-plane")


def test_instances_tags_groups_and_iam(pubkey):
    plan = plan_for(pubkey, tags={"team": "ml"})
    cp, worker, gpu = plan["instances"]
    assert (cp["name"], cp["security_groups"]) == ("llmops-control-plane-0", ["llmops-nodes", "llmops-control-plane"])
    assert worker["security_groups"] == ["llmops-nodes"] and gpu["gpus"] == 1
    assert gpu["tags"] == {"Name": "llmops-gpu-worker-0", "llmops-cluster": "llmops", "llmops-role": "gpu_worker",
                           "kubernetes.io/cluster/llmops": "owned", "team": "ml"}
    assert plan["iam"]["managed_policies"] == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    trust = json.loads(plan["iam"]["assume_role_policy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_image_queries_and_the_newest_match(pubkey):
    nodes = [{"role": "control_plane", "type": "t3.medium"}, {"role": "worker", "type": "t4g.medium"}]
    queries = plan_for(pubkey, nodes=nodes)["images"]
    assert [(q["arch"], q["filters"]["name"], q["owners"]) for q in queries] == [
        ("arm64", "debian-12-arm64-*", ["136693071363"]), ("x86_64", "debian-12-amd64-*", ["136693071363"])]
    pinned = plan_for(pubkey, image={"id": "ami-12c6146b"})["images"]
    assert pinned == [{"arch": "x86_64", "image_ids": ["ami-12c6146b"], "owners": [], "filters": {}}]
    images = [{"image_id": "ami-old", "creation_date": "2025-01-01T00:00:00.000Z", "architecture": "x86_64"},
              {"image_id": "ami-new", "creation_date": "2026-11-01T00:00:00.000Z", "architecture": "x86_64",
               "root_device_name": "/dev/xvda"}]
    assert aws_plan.latest_image(images, "x86_64", "q")["image_id"] == "ami-new"
    with pytest.raises(ValueError, match="no arm64 image"):
        aws_plan.latest_image(images, "arm64", "debian-12-arm64-*")


def test_stale_instances_are_those_no_longer_planned(pubkey):
    planned = plan_for(pubkey)["instances"]
    found = [{"instance_id": "i-1", "tags": {"Name": "llmops-worker-0"}, "state": {"name": "running"}},
             {"instance_id": "i-2", "tags": {"Name": "llmops-worker-1"}, "state": {"name": "running"}},
             {"instance_id": "i-3", "tags": {"Name": "llmops-worker-2"}, "state": {"name": "terminated"}}]
    assert aws_plan.stale_instances(found, planned) == ["i-2"]
