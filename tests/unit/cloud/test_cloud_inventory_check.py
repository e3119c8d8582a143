"""Preflight notices when the inventory plugin config would not find the cluster's machines."""
import os
import shutil

from cloud_fixtures import aws_cloud, gcp_cloud

from ansible_collections.llmops.platform.plugins.module_utils.cloud import inventory_check
from ansible_collections.llmops.platform.plugins.module_utils.cloud.model import normalize_cloud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def check(model, inventory_dir):
    configs = inventory_check.plugin_configs([inventory_dir], model["provider"])
    return configs, inventory_check.mismatches(model, configs)


def test_the_shipped_inventories_agree_with_their_cloud_models(pubkey):
    import yaml
    for provider in ("aws", "gcp"):
        inv = os.path.join(ROOT, "inventories", provider)
        with open(os.path.join(inv, "group_vars", "all", "cloud.yml"), encoding="utf-8") as handle:
            cloud = yaml.safe_load(handle)["cloud"]
        cloud["ssh_public_key_file"] = pubkey
        configs, errors = check(normalize_cloud(cloud), inv)
        assert len(configs) == 1 and errors == [], (provider, errors)


def test_a_renamed_cluster_or_moved_region_is_named(pubkey, tmp_path):
    inv = tmp_path / "aws"
    shutil.copytree(os.path.join(ROOT, "inventories", "aws"), inv)
    _, errors = check(normalize_cloud(aws_cloud(pubkey, cluster_name="prod", region="eu-west-1")), str(inv))
    assert any("cloud.region eu-west-1" in e for e in errors)
    assert any("cloud.cluster_name is 'prod'" in e and "aws_ec2.yml" in e for e in errors)
    inv = tmp_path / "gcp"
    shutil.copytree(os.path.join(ROOT, "inventories", "gcp"), inv)
    _, errors = check(normalize_cloud(gcp_cloud(pubkey, cluster_name="prod")), str(inv))
    assert any("labels.llmops-cluster = prod" in e for e in errors)
