# sagabank developer entry points. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit evaluate serve test-docker bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) repository_after/client.py

serve: $(STAMP)
	$(VENV)/bin/sagabank serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest

evaluate: $(STAMP)
	$(PY) evaluation.py

test: lint typecheck unit evaluate

test-docker: $(STAMP)
	bash scripts/verify-docker.sh

clean:
	rm -rf $(VENV) data evaluation .pytest_cache .mypy_cache .ruff_cache
