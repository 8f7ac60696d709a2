# Thin front door. `make reproduce` and `make test` create the environment from the lock
# when it is missing or older than the pins, then run the workflow / the test suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= all
CONFIG ?= config/default.yaml

.PHONY: venv reproduce quick test test-fast lint lab figure lock clean-results

$(STAMP): requirements.txt requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -c requirements.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

reproduce: venv
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG)

quick: venv
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/quick.yaml

test: venv
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow and not workflow"

# ruff (rules in pyproject.toml) on the library, tests, scripts and notebooks; then
# snakemake --lint, failing on any lint scripts/lint_workflow.py does not accept with a reason.
lint: venv
	$(VENV)/bin/ruff check .
	$(PY) scripts/lint_workflow.py

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

# make figure NAME=distance_to_root  ->  results/figures/distance_to_root.pdf
figure: venv
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG) results/figures/$(NAME).pdf

lock: venv
	$(PY) -m pip freeze --exclude-editable | grep -v '^hyplib' > requirements.lock

clean-results:
	rm -rf results/data results/train results/eval results/figures results/tables results/notebooks results/propositions.json
