# metaally: `make figures` regenerates every table and figure from data/; `make test` runs the tests.
# Both create .venv on a fresh clone (only Python 3.11 needed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all figures test lint bench clean validate

all: figures

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check metaally tests analyses benchmarks

validate: $(STAMP)
	$(PY) -m metaally validate data/table2.csv

figures: $(STAMP)
	$(PY) -m metaally validate data/table2.csv
	MPLBACKEND=Agg $(PY) analyses/effects_table.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
