"""The Pod Security Admission labels every platform namespace carries (module_utils/k8s/security.py)."""
import pytest

from ansible_collections.llmops.platform.plugins.module_utils.k8s.security import pod_security_labels


def test_one_level_enforced_audited_and_warned():
    assert pod_security_labels("restricted") == {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "latest"}
    assert set(pod_security_labels("privileged", "v1.33").values()) == {"privileged", "v1.33"}


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError, match="restricted, baseline, privileged"):
        pod_security_labels("strict")
