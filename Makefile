# The two commands of the README, and what they stand on.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STUDY  ?= runs/long_range

.PHONY: setup study test lint lean bench clean

# One virtual environment. `setup` (and `make study`) installs the package with the
# harness extra (what the study needs); `make test` and `make lint` add the test extra
# ([test]: the datasets and series extras, pytest, ruff, and torch 2.13.0 CPU and Keras
# for the parity tests; KERAS_BACKEND=jax is set where keras is imported).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[sweep]"
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/.installed

# The main job: the long-range study's reduced grid (the second protocol's length searches
# on the adding problem at the calibrated rates), two sweep workers at once (one per core)
# on its Optuna study ($(STUDY)/search/adding/study.db), then its report (figures,
# tables, runs.csv into $(STUDY)/search).
study: setup
	JAX_PLATFORMS=cpu $(BIN)/python scripts/sweep.py --workers=2 \
	  --config=experiments/long_range_search.py:adding:reduced --workdir=$(STUDY)/search/adding
	$(BIN)/python scripts/report.py --study=$(STUDY) --reduced

# Two test processes (pytest-xdist; at most 4 where there are more cores): most tests
# wait on compilation or on subprocesses, so the 2-core CI machine runs them 1.5x faster.
test: $(BIN)/.installed-test
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -n auto --maxprocesses=4 --dist worksteal

lint: $(BIN)/.installed-test
	$(BIN)/ruff check gru_jax scripts experiments tests

# `pip install .` in a fresh environment is the library alone (no harness dependencies).
lean:
	$(PYTHON) scripts/check_lean_install.py

bench: setup
	$(BIN)/python scripts/bench.py --quick

clean:
	rm -rf $(VENV) runs
