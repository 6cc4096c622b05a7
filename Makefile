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

# One OpenMP thread per test worker: two workers with a pool of two threads each oversubscribe the
# two cores (OpenCV and torch calls then wait on spinning threads; the suite took 8 min instead of 2.5).
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 tests

demo: setup
	$(VENV)/bin/scene4d demo --out outputs/demo

lint: setup
	$(VENV)/bin/ruff check scene4d tests benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache
