# Vigie — two commands: `make run` (start monitoring) and `make test` (everything is checked).
# Each target installs what it needs on a fresh Debian machine, idempotently.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vigie-installed
CONFIG ?= vigie.yaml

# Debian packages: what running needs, and what the tests and benchmarks need on top.
DEBS_RUN := chromium-headless-shell chromium ca-certificates fonts-dejavu-core
DEBS_TEST := $(DEBS_RUN) prometheus prometheus-alertmanager prometheus-blackbox-exporter \
	nginx-light postgresql poppler-utils iproute2 openssl docker-compose

.PHONY: run test demo bench lint typecheck pytest deps-run deps-test venv clean soak dashboards

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || scripts/ensure-debs.sh python3-venv
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

deps-run:
	@scripts/ensure-debs.sh $(DEBS_RUN)

deps-test:
	@scripts/ensure-debs.sh $(DEBS_TEST)

run: deps-run venv
	$(BIN)/vigie run --config $(CONFIG)

demo: deps-run venv
	$(BIN)/vigie demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

pytest: deps-test venv
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck pytest

# Each benchmark prints its figures and the ratio to its goal; none is a pass/fail test.
BENCHES := http_cpu browser ledger detection alert_latency export statuspage

bench: deps-test venv
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

bench-%: deps-test venv
	$(BIN)/python bench/$*.py

soak: deps-test venv
	VIGIE_SOAK=1 $(BIN)/pytest -q -p no:cacheprovider --timeout 7200 tests/reliability

dashboards: venv
	$(BIN)/python -m dashboards

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
