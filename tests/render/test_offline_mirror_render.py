"""What the nodes and cluster layers write with an offline mirror (platform_mirror_url): containerd's
registry config_path and one hosts.toml per registry, the NVIDIA drop-in restating it for
containerd 1.x, K3s's registries.yaml, and the apt source of the mirror's flat repository. And
the contract that makes "every layer" true: every role that runs apt adds the mirror's source
first, every get_url goes through the mirror_url filter (or is skipped with a mirror)."""
import glob
import json
import os
import subprocess
import sys
import tomllib

import jinja2
import pytest
import yaml

from ansible_collections.llmops.platform.plugins.filter import mirror as mirror_filters

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIRROR = "http://10.10.0.5:8080"
REGISTRIES = ["docker.io", "nvcr.io", "public.ecr.aws", "registry.k8s.io"]


def _version_test(value, other, op):
    key = lambda v: tuple(int(p) for p in str(v).split("."))  # noqa: E731
    return {">=": key(value) >= key(other), "<": key(value) < key(other)}[op]


def render(role, template, **variables):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROOT, "roles", role, "templates")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters.update({"bool": bool, "to_json": json.dumps,
                        "llmops.platform.mirror_upstream": mirror_filters.mirror_upstream,
                        "regex_replace": lambda value, pattern, repl: __import__("re").sub(pattern, repl, value)})
    env.tests["version"] = _version_test
    env.tests["match"] = lambda value, pattern: __import__("re").match(pattern, value) is not None
    return env.get_template(template).render(ansible_managed="managed", **variables)


CONTAINERD = dict(containerd_dropin_dir="/etc/containerd/conf.d", containerd_root_dir="/var/lib/containerd",
                  containerd_state_dir="/run/containerd", containerd_sandbox_image="registry.k8s.io/pause:3.10.2",
                  containerd_systemd_cgroup=True, containerd_default_runtime="runc",
                  containerd_cdi_spec_dirs=["/etc/cdi", "/var/run/cdi"])


@pytest.mark.parametrize("schema,version,plugin", [(2, "1.6.20", "io.containerd.grpc.v1.cri"),
                                                   (3, "2.3.4", "io.containerd.cri.v1.images")])
def test_containerd_reads_registry_hosts_only_with_a_mirror(schema, version, plugin):
    with_mirror = tomllib.loads(render("containerd", "config.toml.j2", containerd_config_schema=schema,
                                       containerd_installed_version=version,
                                       containerd_registry_config_dir="/etc/containerd/certs.d", **CONTAINERD))
    assert with_mirror["plugins"][plugin]["registry"] == {"config_path": "/etc/containerd/certs.d"}
    without = tomllib.loads(render("containerd", "config.toml.j2", containerd_config_schema=schema,
                                   containerd_installed_version=version, containerd_registry_config_dir="",
                                   **CONTAINERD))
    assert "registry" not in without["plugins"][plugin]


@pytest.mark.parametrize("registry,server", [("docker.io", "https://registry-1.docker.io"),
                                             ("registry.k8s.io", "https://registry.k8s.io")])
def test_hosts_toml_pulls_through_the_mirror(registry, server):
    hosts = tomllib.loads(render("containerd", "hosts.toml.j2", item=registry, containerd_registry_mirror_url=MIRROR))
    assert hosts == {"server": server, "host": {MIRROR: {"capabilities": ["pull", "resolve"]}}}


def test_nvidia_dropin_restates_the_registry_config_for_containerd_1():
    toolkit = dict(nvidia_container_toolkit_sandbox_image="registry.k8s.io/pause:3.10.2",
                   nvidia_container_toolkit_systemd_cgroup=True, nvidia_container_toolkit_runtime_name="nvidia",
                   nvidia_container_toolkit_runtime_binary="/usr/bin/nvidia-container-runtime",
                   nvidia_container_toolkit_default_runtime=True)
    dropin = tomllib.loads(render("nvidia_container_toolkit", "nvidia-runtime.toml.j2",
                                  nvidia_container_toolkit_schema=2,
                                  nvidia_container_toolkit_registry_config_dir="/etc/containerd/certs.d", **toolkit))
    # containerd 1.x replaces the whole CRI section from an import: without this, GPU nodes
    # would lose the mirror.
    assert dropin["plugins"]["io.containerd.grpc.v1.cri"]["registry"] == {"config_path": "/etc/containerd/certs.d"}


def test_k3s_registries_yaml_mirrors_every_registry():
    text = render("k3s", "registries.yaml.j2", k3s_registry_mirrors=REGISTRIES, k3s_registry_mirror_url=MIRROR)
    assert yaml.safe_load(text) == {"mirrors": {r: {"endpoint": [MIRROR]} for r in REGISTRIES}}


