"""The infra layer's AWS path for real, against moto's server (an in-memory AWS API).

One moto per test run, on a free loopback port, reached through AWS_ENDPOINT_URL: the one
variable that both the aws_infra role (module_defaults group/aws) and the aws_ec2 inventory
config in inventories/aws read. The sequence is the life of a cluster:

  bad input fails in preflight before any API call
  -> a type the API rejects fails half-way (control plane and worker exist, GPU worker not)
  -> the corrected rerun completes it -> a third run changes nothing
  -> security groups, IMDSv2, volumes, tags, IAM and key pair are exactly as modelled
  -> the inventory plugin puts the machines in kube_control_plane / kube_node / kube_gpu_node
  -> worker count 2 adds exactly llmops-worker-1, count 1 removes exactly it
  -> teardown refuses without confirmation, then leaves zero tagged resources while a VPC
     the test made beforehand (untagged) and another cluster's VPC survive; a second
     teardown finds nothing and changes nothing.
"""
from __future__ import annotations

import copy
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
INVENTORY = os.path.join(ROOT, "inventories", "aws")
ADMIN = "203.0.113.0/24"
VPC = "10.10.0.0/16"
# moto's bundled Amazon Linux 2 image (owner 137112412989), found by owner + name pattern
# exactly as Debian's image is found on AWS.
IMAGE = {"owner": "137112412989", "name": "amzn2-ami-hvm-*-x86_64-gp2"}
NODES = [{"role": "control_plane", "type": "t3.medium", "count": 1, "disk_gib": 50},
         {"role": "worker", "type": "t3.medium", "count": 1, "disk_gib": 50},
         {"role": "gpu_worker", "type": "g4dn.xlarge", "count": 1, "disk_gib": 200}]
