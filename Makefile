# Unlearning Lab. `make lab` sets up and opens the course; `make test` sets up and runs the tests.
# Variables (override on the command line, e.g. `make lab PORT=8890`):
#   TORCH_SPEC     what `pip install` gets for torch, installed before the kit so pip never swaps
#                  it (default: the CPU build 2.13.0; see README "Running on a GPU")
#   KIT_MODE       fast | default | full, for `make lab` and `make course` (`make test` uses fast)
#   KIT_CACHE_DIR  where trained models are cached (default: .cache/ in this folder)
#   TEST_WORKERS   parallel pytest workers for `make test` (default: one per logical core, at most 4;
#                  each gets an equal share of the cores as KIT_THREADS unless you set it; 0: no workers)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
KIT_MODE ?= default
KIT_CACHE_DIR ?= $(CURDIR)/.cache
PORT ?= 8888
TEST_WORKERS ?= logical
export KIT_CACHE_DIR

# The stamp names the torch spec: change TORCH_SPEC (or pyproject.toml) and `make install` runs again.
STAMP := $(VENV)/.installed-$(shell printf '%s' '$(TORCH_SPEC)' | cksum | cut -d' ' -f1)

.PHONY: venv install lab test course bench clean distclean

venv install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	-$(PY) -m pip install --quiet --upgrade pip  # a newer pip is nice, not needed
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

lab: $(STAMP)
	KIT_MODE=$(KIT_MODE) KIT_PYTHON=$(PY) bin/lab --port=$(PORT)

test: $(STAMP)
	KIT_MODE=fast $(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses=4 --dist loadgroup

course: $(STAMP)
	KIT_MODE=$(KIT_MODE) $(PY) bin/run_notebooks --out build/notebooks

bench: $(STAMP)
	$(PY) bench/run.py

# Removes what runs make: executed notebooks, the repo's model cache (.cache/), test caches.
clean:
	rm -rf build .cache .pytest_cache *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +

# Also removes the virtual environment (the next `make lab` or `make test` builds it again).
distclean: clean
	rm -rf $(VENV)
