#!/usr/bin/env bash
# Create (or reuse) a cached venv for this project, keyed by its lock file and interpreter.
#   scripts/venv.sh path   NAME   -> print the venv directory (no side effects)
#   scripts/venv.sh ensure NAME   -> build it if missing, then print the directory
#   scripts/venv.sh python NAME   -> print the interpreter the venv is (or would be) built with
#   scripts/venv.sh pythons NAME  -> print one interpreter per Python minor the venv accepts
# NAME is control (Python >= 3.12, ansible and the tools), serving (Python 3.11, vLLM CPU),
# finetune, mlflow, or scan (the policy scanner of the rendered Kubernetes objects).
# Venvs live under $LLMOPS_CACHE (default ~/.cache/llmops), outside the clone, so a fresh
# clone on the same machine reuses them; a changed lock file builds a new one.
# Every pin of a lock carries the sha256 of its files (scripts/lock_hashes.py) and is installed
# with `pip --require-hashes`: a file whose bytes differ from the lock's is refused.
# Offline (docs/offline.md): LLMOPS_PIP_FIND_LINKS=<mirror>/pypi/ (the offline mirror's wheel
# page, or a directory of wheels) installs from there only (pip --no-index --find-links);
# LLMOPS_PIP_INDEX_URL=<url> uses another package index instead of PyPI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${LLMOPS_CACHE:-$HOME/.cache/llmops}
action=${1:?usage: venv.sh path|ensure|python|pythons NAME}
name=${2:?usage: venv.sh path|ensure|python|pythons NAME}
lock="$here/requirements/$name.lock"
[ -f "$lock" ] || { echo "venv.sh: no lock file $lock" >&2; exit 2; }

# Candidates in order of preference: PATH first, then pyenv's installs.
candidates() {
  local minor=$1
  command -v "python3.$minor" 2>/dev/null || true
  if command -v pyenv >/dev/null 2>&1; then
    compgen -G "$(pyenv root)/versions/3.$minor.*/bin/python3" | sort -V -r || true
  fi
  compgen -G "$HOME/.pyenv/versions/3.$minor.*/bin/python3" | sort -V -r || true
  command -v python3 2>/dev/null || true
}

# Minors are tried in the order given: the first is the one the lock was resolved on.
find_python() {
  local minor cand
  for minor in "$@"; do
    for cand in $(candidates "$minor"); do
      if "$cand" -c "import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, $minor) else 1)" 2>/dev/null; then
        echo "$cand"; return 0
      fi
    done
  done
  return 1
}

# Interpreter minors per venv, in order of preference: the first is the one the lock was
# resolved on. scripts/lock.sh hashes each lock for the files every listed minor picks.
case "$name" in
  control) minors=(12 13); need="Python 3.12 or 3.13 for ansible-core 2.21 (install python3.12, or pyenv install 3.12)" ;;
  serving) minors=(11); need="Python 3.11 for the vLLM CPU venv (the CPU torch 2.13.0 wheel is cp311)" ;;
  finetune) minors=(11); need="Python 3.11 for the fine-tuning venv (the CPU torch 2.13.0 wheel is cp311)" ;;
  mlflow) minors=(11 12); need="Python 3.11 or 3.12 for the MLflow venv" ;;
  scan) minors=(12 13); need="Python 3.12 or 3.13 for the policy scanner's venv (its lock pins numpy 2.5, which needs 3.12)" ;;
  *) echo "venv.sh: unknown venv $name (control, serving, finetune, mlflow or scan)" >&2; exit 2 ;;
esac

if [ "$action" = pythons ]; then
  # One interpreter per available minor, preferred first (scripts/lock.sh).
  for minor in "${minors[@]}"; do find_python "$minor" || true; done
  exit 0
fi
python=$(find_python "${minors[@]}") || { echo "venv.sh: need $need" >&2; exit 3; }

# The key hashes the pins without their `--hash=sha256:` options (same-line ones, and
# pip-compile's `\` continuation lines): the hashes only restate which files the pins already
# name, so adding them (or a wheel's hash for another interpreter) keeps every cached venv,
# on CI too, instead of rebuilding them all. Any change of a pin or comment still rebuilds.
pins() {
  sed -E -e '/^[[:space:]]*--hash=/d' -e 's/[[:space:]]+--hash=[^[:space:]]+//g' -e 's/[[:space:]]*\\$//' "$lock"
}
key=$( { pins; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)
dir="$cache/venvs/$name-$key"

if [ "$action" = python ]; then echo "$python"; exit 0; fi
if [ "$action" = path ]; then echo "$dir"; exit 0; fi
[ "$action" = ensure ] || { echo "venv.sh: unknown action $action" >&2; exit 2; }
if [ -f "$dir/.complete" ]; then echo "$dir"; exit 0; fi

# Venvs are not relocatable, so build in place and mark completion last: a killed
# build leaves no marker and is rebuilt from scratch next time.
mkdir -p "$cache/venvs"
exec 9>"$cache/venvs/.$name.lock"
flock 9
if [ -f "$dir/.complete" ]; then echo "$dir"; exit 0; fi
rm -rf "$dir"
echo "venv.sh: building $name venv in $dir with $python (one-time; cached by lock hash)" >&2
start=$(date +%s)
"$python" -m venv "$dir"
pip=("$dir/bin/python" -m pip --disable-pip-version-check -q)
sources=()
if [ -n "${LLMOPS_PIP_FIND_LINKS:-}" ]; then
  sources=(--no-index --find-links "$LLMOPS_PIP_FIND_LINKS")
elif [ -n "${LLMOPS_PIP_INDEX_URL:-}" ]; then
  sources=(--index-url "$LLMOPS_PIP_INDEX_URL")
fi
# Hash-checking mode for every lock: pip installs only files whose sha256 the lock lists, and
# refuses a pin without one. --no-deps: the lock is the whole resolved set (pip check below).
if [ "$name" = serving ]; then
  # torch first and alone (its hashed pin, no dependencies: they are pinned in the lock too):
  # the CPU wheel on disk is the only file with the lock's hash; anything else pulls CUDA.
  torch_lock=$(mktemp)
  grep -E '^torch==' "$lock" > "$torch_lock"
  "${pip[@]}" install --no-deps "${sources[@]}" --require-hashes -r "$torch_lock" >&2
  rm -f "$torch_lock"
fi
"${pip[@]}" install --no-deps "${sources[@]}" --require-hashes -r "$lock" >&2
"${pip[@]}" check >&2 || echo "venv.sh: pip check reported issues (see above)" >&2
touch "$dir/.complete"
echo "venv.sh: $name venv ready in $(( $(date +%s) - start ))s" >&2
echo "$dir"