TIMINGS: dict[str, float] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto():
    """A fresh moto_server; instance types are validated against EC2's offerings like AWS does."""
    server = os.path.join(BIN, "moto_server")
    assert os.path.exists(server), "moto_server is missing from the control venv (moto[server] in requirements/control.in)"
    port = _free_port()
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true", MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION="true")
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the whole group: the listener may be a child
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def aws(moto):
    import boto3

    kwargs = {"endpoint_url": moto, "region_name": "us-east-1", "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
    return {"ec2": boto3.client("ec2", **kwargs), "iam": boto3.client("iam", **kwargs)}


class Infra:
    def __init__(self, moto: str, tmp: str):
        self.tmp = tmp
        self.env = dict(os.environ, AWS_ENDPOINT_URL=moto, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                        ANSIBLE_HOME=os.path.join(ROOT, ".ansible"), PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            self.env.pop(key, None)
        self.key = os.path.join(tmp, "id_ed25519")
        _write_ssh_key(self.key)

    def cloud(self, nodes=None, **overrides) -> dict:
        cloud = {"provider": "aws", "region": "us-east-1", "cluster_name": "llmops", "admin_cidrs": [ADMIN],
                 "ssh_public_key_file": self.key + ".pub", "image": IMAGE, "nodes": copy.deepcopy(nodes or NODES)}
        cloud.update(overrides)
        return cloud

    def _vars(self, extra: dict) -> str:
        path = os.path.join(self.tmp, "vars.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"infra_wait_for_nodes": False, "aws_infra_retry_delay": 1, **extra}, handle)
        return path

    def play(self, step: str, playbook: str, cloud: dict, *args: str, **extra) -> subprocess.CompletedProcess:
        start, cpu = time.monotonic(), _children_cpu()
        result = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, playbook, *args,
                                 "-e", "@" + self._vars({"cloud": cloud, **extra})],
                                cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600, check=False)
        TIMINGS[step] = {"wall": round(time.monotonic() - start, 1), "cpu": round(_children_cpu() - cpu, 1)}
        return result

    def inventory(self, cloud: dict) -> dict:
        result = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", INVENTORY, "--list",
                                 "-e", "@" + self._vars({"cloud": cloud})],
                                cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120, check=True)
        return json.loads(result.stdout)

    def ansible_hosts(self, cloud: dict) -> dict[str, str]:
        """ansible_host of every cluster machine as the next layers would template it (debug connects nowhere)."""
        env = dict(self.env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
        result = subprocess.run([os.path.join(BIN, "ansible"), "-i", INVENTORY, "k8s_cluster", "-m",
                                 "ansible.builtin.debug", "-a", "var=ansible_host", "-e", "@" + self._vars({"cloud": cloud})],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
        hosts = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]
        return {name: out["ansible_host"] for name, out in hosts.items()}


def _write_ssh_key(path: str) -> None:
    """An ed25519 key pair in OpenSSH format (cryptography, as ssh-keygen would write it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(private)
    with open(path + ".pub", "wb") as handle:
        handle.write(public + b" llmops-test\n")


def _ok(result) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return result


def _changed(result) -> int:
    match = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", result.stdout)
    assert match, result.stdout[-3000:]
    return int(match.group(1))


def _instances(ec2, cluster="llmops") -> dict[str, dict]:
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:llmops-cluster", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
    found = [i for r in reservations for i in r["Instances"]]
    return {next(t["Value"] for t in i["Tags"] if t["Key"] == "Name"): i for i in found}


def _tagged(ec2, cluster="llmops") -> dict[str, list]:
    tag = [{"Name": "tag:llmops-cluster", "Values": [cluster]}]
    return {"vpcs": ec2.describe_vpcs(Filters=tag)["Vpcs"],
            "subnets": ec2.describe_subnets(Filters=tag)["Subnets"],
            "security_groups": ec2.describe_security_groups(Filters=tag)["SecurityGroups"],
            "route_tables": ec2.describe_route_tables(Filters=tag)["RouteTables"],
            "internet_gateways": ec2.describe_internet_gateways(Filters=tag)["InternetGateways"],
            "key_pairs": ec2.describe_key_pairs(Filters=tag)["KeyPairs"],
            "instances": list(_instances(ec2, cluster).values())}


def _rules(group: dict, key: str) -> set[tuple]:
    rules = set()
    for perm in group[key]:
        for rng in perm.get("IpRanges", []):
            rules.add((perm["IpProtocol"], perm.get("FromPort"), perm.get("ToPort"), rng["CidrIp"]))
    return rules


def _neighbours(ec2) -> dict[str, str]:
    """An untagged VPC with a subnet and a security group, and another cluster's VPC."""
    plain = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=plain, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="neighbour", Description="not ours", VpcId=plain)["GroupId"]
    other = ec2.create_vpc(CidrBlock="10.30.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "llmops-cluster", "Value": "other"}]}])["Vpc"]["VpcId"]
    return {"vpc": plain, "subnet": subnet, "group": group, "other_vpc": other}


def test_infra_lifecycle_against_moto(moto, aws, tmp_path):
    ec2, iam = aws["ec2"], aws["iam"]
    infra = Infra(moto, str(tmp_path))
    neighbours = _neighbours(ec2)
    vpcs_before = len(ec2.describe_vpcs()["Vpcs"])

    # Bad input: preflight names the field; nothing reaches the API.
    bad_nodes = copy.deepcopy(NODES)
    bad_nodes[2]["type"] = "t3.large"
    bad = infra.play("preflight_refusal", "playbooks/infra.yml", infra.cloud(bad_nodes))
    # The YAML callback folds long messages: compare with whitespace collapsed.
    assert bad.returncode != 0 and "cloud.nodes[2].type: t3.large has no GPU" in " ".join((bad.stdout + bad.stderr).split())
    assert len(ec2.describe_vpcs()["Vpcs"]) == vpcs_before

    # A type the API rejects (p3 is not offered here): the run stops half-way.
    rejected = copy.deepcopy(NODES)
    rejected[2]["type"] = "p3.2xlarge"
    half = infra.play("half_way_failure", "playbooks/infra.yml", infra.cloud(rejected))
    assert half.returncode != 0 and "p3.2xlarge" in half.stdout, half.stdout[-3000:]
    assert sorted(_instances(ec2)) == ["llmops-control-plane-0", "llmops-worker-0"]
    first_ids = {name: i["InstanceId"] for name, i in _instances(ec2).items()}

    # The corrected rerun completes the cluster without touching what exists.
    assert _changed(_ok(infra.play("rerun_completes", "playbooks/infra.yml", infra.cloud()))) > 0
    machines = _instances(ec2)
    assert sorted(machines) == ["llmops-control-plane-0", "llmops-gpu-worker-0", "llmops-worker-0"]
    assert all(machines[n]["InstanceId"] == first_ids[n] for n in first_ids)

    # Idempotence.
    assert _changed(_ok(infra.play("second_run", "playbooks/infra.yml", infra.cloud()))) == 0

    _assert_resources(ec2, iam, machines)
    _assert_inventory(infra, machines)

    # Scaling: exactly one more worker, then exactly that one gone.
    two = copy.deepcopy(NODES)
    two[1]["count"] = 2
    _ok(infra.play("scale_up", "playbooks/infra.yml", infra.cloud(two)))
    grown = _instances(ec2)
    assert sorted(grown) == sorted([*machines, "llmops-worker-1"])
    assert all(grown[n]["InstanceId"] == machines[n]["InstanceId"] for n in machines)
    assert grown["llmops-worker-1"]["Placement"]["AvailabilityZone"] == "us-east-1b"  # spread over the zones
    _ok(infra.play("scale_down", "playbooks/infra.yml", infra.cloud()))
    shrunk = _instances(ec2)
    assert {n: i["InstanceId"] for n, i in shrunk.items()} == {n: i["InstanceId"] for n, i in machines.items()}

    # Teardown: refused without confirmation, then complete, then a no-op.
    refused = infra.play("teardown_refused", "playbooks/infra_teardown.yml", infra.cloud())
    assert refused.returncode != 0 and "infra_teardown_confirm=yes" in refused.stdout
    assert len(_instances(ec2)) == 3
    _ok(infra.play("teardown", "playbooks/teardown.yml", infra.cloud(), "--tags", "infra",
                    infra_teardown_confirm="yes"))
    assert {kind: len(found) for kind, found in _tagged(ec2).items()} == dict.fromkeys(_tagged(ec2), 0)
    assert "llmops-node" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert not iam.list_instance_profiles()["InstanceProfiles"]
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[neighbours["vpc"], neighbours["other_vpc"]])["Vpcs"]]
    assert ec2.describe_subnets(SubnetIds=[neighbours["subnet"]])["Subnets"]
    assert ec2.describe_security_groups(GroupIds=[neighbours["group"]])["SecurityGroups"]
    again = _ok(infra.play("teardown_again", "playbooks/infra_teardown.yml", infra.cloud(), infra_teardown_confirm="yes"))
    assert _changed(again) == 0
    print("\nmoto infra timings (s):", json.dumps(TIMINGS), "total wall",
          round(sum(t["wall"] for t in TIMINGS.values()), 1), "cpu", round(sum(t["cpu"] for t in TIMINGS.values()), 1))


