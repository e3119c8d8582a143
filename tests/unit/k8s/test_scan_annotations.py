"""The policy scanner's suppressions (checkov.io/skipN annotations) from security.py."""
from __future__ import annotations

import pytest

from ansible_collections.llmops.platform.plugins.filter.k8s_serving import k8s_scan_annotations
from ansible_collections.llmops.platform.plugins.module_utils.k8s import security


def test_an_exception_suppresses_its_checks_with_its_reason():
    reason, checks = security.EXCEPTIONS["nvidia-device-plugin"]
    out = security.scan_annotations("nvidia-device-plugin", {"CKV_K8S_8": "no health endpoint"})
    assert list(out) == [f"checkov.io/skip{i}" for i in range(1, len(checks) + 2)]
    values = dict(v.split("=", 1) for v in out.values())
    assert values.pop("CKV_K8S_8") == "no health endpoint"
    assert values == dict.fromkeys(checks, f"security-context exception: {reason}")
    # Numeric order of the check IDs: CKV_K8S_8 before CKV_K8S_22.
    assert out["checkov.io/skip1"].startswith("CKV_K8S_8=")


def test_every_suppression_needs_a_reason_and_a_known_exception():
    with pytest.raises(ValueError, match="no reason"):
        security.scan_annotations(None, {"CKV_K8S_8": " "})
    with pytest.raises(ValueError, match="no security-context exception"):
        security.scan_annotations("vllm", {})
    assert not security.scan_annotations()


def test_the_filter_reports_an_unknown_exception_as_a_filter_error():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError):
        k8s_scan_annotations({}, "nope")
    assert k8s_scan_annotations({"CKV_K8S_21": "why"}) == {"checkov.io/skip1": "CKV_K8S_21=why"}