def deb822(text):
    fields, key = {}, None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(" "):
            fields[key] += "\n" + line[1:]
        else:
            key, _sep, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def test_apt_source_of_the_mirror():
    trusted = deb822(render("platform_defaults", "apt-mirror.sources.j2", platform_mirror_url=MIRROR + "/",
                            platform_mirror_apt_signed_by=""))
    assert trusted == {"Types": "deb", "URIs": f"{MIRROR}/apt/", "Suites": "./", "Trusted": "yes"}
    by_path = deb822(render("platform_defaults", "apt-mirror.sources.j2", platform_mirror_url=MIRROR,
                            platform_mirror_apt_signed_by="/etc/apt/keyrings/llmops-mirror.asc"))
    assert by_path["Signed-By"] == "/etc/apt/keyrings/llmops-mirror.asc" and "Trusted" not in by_path
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGaaaa\n-----END PGP PUBLIC KEY BLOCK-----\n"
    inline = deb822(render("platform_defaults", "apt-mirror.sources.j2", platform_mirror_url=MIRROR,
                           platform_mirror_apt_signed_by=key))
    assert inline["Signed-By"] == "\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nmQINBGaaaa\n-----END PGP PUBLIC KEY BLOCK-----"


# ---- every layer takes its downloads from the mirror ----

def _tasks(path):
    def walk(items, skipped_with_mirror=False):
        for task in items or []:
            if not isinstance(task, dict):
                continue
            when = " ".join(task["when"]) if isinstance(task.get("when"), list) else str(task.get("when", ""))
            skipped = skipped_with_mirror or "not platform_mirror_url" in when
            yield task, skipped
            for key in ("block", "rescue", "always"):
                yield from walk(task.get(key), skipped)
    with open(path, encoding="utf-8") as handle:
        return list(walk(yaml.safe_load(handle)))


ROLE_TASKS = sorted(glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "*.yml")))


def _skipped_files() -> set:
    """Task files included only under `when: not platform_mirror_url` (e.g. a repository's key)."""
    out = set()
    for path in ROLE_TASKS:
        for task, skipped in _tasks(path):
            target = task.get("ansible.builtin.include_tasks")
            if skipped and isinstance(target, str):
                pattern = __import__("re").sub(r"\{\{.*?\}\}", "*", target)
                out |= set(glob.glob(os.path.join(os.path.dirname(path), pattern)))
    return out


def test_every_get_url_takes_the_mirror_url():
    unrouted = []
    for path in sorted(set(ROLE_TASKS) - _skipped_files()):
        role = path.split(os.sep)[-3]
        defaults = open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")).read() \
            if os.path.isfile(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) else ""
        for task, skipped in _tasks(path):
            get_url = task.get("ansible.builtin.get_url")
            if not get_url or skipped:
                continue
            url = str(get_url["url"])
            # The URL is rewritten in the task, or comes from a role default that rewrites it.
            variables = [v for v in ("k3s_release_url", "k3s_upgrade_release_url", "calico_archive_url",
                                     "router_k8s_gie_crd_url") if v in url]
            routed = "mirror_url(platform_mirror_url)" in url or (
                variables and all(f"{v}: >-" in defaults and "mirror_url(platform_mirror_url)" in
                                  defaults.split(f"{v}: >-")[1].split("\n\n")[0].split("\n#")[0] for v in variables))
            if not routed:
                unrouted.append(f"{os.path.relpath(path, ROOT)}: {task['name']}")
    assert unrouted == []


def test_every_role_that_runs_apt_adds_the_mirror_source_first():
    missing = []
    for path in ROLE_TASKS:
        if path.endswith("platform_defaults/tasks/apt_mirror.yml"):
            continue
        tasks = _tasks(path)
        installs = [i for i, (t, _s) in enumerate(tasks) if (t.get("ansible.builtin.apt") or {}).get("name")]
        if not installs:
            continue
        role_files = glob.glob(os.path.join(os.path.dirname(path), "*.yml"))
        includes = [(f, i) for f in role_files for i, (t, _s) in enumerate(_tasks(f))
                    if (t.get("ansible.builtin.include_role") or {}).get("tasks_from") == "apt_mirror"]
        same_file_before = [i for f, i in includes if f == path and i < installs[0]]
        if not same_file_before and not any(f != path for f, _i in includes):
            missing.append(os.path.relpath(path, ROOT))
    assert missing == []


# ---- the K3s role with a mirror, rendered for real ----

def test_k3s_render_with_a_mirror(tmp_path):
    extra = {"platform_home": str(tmp_path), "platform_render_dir": str(tmp_path / "rendered"),
             "cluster_distribution": "k3s", "platform_apply": False, "platform_mirror_url": MIRROR}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", os.path.join(ROOT, ".ansible")), ANSIBLE_NOCOLOR="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                           os.path.join(ROOT, "tests", "render", "inventories", "cluster"), "playbooks/cluster.yml",
                           "--tags", "k3s", "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    rendered = sorted(glob.glob(str(tmp_path / "rendered" / "cluster" / "k3s" / "*" / "registries.yaml")))
    assert len(rendered) == 3  # every node: servers and agents pull images
    doc = yaml.safe_load(open(rendered[0]))
    assert set(doc["mirrors"]) >= set(REGISTRIES) and {m["endpoint"][0] for m in doc["mirrors"].values()} == {MIRROR}
