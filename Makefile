# `make demo` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Local MovieLens copies (../shared/data here); otherwise datasets are downloaded into the cache.
export RECFUNNEL_DATA_DIR ?= $(abspath $(wildcard ../shared/data))

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/recfunnel demo

test: setup
	$(BIN)/pytest

clean:
	rm -rf $(VENV) artifacts .pytest_cache
