#!/usr/bin/env bash
# Debian packages the tests need that no venv provides, installed when missing (root, as on
# CI; scripts/molecule-test.sh installs docker.io the same way):
#   chromium - the browser tests (the comparison dashboard and the gateway's chat page, driven
#              headless through the DevTools protocol by apps/dashboard/screenshot.py; no
#              chromium-driver/WebDriver is involved).
# With CI=true a test that would skip for a missing prerequisite fails (tests/conftest.py), so
# everything a test needs must be installed here or by the venvs.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
((${#missing[@]})) || exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: the tests need ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "== test-deps: installing ${missing[*]} (apt)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
