# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
# Each creates .venv if missing and installs the package into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install clean bench

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("dnnlab needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# Reinstall only when pyproject.toml changes (the package itself is installed editable).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/dnnlab exercise

# Style and layering first (seconds), then the tests.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# dnnlab vs a TensorFlow-Keras reference (own virtualenv, made on first use), s/epoch per
# variant and batch size; writes runs/bench/bench.{json,md}. Took 68 min on the shared 2 cores.
bench: install
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
