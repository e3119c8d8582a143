#!/usr/bin/env bash
# Install Debian's prometheus (with promtool) and prometheus-alertmanager (with amtool) at the
# revisions pinned in roles/platform_defaults/defaults/main/versions.yml, for `make test`
# (promtool rule tests, the local monitoring target). The monitoring role installs the same
# pins itself on the local target; this is the bootstrap for tests that run before any play.
# No-op when the pinned revisions are installed. Their init scripts are never started
# (policy-rc.d refuses): the platform runs the binaries as its own supervised processes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
versions="${root}/roles/platform_defaults/defaults/main/versions.yml"
pin() { sed -n "s/^  $1: \"\(.*\)\"$/\1/p" "${versions}"; }

want=()
for package in prometheus prometheus-alertmanager; do
  key="${package//-/_}_debian"
  version="$(pin "${key}")"
  sha256="$(pin "${key}_sha256")"
  [[ -n "${version}" && -n "${sha256}" ]] || { echo "install-monitoring-packages: ${key}(_sha256) missing in ${versions}" >&2; exit 2; }
  installed="$(dpkg-query -W -f='${Version}' "${package}" 2>/dev/null || true)"
  [[ "${installed}" == "${version}" ]] && continue
  want+=("${package}=${version}|${sha256}")
done
((${#want[@]})) || exit 0

if [[ "$(id -u)" != 0 ]]; then
  echo "install-monitoring-packages: need root to apt-get install ${want[*]%%|*}; run it as root" >&2
  exit 3
fi
apt-get update -qq
for item in "${want[@]}"; do
  spec="${item%%|*}"; sha256="${item##*|}"
  # The archive's signed index must list the pinned file, or the pin is stale.
  listed="$(apt-cache show "${spec}" 2>/dev/null | sed -n 's/^SHA256: //p' | head -n1)"
  if [[ "${listed}" != "${sha256}" ]]; then
    echo "install-monitoring-packages: ${spec} has sha256 '${listed:-none}' in the archive, versions.yml pins ${sha256}; update versions.yml" >&2
    exit 4
  fi
done
policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ ! -e "${policy}" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"${policy}" && chmod 755 "${policy}" && made_policy=1
fi
trap '[[ -n "${made_policy}" ]] && rm -f "${policy}"' EXIT
echo "== install-monitoring-packages: apt-get install ${want[*]%%|*}" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]%%|*}" >/dev/null
