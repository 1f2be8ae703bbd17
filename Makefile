# The two commands of the README, and what they stand on.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STUDY  ?= runs/adding

.PHONY: setup study test lint bench clean

# One virtual environment with the package and its test extras (torch is the
# 2.13.0 CPU build; KERAS_BACKEND=jax is set where keras is imported).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

# The main job: the default study (GRU vs LSTM vs tanh RNN on the adding
# problem over a small hidden x length grid), then its report.
study: setup
	JAX_PLATFORMS=cpu $(BIN)/python scripts/sweep.py --config=experiments/adding.py --workdir=$(STUDY)
	$(BIN)/python scripts/report.py --workdir=$(STUDY)

test: setup
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check gru_jax scripts experiments tests

bench: setup
	$(BIN)/python scripts/bench.py --quick

clean:
	rm -rf $(VENV) runs
