"""The cloud model: every bad field fails naming the field and the fix; defaults are filled in."""
import pytest
from cloud_fixtures import aws_cloud, gcp_cloud

from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import expand_instances, normalize_cloud
from ansible_collections.llmops.platform.plugins.module_utils.inventory import InventoryError


def fails(cloud, field, *words, **kwargs):
    with pytest.raises(InventoryError) as err:
        normalize_cloud(cloud, **kwargs)
    assert err.value.field == field, str(err.value)
    for word in words:
        assert word in str(err.value), str(err.value)
    return str(err.value)


def test_the_default_aws_topology_is_valid_and_filled_in(pubkey):
    model = normalize_cloud(aws_cloud(pubkey), "10.244.0.0/16", "10.96.0.0/12")
    assert model["network_cidr"] == "10.10.0.0/16" and model["connection"] == "ssh"
    assert model["image"] == {"owner": "136693071363", "name": "debian-12-{arch}-*"}
    assert model["imds_hop_limit"] == 1 and model["archs"] == ["x86_64"]
    gpu = model["nodes"][2]
    assert (gpu["gpus"], gpu["gpu_model"], gpu["disk_gib"]) == (1, "T4", 200)
    assert model["warnings"] == []


def test_unknown_provider(pubkey):
    fails(aws_cloud(pubkey, provider="azure"), "cloud.provider", "aws or gcp")


def test_gpu_role_on_a_type_without_gpus(pubkey):
    nodes = [{"role": "control_plane", "type": "t3.medium"}, {"role": "gpu_worker", "type": "m5.xlarge"}]
    fails(aws_cloud(pubkey, nodes=nodes), "cloud.nodes[1].type", "m5.xlarge has no GPU", "g4dn.xlarge")
    gcp_nodes = [{"role": "control_plane", "type": "e2-standard-4"}, {"role": "gpu_worker", "type": "n2-standard-8"}]
    fails(gcp_cloud(pubkey, nodes=gcp_nodes), "cloud.nodes[1].type", "has no GPU")


def test_gpu_role_on_amd_gpus_is_refused(pubkey):
    nodes = [{"role": "control_plane", "type": "t3.medium"}, {"role": "gpu_worker", "type": "g4ad.xlarge"}]
    fails(aws_cloud(pubkey, nodes=nodes), "cloud.nodes[1].type", "AMD", "NVIDIA")


def test_world_open_admin_cidr_needs_allow_world(pubkey):
    fails(aws_cloud(pubkey, admin_cidrs=["198.51.100.7/32", "0.0.0.0/0"]), "cloud.admin_cidrs[1]",
          "allow_world: true", "203.0.113.7/32")
    model = normalize_cloud(aws_cloud(pubkey, admin_cidrs=["0.0.0.0/0"], allow_world=True))
    assert model["admin_cidrs"] == ["0.0.0.0/0"]


def test_admin_cidrs_must_be_given_and_be_networks(pubkey):
    fails(aws_cloud(pubkey, admin_cidrs=[]), "cloud.admin_cidrs", "checkip")
    fails(aws_cloud(pubkey, admin_cidrs=["203.0.113.9/24"]), "cloud.admin_cidrs[0]", "203.0.113.0/24")
    fails(aws_cloud(pubkey, admin_cidrs=["not-a-cidr"]), "cloud.admin_cidrs[0]", "not a CIDR")
    fails(aws_cloud(pubkey, admin_cidrs=["2001:db8::/32"]), "cloud.admin_cidrs[0]", "IPv6")


@pytest.mark.parametrize("count", [0, -1, "many", True])
def test_counts_below_one_or_not_integers(pubkey, count):
    nodes = [{"role": "control_plane", "type": "t3.medium"}, {"role": "worker", "type": "t3.medium", "count": count}]
    fails(aws_cloud(pubkey, nodes=nodes), "cloud.nodes[1].count")


def test_region_without_the_type_where_knowable_offline(pubkey):
    # Zurich (eu-central-2) does not offer g4dn in EC2's offering data.
    message = fails(aws_cloud(pubkey, region="eu-central-2"), "cloud.nodes[2].type", "not offered in eu-central-2")
    assert "eu-central-1" in message  # names nearby regions that do offer it


def test_unknowable_offerings_are_warnings_not_errors(pubkey):
    # p3 is a real type the offering data no longer lists: neither offerings nor GPU count are checkable.
    nodes = [{"role": "control_plane", "type": "t3.medium"}, {"role": "gpu_worker", "type": "p3.2xlarge"}]
    model = normalize_cloud(aws_cloud(pubkey, nodes=nodes))
    assert any("p3.2xlarge cannot be checked offline" in w for w in model["warnings"])


def test_typo_in_type_and_unknown_region(pubkey):
    nodes = [{"role": "control_plane", "type": "t3.mediun"}]
    fails(aws_cloud(pubkey, nodes=nodes), "cloud.nodes[0].type", "not an EC2 instance type")
    fails(aws_cloud(pubkey, region="us-east-9"), "cloud.region", "not an AWS region")
    fails(gcp_cloud(pubkey, region="us_central1"), "cloud.region", "not a GCP region")


