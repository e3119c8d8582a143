# Two commands for a fresh machine: `make demo` and `make test`. Both bootstrap what they
# need (cached venvs under $LLMOPS_CACHE, keyed by lock hash) before doing anything else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export LLMOPS_CACHE ?= $(HOME)/.cache/llmops
# Keep Ansible's own state (tmp, galaxy cache) in the checkout, not ~/.ansible.
export ANSIBLE_HOME := $(CURDIR)/.ansible
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

CONTROL_VENV = $(shell scripts/venv.sh path control)
BIN = $(CONTROL_VENV)/bin
PLAYBOOKS := site.yml $(wildcard playbooks/*.yml)

.PHONY: help bootstrap control serving scan-tools monitoring-tools test-deps demo test lint unit integration molecule clean lock bench-scripts dashboard

help:
	@echo "make demo   - bootstrap, then ansible-playbook site.yml on the local inventory"
	@echo "make test   - bootstrap, then lint + unit + integration tests"
	@echo "make lint   - yamllint, ansible-lint (production), syntax-check, ruff, ansible-test sanity"
	@echo "make clean  - stop what the demo started, remove reports (caches stay)"
	@echo "make dashboard - Streamlit comparison dashboard over reports/compare (127.0.0.1:8501)"
	@echo "make bench-scripts - the measured comparisons in bench/ (minutes; prints ratios)"

control:
	@scripts/venv.sh ensure control >/dev/null
	@$(BIN)/ansible-galaxy collection install -r collections/requirements.yml >/dev/null

serving:
	@scripts/venv.sh ensure serving >/dev/null

# The policy scanner (checkov, pinned in requirements/scan.lock) in its own cached venv:
# tests/render/test_policy_scan.py runs it over every rendered Kubernetes object.
scan-tools:
	@scripts/venv.sh ensure scan >/dev/null

# Debian's prometheus (promtool) and prometheus-alertmanager at the pinned revisions: the rule
# tests and the local monitoring target need them (apt-get; a no-op once installed).
monitoring-tools:
	@scripts/install-monitoring-packages.sh

bootstrap: control serving

# Debian packages the tests need beyond the venvs (chromium for the browser tests).
test-deps:
	@scripts/test-deps.sh

demo: bootstrap
	@start=$$(date +%s); \
	PATH="$(BIN):$$PATH" ansible-playbook site.yml; \
	echo; echo "== llmops demo finished in $$(( $$(date +%s) - start ))s"; \
	$(BIN)/python scripts/print_endpoints.py

lint: control
	PATH="$(BIN):$$PATH" yamllint -s .
	PATH="$(BIN):$$PATH" ansible-lint --offline --profile production
	@for pb in $(PLAYBOOKS); do \
	  PATH="$(BIN):$$PATH" ansible-playbook --syntax-check "$$pb" >/dev/null || exit 1; \
	  echo "syntax ok: $$pb"; \
	done
	$(BIN)/ruff check .
	scripts/sanity.sh

unit: control monitoring-tools scan-tools
	PATH="$(BIN):$$PATH" python -m pytest tests/unit tests/render -q --durations=15

# The cluster check-mode tests need dockerd and the Molecule image: `make molecule` runs them.
DOCKER_TESTS := tests/integration/test_cluster_check_mode.py

integration: bootstrap monitoring-tools test-deps
	PATH="$(BIN):$$PATH" python -m pytest tests/integration -q -x --durations=15 --ignore=$(DOCKER_TESTS)

# Host roles in Debian 12 systemd containers (installs docker.io/debootstrap, starts dockerd,
# builds the image once): converge, idempotence, verify; then the cluster check-mode tests
# against the same daemon and image. Needs root, as on CI.
molecule: control
	LLMOPS_DOCKER_PYTEST="$(DOCKER_TESTS)" scripts/molecule-test.sh

test: bootstrap scan-tools monitoring-tools lint unit integration molecule

clean: control
	-PATH="$(BIN):$$PATH" ansible-playbook playbooks/teardown.yml
	rm -rf reports .ansible .pytest_cache

# The baseline-vs-managed dashboard (docs/compare.md) over what playbooks/compare.yml wrote.
dashboard: control
	scripts/llmops dashboard --dir reports/compare

# Re-resolve the lock files from requirements/*.in (needs the package registry), every pin
# with the sha256 of its files: scripts/venv.sh installs them with --require-hashes.
lock:
	scripts/lock.sh control
	scripts/lock.sh serving
	scripts/lock.sh finetune
	scripts/lock.sh mlflow
	scripts/lock.sh scan

# Performance claims live here, measured side by side in one run (docs/benchmark.md).
bench-scripts: bootstrap
	PYTHONPATH=.collections $(BIN)/python bench/client_overhead.py
	PYTHONPATH=.collections $(BIN)/python bench/schedule_fidelity.py
	PYTHONPATH=.collections $(BIN)/python bench/server_agreement.py
	PYTHONPATH=.collections $(BIN)/python bench/router_overhead.py --vllm-router-venv $(LLMOPS_CACHE)/venvs/vllm-router
	PYTHONPATH=.collections $(BIN)/python bench/tuner_efficiency.py
