# make test   -- set up .venv if missing (or pyproject.toml changed), then lint and run the tests
# make train  -- set up .venv likewise, then train on the embedded sample data
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# slow tests run with `make test-all`; gpu tests skip themselves without CUDA
PYTEST_ARGS ?= -m "not slow"

.PHONY: test test-all train lint bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest

train: $(STAMP)
	$(PY) train.py experiment=idc_srl_sample

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
