"""containerd config and NVIDIA drop-in render to valid TOML in both schemas (2 for
containerd 1.x, 3 for 2.x). Molecule runs schema 2 for real (Debian's 1.6); schema 3 is
checked here against the keys containerd 2.x reads."""
import json
import os
import tomllib

import jinja2
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _version_test(value, other, op):
    key = lambda v: tuple(int(p) for p in str(v).split("."))  # noqa: E731
    return {">=": key(value) >= key(other), "<": key(value) < key(other)}[op]


def render(role, template, **variables):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROOT, "roles", role, "templates")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["bool"] = bool
    env.filters["to_json"] = json.dumps
    env.tests["version"] = _version_test
    return tomllib.loads(env.get_template(template).render(ansible_managed="managed", **variables))


CONTAINERD = dict(containerd_dropin_dir="/etc/containerd/conf.d", containerd_root_dir="/var/lib/containerd",
                  containerd_state_dir="/run/containerd", containerd_sandbox_image="registry.k8s.io/pause:3.10.2",
                  containerd_systemd_cgroup=True, containerd_default_runtime="runc",
                  containerd_cdi_spec_dirs=["/etc/cdi", "/var/run/cdi"],
                  containerd_registry_config_dir="")  # no offline mirror (its render test sets one)
TOOLKIT = dict(nvidia_container_toolkit_sandbox_image="registry.k8s.io/pause:3.10.2",
               nvidia_container_toolkit_systemd_cgroup=True, nvidia_container_toolkit_runtime_name="nvidia",
               nvidia_container_toolkit_runtime_binary="/usr/bin/nvidia-container-runtime",
               nvidia_container_toolkit_default_runtime=True, nvidia_container_toolkit_registry_config_dir="")


def test_schema_2_for_containerd_16():
    cfg = render("containerd", "config.toml.j2", containerd_config_schema=2,
                 containerd_installed_version="1.6.20", **CONTAINERD)
    assert cfg["version"] == 2
    assert cfg["imports"] == ["/etc/containerd/conf.d/*.toml"]
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.10.2"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert "enable_cdi" not in cri  # 1.6 has no CDI support


def test_schema_2_enables_cdi_from_17():
    cfg = render("containerd", "config.toml.j2", containerd_config_schema=2,
                 containerd_installed_version="1.7.27", **CONTAINERD)
    assert cfg["plugins"]["io.containerd.grpc.v1.cri"]["enable_cdi"] is True


def test_schema_3_for_containerd_2():
    cfg = render("containerd", "config.toml.j2", containerd_config_schema=3,
                 containerd_installed_version="2.3.4", **CONTAINERD)
    assert cfg["version"] == 3
    assert "io.containerd.grpc.v1.cri" not in cfg["plugins"]
    runtime = cfg["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert cfg["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10.2"


@pytest.mark.parametrize("schema,plugin", [(2, "io.containerd.grpc.v1.cri"), (3, "io.containerd.cri.v1.runtime")])
def test_nvidia_dropin_keeps_runc_and_adds_nvidia(schema, plugin):
    dropin = render("nvidia_container_toolkit", "nvidia-runtime.toml.j2",
                    nvidia_container_toolkit_schema=schema, **TOOLKIT)
    assert dropin["version"] == schema
    runtimes = dropin["plugins"][plugin]["containerd"]["runtimes"]
    assert runtimes["nvidia"]["options"] == {"BinaryName": "/usr/bin/nvidia-container-runtime", "SystemdCgroup": True}
    # containerd 1.x replaces the whole CRI section from an import: runc must be restated.
    assert runtimes["runc"]["options"]["SystemdCgroup"] is True
    assert dropin["plugins"][plugin]["containerd"]["default_runtime_name"] == "nvidia"
    if schema == 2:
        assert dropin["plugins"][plugin]["sandbox_image"] == "registry.k8s.io/pause:3.10.2"


def test_nvidia_dropin_can_leave_runc_default():
    dropin = render("nvidia_container_toolkit", "nvidia-runtime.toml.j2", nvidia_container_toolkit_schema=2,
                    **{**TOOLKIT, "nvidia_container_toolkit_default_runtime": False})
    assert dropin["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["default_runtime_name"] == "runc"
