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

# The embedded study end to end (Snakefile, local profile): its tables, figures, metrics.json
# and README.md in results/embedded/ (git-ignored), beside the committed results/camvid/, which it
# never touches (every path is per profile: cheeger/study/layout.py). params.yaml's `profile:` is
# the committed CamVid study; this chooses the embedded profile instead. Each job's torch threads
# are its rule's threads, bounded by the cores. Snakemake reruns what changed: job fingerprints
# (workflow/rules/common.smk) catch code and settings changes even in a fresh clone.
STUDY_PROFILE ?= embedded
study: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --workflow-profile workflow/profiles/local \
		--config profile=$(STUDY_PROFILE)

lint: $(STAMP)
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
