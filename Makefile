# metaally: `make figures` regenerates every table and figure from data/; `make test` runs the tests.
# Both create .venv on a fresh clone (only Python 3.11 needed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all figures test lint bench clean validate fuzz

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

# make figures: data/*.csv -> validate -> results/effects.csv -> pooled tables -> figures -> summary.
# Every output depends on the data and the package sources, so appending a study (or changing
# the code) regenerates exactly what it affects; the outputs are byte-stable.
DATA       := $(wildcard data/*.csv)
PACKAGE    := $(wildcard metaally/*.py metaally/*/*.py)
COMPONENTS := awareness authentic_motivation action_orientation all_inclusivity
EFFECTS    := results/effects.csv
POOLED     := results/pooled_by_component.csv results/component_differences.csv
FORESTS    := $(foreach f,forest_by_component forest_effects $(addprefix forest_,$(COMPONENTS)),\
                figures/$(f).png figures/$(f).svg)
FUNNEL     := figures/funnel.png figures/funnel.svg
TECHNIQUE  := results/pooled_by_technique.csv results/pooled_by_outcome_component.csv \
              results/technique_differences.csv
GAP_MAP    := figures/evidence_gap_map.png figures/evidence_gap_map.svg
FOREST_TECHNIQUE := figures/forest_by_technique.png figures/forest_by_technique.svg
SENSITIVITY := results/sensitivity.csv figures/sensitivity.png figures/sensitivity.svg
SMALL_STUDY := results/small_study.csv figures/funnel_trimfill.png figures/funnel_trimfill.svg
INFLUENCE  := results/leave_one_out.csv figures/cumulative.png figures/cumulative.svg
SUMMARY    := results/summary.md
PLOT       := MPLBACKEND=Agg $(PY)

figures: $(EFFECTS) $(POOLED) $(FORESTS) $(FUNNEL) $(SUMMARY)
figures: $(TECHNIQUE) $(GAP_MAP) $(FOREST_TECHNIQUE)
figures: $(SENSITIVITY)

$(EFFECTS): $(DATA) $(PACKAGE) analyses/effects_table.py | $(STAMP)
	$(PY) -m metaally validate data/table2.csv
	$(PY) analyses/effects_table.py

$(POOLED) &: $(EFFECTS) $(PACKAGE) analyses/pool_by_component.py | $(STAMP)
	$(PY) analyses/pool_by_component.py

$(FORESTS) &: $(EFFECTS) $(PACKAGE) analyses/forest_plots.py | $(STAMP)
	$(PLOT) analyses/forest_plots.py

$(FUNNEL) &: $(EFFECTS) $(PACKAGE) analyses/funnel_plot.py | $(STAMP)
	$(PLOT) analyses/funnel_plot.py

$(SUMMARY): $(POOLED) $(EFFECTS) $(PACKAGE) analyses/summary_report.py | $(STAMP)
	$(PY) analyses/summary_report.py

$(TECHNIQUE) &: $(EFFECTS) $(PACKAGE) analyses/pool_by_technique.py | $(STAMP)
	$(PY) analyses/pool_by_technique.py

$(GAP_MAP) &: $(EFFECTS) $(PACKAGE) analyses/evidence_gap_map.py | $(STAMP)
	$(PLOT) analyses/evidence_gap_map.py

$(FOREST_TECHNIQUE) &: $(EFFECTS) $(PACKAGE) analyses/forest_by_technique.py | $(STAMP)
	$(PLOT) analyses/forest_by_technique.py

$(SUMMARY): $(TECHNIQUE)

# recomputes the effects under each scenario from data/ (after $(EFFECTS) validated it)
$(SENSITIVITY) &: $(DATA) $(EFFECTS) $(PACKAGE) analyses/sensitivity.py | $(STAMP)
	$(PLOT) analyses/sensitivity.py

$(SUMMARY): $(SENSITIVITY)

figures: $(SMALL_STUDY) $(INFLUENCE)

$(SMALL_STUDY) &: $(EFFECTS) $(PACKAGE) analyses/small_study.py | $(STAMP)
	$(PLOT) analyses/small_study.py

# influence.py takes the analyses (overall, components with >= 3 studies) from small_study.py
$(INFLUENCE) &: $(EFFECTS) $(PACKAGE) analyses/influence.py analyses/small_study.py | $(STAMP)
	$(PLOT) analyses/influence.py

$(SUMMARY): $(SMALL_STUDY) $(INFLUENCE)

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# make fuzz: hypothesis mutations of data/table2.csv for METAALLY_FUZZ_SECONDS (default 30 min)
# on top of the fixed CI budget that `make test` runs; prints how many files were tried.
METAALLY_FUZZ_SECONDS ?= 1800
fuzz: $(STAMP)
	METAALLY_FUZZ_SECONDS=$(METAALLY_FUZZ_SECONDS) $(PY) -m pytest tests/test_fuzz_csv.py -q -s -p no:cacheprovider
