# One-command set-up: `make demo` and `make test` both install into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint clean

setup: $(STAMP)

# torch is pinned and installed first: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -n 2 tests

demo: setup
	$(VENV)/bin/scene4d demo --out outputs/demo

lint: setup
	$(VENV)/bin/ruff check scene4d tests benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache
