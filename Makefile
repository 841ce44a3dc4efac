# Set-up and entry points. `make test` and `make study` do all set-up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint study clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# torch pinned first: the pin picks the local CPU build; a looser spec pulls a multi-GB CUDA build.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[test,study]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The embedded study end to end (Snakefile, local profile): tables, figures, metrics.json and
# README.md in results/. Each job's torch threads are its rule's threads, bounded by the cores.
# params.yaml's `profile:` is the committed CamVid study (results/, dvc.lock); this chooses the
# embedded profile instead and so rewrites results/'s report (`git checkout results` restores it).
STUDY_PROFILE ?= embedded
# --forcerun report: the committed report files are another profile's, and a fresh clone has no
# Snakemake metadata to tell; forcing the report makes Snakemake build every input it lacks.
study: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --workflow-profile workflow/profiles/local \
		--config profile=$(STUDY_PROFILE) --forcerun report

lint: $(STAMP)
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
