# metaally: `make figures` regenerates every table and figure from data/; `make test` runs the tests.
# Both create .venv on a fresh clone (only Python 3.11 needed).  Works with GNU Make 3.81 and 4.x:
# a script with several outputs records its run in a stamp file (.make/<script>), and each output
# depends on that stamp (no grouped targets, which need Make >= 4.3).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    := MPLBACKEND=Agg $(PY)
S      := .make

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

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run.py

# make fuzz: hypothesis mutations of data/table2.csv for METAALLY_FUZZ_SECONDS (default 30 min)
# on top of the fixed CI budget that `make test` runs; prints how many files were tried.
METAALLY_FUZZ_SECONDS ?= 1800
fuzz: $(STAMP)
	METAALLY_FUZZ_SECONDS=$(METAALLY_FUZZ_SECONDS) $(PY) -m pytest tests/test_fuzz_csv.py -q -s \
	  -p no:cacheprovider

clean:
	rm -rf $(VENV) $(S) build dist *.egg-info .pytest_cache .hypothesis .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# --- make figures -----------------------------------------------------------------------------
# data/table2.csv + data/vocabulary.csv -> validate -> results/effects.csv -> pooled tables ->
# figures -> results/summary.md -> results/changes.md.  Each script's stamp depends on the script,
# the files it reads and the package sources; the outputs are byte-stable, so appending a study
# regenerates exactly what it affects and shows up as a reviewable diff.
DATA        := data/table2.csv data/vocabulary.csv
PACKAGE     := $(wildcard metaally/*.py metaally/*/*.py metaally/allyship/*.csv)
EFFECTS     := results/effects.csv
# the components declared in the vocabulary: one forest plot each
COMPONENTS  := $(shell $(PYTHON) -c "import csv; print(' '.join(r['word'] for r in csv.DictReader(open('data/vocabulary.csv')) if r['column'] == 'components'))")

OUT_pool_by_component   := results/pooled_by_component.csv results/component_differences.csv
OUT_pool_by_technique   := results/pooled_by_technique.csv results/pooled_by_outcome_component.csv \
                           results/technique_differences.csv
OUT_forest_plots        := $(foreach f,forest_by_component forest_effects \
                             $(addprefix forest_,$(COMPONENTS)),figures/$(f).png figures/$(f).svg)
# paginated (forest_by_technique-1.png, -2.png …): the PDF holding every page stands for them
OUT_forest_by_technique := figures/forest_by_technique.pdf
OUT_funnel_plot         := figures/funnel.png figures/funnel.svg
OUT_evidence_gap_map    := figures/evidence_gap_map.png figures/evidence_gap_map.svg
OUT_sensitivity         := results/sensitivity.csv figures/sensitivity.png figures/sensitivity.svg
OUT_small_study         := results/small_study.csv figures/funnel_trimfill.png \
                           figures/funnel_trimfill.svg
OUT_influence           := results/leave_one_out.csv figures/cumulative.png figures/cumulative.svg
OUT_network             := results/network_coef.csv results/network_pscores.csv \
                           results/network_league.csv \
                           $(foreach f,network_graph network_league network_forest network_ranking,\
                             figures/$(f).png figures/$(f).svg)
OUT_planning            := results/studies_needed.csv results/coverage_small_k.csv
OUT_publication_bias    := results/publication_bias.csv figures/selection_function.png \
                           figures/selection_function.svg
OUT_bayes_by_component  := results/bayes_by_component.csv results/bayes_prior_sensitivity.csv \
                           figures/forest_bayes.png figures/forest_bayes.svg
OUT_summary_of_findings := results/summary_of_findings.csv
OUT_summary_report      := results/summary.md
OUT_report_html         := results/report.html
OUT_changes             := results/changes.md

# scripts reading only results/effects.csv (their stamp: script + effects + package)
FROM_EFFECTS := pool_by_component pool_by_technique forest_plots forest_by_technique funnel_plot \
                evidence_gap_map small_study influence planning bayes_by_component \
                summary_of_findings publication_bias
SCRIPTS      := effects_table $(FROM_EFFECTS) sensitivity network summary_report report_html changes

figures: $(EFFECTS) $(foreach s,$(SCRIPTS),$(OUT_$(s)))

$(S)/effects_table: analyses/effects_table.py $(DATA) $(PACKAGE) | $(STAMP)
	$(PY) -m metaally validate data/table2.csv
	$(RUN) analyses/effects_table.py
	@mkdir -p $(S) && touch $@

$(foreach s,$(FROM_EFFECTS),$(S)/$(s)): $(S)/%: analyses/%.py $(EFFECTS) $(PACKAGE) | $(STAMP)
	$(RUN) analyses/$*.py
	@mkdir -p $(S) && touch $@

# recomputes the effects under each scenario from data/ (after effects_table validated it)
$(S)/sensitivity: analyses/sensitivity.py $(DATA) $(EFFECTS) $(PACKAGE) | $(STAMP)
	$(RUN) analyses/sensitivity.py
	@mkdir -p $(S) && touch $@

# the network reads comparator_technique from data/ beside the effects
$(S)/network: analyses/network.py $(DATA) $(EFFECTS) $(PACKAGE) | $(STAMP)
	$(RUN) analyses/network.py
	@mkdir -p $(S) && touch $@

SUMMARY_READS := $(EFFECTS) $(OUT_pool_by_component) $(OUT_pool_by_technique) \
                 results/sensitivity.csv results/small_study.csv results/leave_one_out.csv \
                 $(OUT_network) $(OUT_planning) $(OUT_bayes_by_component) \
                 $(OUT_summary_of_findings) $(OUT_publication_bias)
$(S)/summary_report: analyses/summary_report.py $(SUMMARY_READS) $(PACKAGE) | $(STAMP)
	$(RUN) analyses/summary_report.py
	@mkdir -p $(S) && touch $@

# results/report.html embeds every table and figure: it is written after all of them
HTML_READS := $(EFFECTS) $(foreach s,$(FROM_EFFECTS) sensitivity network summary_report,$(OUT_$(s)))
$(S)/report_html: analyses/report_html.py $(HTML_READS) $(PACKAGE) | $(STAMP)
	$(RUN) analyses/report_html.py
	@mkdir -p $(S) && touch $@

# compares the new results with the committed ones (git HEAD), so it runs on every `make figures`
CHANGES_READS := $(EFFECTS) $(OUT_pool_by_component) $(OUT_pool_by_technique)
$(S)/changes: analyses/changes.py $(CHANGES_READS) $(PACKAGE) FORCE | $(STAMP)
	$(RUN) analyses/changes.py
	@mkdir -p $(S) && touch $@

# an output depends on its script's stamp; a deleted output re-runs the script (GNU Make manual,
# "Handling Tools that Produce Many Outputs")
$(EFFECTS): $(S)/effects_table
	@test -f $@ || { rm -f $<; $(MAKE) $<; }
define outputs
$(OUT_$(1)): $(S)/$(1)
	@test -f $$@ || { rm -f $$<; $$(MAKE) $$<; }
endef
$(foreach s,$(FROM_EFFECTS) sensitivity network summary_report report_html changes,\
  $(eval $(call outputs,$(s))))

FORCE:
