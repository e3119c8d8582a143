#!/usr/bin/env bash
# `ansible-test sanity` for this collection with the control venv's ansible-core, on a machine
# that reaches PyPI but not Ansible's CI file server.
#   scripts/sanity.sh [ansible-test sanity options, e.g. --test pylint]
# ansible-test needs the collection at .../ansible_collections/llmops/platform as a real
# directory (a symlinked checkout is refused), so the checkout's files (tracked and new, not
# ignored) are copied into a temporary tree. Its per-test venvs (--venv: pinned by
# ansible-test itself, installed from PyPI once) live under $LLMOPS_CACHE/ansible-test, with
# a get-pip stand-in (scripts/ansible_test_get_pip.py) where ansible-test looks for its cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${LLMOPS_CACHE:-$HOME/.cache/llmops}
venv=$("$here/scripts/venv.sh" ensure control)
python="$venv/bin/python"

# ansible-test keeps venvs and the get-pip cache under ~/.ansible/test; give it its own HOME.
test_home="$cache/ansible-test"
pip_version=$("$python" -c 'import types; from ansible_test._internal.python_requirements import get_venv_packages; print(get_venv_packages(types.SimpleNamespace(version="3.12"))["pip"])')
mkdir -p "$test_home/.ansible/test/cache"
cp "$here/scripts/ansible_test_get_pip.py" "$test_home/.ansible/test/cache/get_pip_${pip_version//./_}.py"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/llmops/platform"
mkdir -p "$dest"
# .collections is the checkout's symlink back to itself: not part of the collection.
(cd "$here" && git ls-files -z --cached --others --exclude-standard \
  | grep -zv '^\.collections/' \
  | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -C "$dest" -xf -

# Every test runs, on the Ansible content: plugins/, roles/, playbooks, meta/, changelogs/,
# scripts/ (shellcheck) and the YAML around them. Left out, with the reason:
#   apps/   the router, gateway and dashboard: standalone services (aiohttp and
#           Streamlit) deployed by the roles, not Ansible plugins;
#   bench/  the measured comparisons (scripts run by `make bench-scripts`);
#   tests/  the pytest suite (not ansible-test's units/integration layout).
# ansible-test would hold them to ansible-core's plugin rules (module.log instead of print, no
# `_` names, ...); ruff lints all Python, yamllint and ansible-lint all YAML.
cd "$dest"
HOME="$test_home" PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" sanity --venv --python 3.12 \
  --color no --exclude apps/ --exclude bench/ --exclude tests/ "$@"