def _assert_resources(ec2, iam, machines: dict[str, dict]) -> None:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:llmops-cluster", "Values": ["llmops"]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpc] == [VPC]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc[0]["VpcId"]]}])["Subnets"]
    assert sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == [
        ("us-east-1a", "10.10.0.0/20"), ("us-east-1b", "10.10.16.0/20")]
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(
        Filters=[{"Name": "tag:llmops-cluster", "Values": ["llmops"]}])["SecurityGroups"]}
    assert sorted(groups) == ["llmops-control-plane", "llmops-nodes"]
    assert _rules(groups["llmops-control-plane"], "IpPermissions") == {
        ("tcp", 6443, 6443, ADMIN), ("tcp", 6443, 6443, VPC), ("tcp", 2379, 2380, VPC)}
    assert _rules(groups["llmops-nodes"], "IpPermissions") == {
        ("tcp", 22, 22, ADMIN), ("tcp", 10250, 10250, VPC), ("tcp", 30000, 32767, VPC), ("udp", 30000, 32767, VPC),
        ("tcp", 179, 179, VPC), ("udp", 4789, 4789, VPC), ("tcp", 5473, 5473, VPC), ("tcp", 9100, 9100, VPC),
        ("icmp", -1, -1, VPC)}
    assert _rules(groups["llmops-nodes"], "IpPermissionsEgress") == {
        ("-1", None, None, VPC), ("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0")}
    assert _rules(groups["llmops-control-plane"], "IpPermissionsEgress") == set()
    everywhere = [r for g in groups.values() for r in _rules(g, "IpPermissions") if r[3] == "0.0.0.0/0"]
    assert everywhere == []
    profile = iam.get_instance_profile(InstanceProfileName="llmops-node")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["llmops-node"]
    policies = iam.list_attached_role_policies(RoleName="llmops-node")["AttachedPolicies"]
    assert [p["PolicyName"] for p in policies] == ["AmazonSSMManagedInstanceCore"]
    roles = {"llmops-control-plane-0": "control_plane", "llmops-worker-0": "worker", "llmops-gpu-worker-0": "gpu_worker"}
    sizes = {"control_plane": 50, "worker": 50, "gpu_worker": 200}
    for name, instance in machines.items():
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags["llmops-cluster"] == "llmops" and tags["llmops-role"] == roles[name], tags
        assert tags["kubernetes.io/cluster/llmops"] == "owned"
        meta = instance["MetadataOptions"]
        assert (meta["HttpTokens"], meta["HttpEndpoint"], meta["HttpPutResponseHopLimit"]) == ("required", "enabled", 1)
        assert instance["KeyName"] == "llmops-admin" and instance["IamInstanceProfile"]["Arn"].endswith("/llmops-node")
        expected_groups = {"llmops-nodes"} | ({"llmops-control-plane"} if roles[name] == "control_plane" else set())
        assert {g["GroupName"] for g in instance["SecurityGroups"]} == expected_groups
        assert instance["Placement"]["AvailabilityZone"] == "us-east-1a" and instance.get("PublicIpAddress")
        root = next(b for b in instance["BlockDeviceMappings"] if b["DeviceName"] == instance["RootDeviceName"])
        volume = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
        assert (volume["VolumeType"], volume["Encrypted"], volume["Size"]) == ("gp3", True, sizes[roles[name]])
    key = ec2.describe_key_pairs(KeyNames=["llmops-admin"])["KeyPairs"][0]
    assert {t["Key"]: t["Value"] for t in key.get("Tags", [])}.get("llmops-cluster") == "llmops"


def _assert_inventory(infra: Infra, machines: dict[str, dict]) -> None:
    cloud = infra.cloud()
    inventory = infra.inventory(cloud)
    assert inventory["kube_control_plane"]["hosts"] == ["llmops-control-plane-0"]
    assert sorted(inventory["kube_node"]["hosts"]) == ["llmops-gpu-worker-0", "llmops-worker-0"]
    assert inventory["kube_gpu_node"]["hosts"] == ["llmops-gpu-worker-0"]
    assert sorted(inventory["k8s_cluster"]["children"]) == ["kube_control_plane", "kube_node"]
    assert inventory["llm_serving_hosts"]["hosts"] == ["localhost"]
    hosts = infra.ansible_hosts(cloud)
    assert hosts == {name: machines[name]["PublicIpAddress"] for name in machines}
