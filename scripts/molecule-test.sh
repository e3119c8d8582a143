#!/usr/bin/env bash
# Run the host-role Molecule scenario from nothing on a fresh Debian CI machine:
#   1. apt-get install docker.io debootstrap when missing (Debian packages only),
#   2. start dockerd when `docker info` fails (no systemd here), and stop it at the end
#      only if this script started it,
#   3. build the Debian 12 systemd image (cached: skipped when the tag exists),
#   4. `molecule test` (destroy, create, prepare, converge, idempotence, side_effect,
#      verify, destroy); prepare builds the offline mirror into ${LLMOPS_CACHE}/mirrors/
#      (keyed by what it holds, reused by later runs) for the air-gapped node.
# Extra arguments go to molecule (e.g. `scripts/molecule-test.sh --destroy never`).
# LLMOPS_DOCKER_PYTEST="tests/..." then runs those pytest paths against the same daemon/image.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
export ANSIBLE_HOME="${ANSIBLE_HOME:-${root}/.ansible}"
cache="${LLMOPS_CACHE:-${HOME}/.cache/llmops}"
mkdir -p "${cache}"

say() { echo "== molecule-test: $*" >&2; }
start=$(date +%s)

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  say "installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

started_dockerd=""
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: ${cache}/dockerd.log)"
  dockerd >"${cache}/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "${started_dockerd}" 2>/dev/null || { tail -n 20 "${cache}/dockerd.log" >&2; exit 1; }
    sleep 1
  done
  docker info >/dev/null 2>&1 || { say "dockerd did not answer within 60 s"; tail -n 20 "${cache}/dockerd.log" >&2; exit 1; }
fi
stop_dockerd() {
  if [[ -n "${started_dockerd}" ]]; then
    say "stopping the dockerd this script started (pid ${started_dockerd})"
    kill "${started_dockerd}" 2>/dev/null || true
    wait "${started_dockerd}" 2>/dev/null || true
  fi
}
trap stop_dockerd EXIT

LLMOPS_MOLECULE_IMAGE="$(scripts/build-molecule-image.sh)"
export LLMOPS_MOLECULE_IMAGE
say "image ${LLMOPS_MOLECULE_IMAGE} ready after $(( $(date +%s) - start ))s"

bin="$(scripts/venv.sh path control)/bin"
[[ -x "${bin}/molecule" ]] || scripts/venv.sh ensure control >/dev/null

# The offline mirror the air-gapped node installs from (molecule/default/prepare.yml builds
# it with playbooks/mirror.yml, the mirror container serves it): outside the clone, keyed by
# what it holds (the artifact plan of prepare.yml's selection against versions.yml), so a
# rerun downloads no package again and a changed pin or package list builds a new one.
mirror_key="$(PYTHONPATH="${root}/.collections" "${bin}/python" - <<'PY'
import hashlib, json, yaml
from ansible_collections.llmops.platform.plugins.module_utils.mirror import plan
versions = yaml.safe_load(open("roles/platform_defaults/defaults/main/versions.yml"))["platform_versions"]
play = next(p for p in yaml.safe_load(open("molecule/default/prepare.yml")) if "ansible.builtin.import_playbook" in p)
selection = dict(play["vars"]["mirror_selection"], kinds=play["vars"]["mirror_kinds"])
wanted = [a.to_dict() for a in plan.plan(versions, selection)]
archive = [versions[k] for k in ("debian_archive_url", "debian_security_url", "debian_suite")]
print(hashlib.sha256(json.dumps([wanted, archive], sort_keys=True).encode()).hexdigest()[:16])
PY
)"
export LLMOPS_MOLECULE_MIRROR="${cache}/mirrors/molecule-nodes-${mirror_key}"
mkdir -p "${LLMOPS_MOLECULE_MIRROR}"
say "offline mirror ${LLMOPS_MOLECULE_MIRROR}"

# The whole log is long and CI keeps its tail: on a failure, repeat the failed tasks and the
# host's state (disk, memory, swap, cgroups) last, where they are read.
log="${cache}/molecule-last.log"
if ! PATH="${bin}:${PATH}" molecule test "$@" 2>&1 | tee "${log}"; then
  say "FAILED; the failed tasks (full log: ${log}):"
  grep -n -A30 -E '(fatal|failed): \[' "${log}" | tail -n 150 >&2 || true
  say "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), cgroup $(stat -fc %T /sys/fs/cgroup)"
  df -h / /var/lib/docker 2>/dev/null >&2 || true
  free -m >&2 || true
  cat /proc/swaps >&2 || true
  exit 1
fi
say "molecule passed after $(( $(date +%s) - start ))s"
# Tests that need this dockerd and image too (the cluster check-mode runs): run them while
# both are up instead of starting a second daemon. Space-separated pytest paths.
if [[ -n "${LLMOPS_DOCKER_PYTEST:-}" ]]; then
  say "pytest ${LLMOPS_DOCKER_PYTEST}"
  # shellcheck disable=SC2086  # word splitting is the point: several paths
  PATH="${bin}:${PATH}" python -m pytest -q ${LLMOPS_DOCKER_PYTEST}
fi
say "passed in $(( $(date +%s) - start ))s"
