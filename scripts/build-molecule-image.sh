#!/usr/bin/env bash
# Build the Debian 12 systemd image the Molecule scenario runs in, from debootstrap, because
# no container registry is reachable here (see docs/nodes.md). Nothing is pulled.
#
# The tag is keyed by a hash of this script, so editing the recipe builds a new image and an
# unchanged recipe reuses the cached one (`docker image inspect` finds it).
#
#   scripts/build-molecule-image.sh          build if missing, print the image tag
#   scripts/build-molecule-image.sh tag      print the tag only (no docker needed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
suite="bookworm"
mirror="${LLMOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Packages Ansible and systemd need in the instance; the roles install everything else.
include="python3,python3-apt,systemd,systemd-sysv,dbus,iproute2,kmod,procps,sudo,ca-certificates"

hash="$(sha256sum "${here}/build-molecule-image.sh" | cut -c1-12)"
tag="local/llmops-debian12-systemd:${hash}"

if [[ "${1:-}" == "tag" ]]; then
  echo "${tag}"
  exit 0
fi

if docker image inspect "${tag}" >/dev/null 2>&1; then
  echo "${tag}"
  exit 0
fi

command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }

work="$(mktemp -d /tmp/llmops-rootfs.XXXXXX)"
trap 'rm -rf "${work}"' EXIT
rootfs="${work}/rootfs"

echo "building ${tag} from debootstrap (${suite}, ${mirror})" >&2
debootstrap --variant=minbase --include="${include}" "${suite}" "${rootfs}" "${mirror}" >"${work}/debootstrap.log" 2>&1 || {
  tail -n 30 "${work}/debootstrap.log" >&2
  exit 1
}

# Same sources as a real Debian 12 host (updates + security) so package versions match.
cat >"${rootfs}/etc/apt/sources.list" <<EOF
deb ${mirror} ${suite} main
deb ${mirror} ${suite}-updates main
deb http://deb.debian.org/debian-security ${suite}-security main
EOF
# A container has no consoles or udev to wait for; these units only slow boot or fail.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
  systemd-udev-trigger.service systemd-remount-fs.service; do
  ln -sf /dev/null "${rootfs}/etc/systemd/system/${unit}"
done
# Keep the image small: drop the apt cache debootstrap left behind.
rm -rf "${rootfs}/var/cache/apt/archives/"*.deb "${rootfs}/var/lib/apt/lists/"*
# apt's cache_valid_time reads the lists directory's mtime: make the empty cache look stale.
touch -d @0 "${rootfs}/var/lib/apt/lists"

tar -C "${rootfs}" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' \
  -c 'ENV container=docker' \
  - "${tag}" >/dev/null
echo "${tag}"
