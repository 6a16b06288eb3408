# Two entry points (see README): `make run` and `make test`.  Both set up what is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export OMPI_ALLOW_RUN_AS_ROOT ?= 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM ?= 1
export OMPI_MCA_rmaps_base_oversubscribe ?= 1
NP ?= 2
OUT ?= out/run

.PHONY: setup run test test-serial clean

setup:
	@bash scripts/setup.sh

run: setup
	@NP=$(NP) bash scripts/run.sh --out $(OUT)

test: setup
	@bash scripts/test.sh

clean:
	rm -rf $(VENV) out build .pytest_cache
