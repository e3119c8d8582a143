"""A maintained policy scanner over every rendered Kubernetes object.

checkov (pinned in requirements/scan.lock, its own cached venv: scripts/venv.sh ensure scan)
scans, offline, the full rendered output of the render tests: the serving and monitoring
layers of every serving variant (seed 002 with the router, KEDA and the Gateway API Inference
Extension; KVCached; seed 000 with HPA, the kube-proxy baseline and a CPU-only cluster), the
fine-tuning layer, and the cluster layer of both distributions (kubeadm, K3s). It must find
nothing: each suppression is in the object itself with its reason, or, for a check that
cannot apply to a whole class, in tests/render/checkov.yaml with its reason.

A deliberately broken manifest must fail the same scan, so a scanner that silently checks
nothing cannot pass.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import cluster_render
import finetune_render
import policy_scan
import pytest
import serving_render

CONFIG = policy_scan.CONFIG
SCAN_LOCK = policy_scan.SCAN_LOCK

BROKEN = """\
apiVersion: v1
kind: Pod
metadata:
  name: broken
  namespace: default
spec:
  containers:
    - name: root-shell
      image: busybox
      securityContext:
        privileged: true
      volumeMounts:
        - {name: host, mountPath: /host}
  volumes:
    - name: host
      hostPath: {path: /}
"""


@pytest.fixture(scope="module")
def checkov() -> str:
    return policy_scan.checkov()


@pytest.fixture(scope="module")
def rendered() -> str:
    """One directory holding every render's output (copies; each render keeps its own)."""
    base = tempfile.mkdtemp(prefix="llmops-policy-scan-")
    for name, home in serving_render.render_all().items():
        for step in sorted(d for d in os.listdir(home) if d.startswith("rendered-")):
            shutil.copytree(os.path.join(home, step), os.path.join(base, f"serving-{name}-{step}"))
    shutil.copytree(finetune_render.default(), os.path.join(base, "finetune"))
    for name in ("kubeadm", "k3s"):
        shutil.copytree(cluster_render.render_all()[name], os.path.join(base, f"cluster-{name}"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def result(checkov, rendered):
    return policy_scan.scan(rendered)


def test_the_scanner_is_the_pinned_one(checkov):
    with open(SCAN_LOCK, encoding="utf-8") as handle:
        pinned = re.search(r"^checkov==([^\s;]+)", handle.read(), re.M).group(1)
    out = subprocess.run([checkov, "--version"], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == pinned


def test_every_rendered_object_passes_the_policy_scan(result):
    code, report, elapsed = result
    failed = [f"{f['check_id']} {f['resource']} ({f['file_path']}): {f['check_name']}"
              for f in report["results"]["failed_checks"]]
    assert failed == [], "\n".join(sorted(set(failed)))
    assert code == 0
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    # It scanned the platform, not an empty directory: every kind of workload is there.
    resources = {r["resource"].split(".")[0] + "." + r["resource"].rsplit(".", 1)[-1]
                 for part in ("passed_checks", "skipped_checks") for r in report["results"].get(part, [])}
    for expected in ("Deployment.llm-router", "Deployment.llm-gateway", "Deployment.llama-8b", "Deployment.llama-1b",
                     "Deployment.qwen-7b-epp", "Deployment.llm-inference", "Deployment.llama-factory-webui",
                     "DaemonSet.dcgm-exporter", "DaemonSet.nvidia-device-plugin", "Pod.gpu-smoke-test"):
        assert any(r.startswith(expected) for r in resources), expected
    assert summary["resource_count"] > 300, summary
    print(f"\npolicy scan: {summary} in {elapsed:.1f}s")


def test_every_suppression_in_an_object_has_its_reason(result):
    _, report, _ = result
    skipped = report["results"].get("skipped_checks", [])
    assert skipped, "the security-context exceptions must show as suppressed checks"
    reasons = {(s["check_id"], s["resource"]): (s["check_result"].get("suppress_comment") or "").strip()
               for s in skipped}
    assert [key for key, reason in reasons.items() if not reason or reason == "No comment provided"] == []
    # The security-context exceptions carry security.py's reasons.
    assert any(reason.startswith("security-context exception: ") for reason in reasons.values())


def test_every_check_skipped_for_a_whole_class_has_its_reason():
    with open(CONFIG, encoding="utf-8") as handle:
        text = handle.read()
    block = text.split("skip-check:", 1)[1]
    entries = re.findall(r"^\s*-\s*(CKV\S*)(.*)$", block, re.M)
    assert entries
    assert [check for check, comment in entries if not re.match(r"\s+#\s*\S", comment)] == []


def test_a_privileged_pod_with_a_host_path_and_no_resources_fails_the_scan(checkov, tmp_path):
    (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    code, report, _ = policy_scan.scan(str(tmp_path))
    assert code != 0
    failed = {f["check_id"] for f in report["results"]["failed_checks"]}
    # Privileged, no resource requests or limits, root, no probes.
    assert {"CKV_K8S_16", "CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13", "CKV_K8S_23",
            "CKV_K8S_8", "CKV_K8S_9"} <= failed, sorted(failed)
