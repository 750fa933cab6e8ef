# Every target creates .venv and installs the project into it first, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-quick soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

# Tests run in parallel (pytest-xdist); `make test PYTEST_WORKERS=0` runs them serially in one process.
# Four workers on two cores: the suite mostly waits (loopback servers, subprocesses), using ~1.2 cores at -n 4.
# loadgroup: tests spread one by one, except those marked xdist_group (a costly module fixture) stay together.
PYTEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot storage tests bench devkit
	$(BIN)/ruff format --check bot storage tests bench devkit

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
