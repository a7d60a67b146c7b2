# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.medseglatdiff-installed
DEMO_OUT ?= demo_output

.PHONY: setup demo test lint wheel-check clean

setup: $(STAMP)

# torch is installed first and pinned, so nothing later pulls a CUDA build.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,deploy]"
	touch $(STAMP)

# The deploy extra's Holoscan asks for a 32 MB stack (it warns otherwise); raise it where the system allows.
STACK := ulimit -s 32768 2>/dev/null || true;

demo: $(STAMP)
	$(STACK) $(BIN)/python -m medseglatdiff.demo --out $(DEMO_OUT)

test: $(STAMP)
	$(STACK) $(BIN)/python -m pytest -q tests

# ruff (pyproject.toml): pyflakes, import order, line length 120 (lint and formatter).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The wheel in a fresh venv beside .venv: demo_data -> plan_and_preprocess -> train -> predict -> export, outside the clone.
wheel-check: $(STAMP)
	$(STACK) .ci/wheel_check $(BIN)/python

clean:
	rm -rf $(VENV) $(VENV)-wheel dist build $(DEMO_OUT) *.egg-info .pytest_cache
