# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
# Each creates .venv if missing and installs the package into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A second virtualenv with TensorFlow's CPU build, so `make test` runs the backend test
# (tests/test_backends.py) under KERAS_BACKEND=tensorflow too. The version the benchmark's
# reference uses (benchmarks/bench.py).
TF_VENV ?= .venv-tf
TF_PACKAGE ?= tensorflow-cpu==2.21.0
# Optional: a Python with dnnlab's dependencies and torch (e.g. a virtualenv made by hand); when
# set, the backend test also runs under KERAS_BACKEND=torch, else it skips with the reason.
DNNLAB_TEST_TORCH_PYTHON ?=

.PHONY: run test install install-tf clean bench

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("dnnlab needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# Reinstall only when pyproject.toml changes (the package itself is installed editable).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

$(TF_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install --upgrade pip
	$(TF_VENV)/bin/python -m pip install -e . '$(TF_PACKAGE)'
	touch $@

install-tf: $(TF_VENV)/.installed

run: install
	$(BIN)/dnnlab exercise

# Style and layering first (seconds), then the tests.
test: install install-tf
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DNNLAB_TEST_TF_PYTHON=$(abspath $(TF_VENV))/bin/python DNNLAB_TEST_TORCH_PYTHON=$(DNNLAB_TEST_TORCH_PYTHON) \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

# dnnlab vs a TensorFlow-Keras reference (own virtualenv, made on first use), s/epoch per
# variant and batch size; writes runs/bench/bench.{json,md}. Took 68 min on the shared 2 cores.
bench: install
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TF_VENV) build src/*.egg-info .pytest_cache