def test_roles_control_plane_and_quorum(pubkey):
    fails(aws_cloud(pubkey, nodes=[{"role": "master", "type": "t3.medium"}]), "cloud.nodes[0].role", "control_plane")
    fails(aws_cloud(pubkey, nodes=[{"role": "worker", "type": "t3.medium"}]), "cloud.nodes", "no control_plane")
    fails(aws_cloud(pubkey, nodes=[{"role": "control_plane", "type": "t3.medium", "count": 2}]), "cloud.nodes", "quorum")


def test_zones_belong_to_the_region(pubkey):
    fails(aws_cloud(pubkey, azs=["us-west-2a"]), "cloud.azs[0]", "not a zone of region us-east-1")
    nodes = [{"role": "control_plane", "type": "t3.medium", "az": "us-east-1c"}]
    fails(aws_cloud(pubkey, azs=["us-east-1a"], nodes=nodes), "cloud.nodes[0].az", "add it there")
    fails(gcp_cloud(pubkey, azs=[]), "cloud.azs", "us-central1-a")


def test_network_must_not_overlap_the_pod_network(pubkey):
    fails(aws_cloud(pubkey, network_cidr="10.244.0.0/16"), "cloud.network_cidr", "cluster_pod_cidr",
          pod_cidr="10.244.0.0/16")
    fails(aws_cloud(pubkey, network_cidr="8.8.0.0/16"), "cloud.network_cidr", "not a private range")


def test_connection_rules(pubkey):
    fails(aws_cloud(pubkey, connection="telnet"), "cloud.connection", "ssh or ssm")
    fails(aws_cloud(pubkey, connection="ssm"), "cloud.ssm_bucket", "S3 bucket")
    fails(aws_cloud(pubkey, private_subnets=True), "cloud.private_subnets", "connection: ssm")
    fails(aws_cloud("/nonexistent/id.pub"), "cloud.ssh_public_key_file", "ssh-keygen")
    fails(gcp_cloud(pubkey, connection="ssm"), "cloud.connection", "AWS-only")
    model = normalize_cloud(aws_cloud(pubkey, connection="ssm", ssm_bucket="my-ssm-bucket", private_subnets=True))
    assert model["private_subnets"] and model["ssm_bucket"] == "my-ssm-bucket"


def test_unknown_keys_and_reserved_tags(pubkey):
    fails(aws_cloud(pubkey, regoin="us-east-1"), "cloud.regoin", "allowed keys")
    fails(aws_cloud(pubkey, tags={"llmops-cluster": "x"}), "cloud.tags.llmops-cluster", "set by the infra layer")
    nodes = [{"role": "control_plane", "type": "t3.medium", "gpus": 1}]
    fails(aws_cloud(pubkey, nodes=nodes), "cloud.nodes[0].gpus", "allowed keys")


def test_images(pubkey):
    fails(aws_cloud(pubkey, image={"id": "ami-xyz"}), "cloud.image.id", "not an AMI id")
    nodes = [{"role": "control_plane", "type": "t3.medium"}, {"role": "worker", "type": "t4g.medium"}]
    fails(aws_cloud(pubkey, nodes=nodes, image={"id": "ami-12c6146b"}), "cloud.image.id", "arm64")
    assert normalize_cloud(aws_cloud(pubkey, nodes=nodes))["archs"] == ["arm64", "x86_64"]


def test_gcp_accelerators(pubkey):
    nodes = [{"role": "control_plane", "type": "e2-standard-4"},
             {"role": "gpu_worker", "type": "n1-standard-8", "accelerator": {"type": "nvidia-tesla-t4", "count": 2}}]
    model = normalize_cloud(gcp_cloud(pubkey, nodes=nodes))
    assert model["nodes"][1]["gpus"] == 2 and not model["nodes"][1]["bundled"]
    nodes[1]["type"] = "g2-standard-8"
    fails(gcp_cloud(pubkey, nodes=nodes), "cloud.nodes[1].accelerator", "n1-*")
    fails(aws_cloud(pubkey, nodes=[{"role": "control_plane", "type": "t3.medium", "accelerator": {}}]),
          "cloud.nodes[0].accelerator", "GCP-only")


def test_gcp_g2_standard_96_is_eight_l4(pubkey):
    model = normalize_cloud(gcp_cloud(pubkey))
    assert (model["nodes"][2]["gpus"], model["nodes"][2]["gpu_model"]) == (8, "nvidia-l4")
    fails(gcp_cloud(pubkey, project="X"), "cloud.project", "project id")


def test_calico_encapsulation_is_checked(pubkey):
    fails(aws_cloud(pubkey), "calico_encapsulation", "VXLAN", encapsulation="GRE")


def test_instances_get_stable_names_and_start_in_the_first_zone(pubkey):
    nodes = [{"role": "control_plane", "type": "t3.medium"}, {"role": "worker", "type": "t3.medium", "count": 3},
             {"role": "worker", "type": "m5.large", "count": 1, "az": "us-east-1c"}]
    model = normalize_cloud(aws_cloud(pubkey, nodes=nodes))
    machines = expand_instances("llmops", model["nodes"], ["us-east-1a", "us-east-1b"])
    assert [(m["name"], m["zone"]) for m in machines] == [
        ("llmops-control-plane-0", "us-east-1a"), ("llmops-worker-0", "us-east-1a"),
        ("llmops-worker-1", "us-east-1b"), ("llmops-worker-2", "us-east-1a"), ("llmops-worker-3", "us-east-1c")]
