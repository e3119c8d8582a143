"""containerd config schema chosen from the installed binary's version string."""
import pytest

from ansible_collections.llmops.platform.plugins.module_utils.nodes.containerd import (
    ContainerdVersionError,
    config_schema_version,
    parse_containerd_version,
)

DEBIAN_12 = "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
UPSTREAM_2 = "containerd github.com/containerd/containerd/v2 v2.3.4 1a2b3c4d"


def test_parse_debian_and_upstream_strings():
    assert parse_containerd_version(DEBIAN_12) == "1.6.20"
    assert parse_containerd_version(UPSTREAM_2) == "2.3.4"
    assert parse_containerd_version("containerd containerd.io 1.7.27 05044ec") == "1.7.27"


def test_schema_v2_for_1x_and_v3_for_2x():
    assert config_schema_version(DEBIAN_12) == 2
    assert config_schema_version("1.7.27") == 2
    assert config_schema_version(UPSTREAM_2) == 3
    assert config_schema_version("3.0.0") == 3


def test_garbage_is_an_error():
    with pytest.raises(ContainerdVersionError):
        parse_containerd_version("command not found")
    with pytest.raises(ContainerdVersionError):
        config_schema_version("0.9.1")
