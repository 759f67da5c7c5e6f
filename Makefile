# Two commands do all the set-up: `make run` (the default study) and `make test` (the suite).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= studies/quick.yaml

.PHONY: run test lint bench results clean clean-runs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	# torch first, pinned: a loose requirement can pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/rewardlab run $(CONFIG)

# the browser tests drive Debian's Chromium: installed here when it is missing
/usr/bin/chromium:
	scripts/install-browser

test: $(VENV)/.installed /usr/bin/chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks examples && $(BIN)/ruff format --check src tests benchmarks examples

# every committed results folder regenerated at this checkout (hours on 2 cores; one folder:
# `rewardlab reproduce docs/results/NAME`); hackability last: it reads the sweeps the others leave
results: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/rewardlab reproduce $(filter-out docs/results/hackability,$(patsubst %/,%,$(dir $(wildcard docs/results/*/provenance.json)))) docs/results/hackability

bench: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_training.py

# clean removes the environment only; clean-runs removes every run folder and the stage cache
clean:
	rm -rf $(VENV)

clean-runs:
	rm -rf runs
