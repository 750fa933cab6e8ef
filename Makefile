# Every target creates .venv and installs the project into it first, so a fresh clone needs only Python 3.11+.
# The first interpreter that runs and is 3.11+ (pyenv reads .python-version, 3.12; a machine without it falls back).
PYTHON ?= $(shell for p in python3 python3.12 python3.11 /usr/bin/python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint lock bench bench-quick soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Dependencies from the lockfile, each checked against its hash; then the project itself, editable, without deps.
$(STAMP): $(BIN)/python pyproject.toml requirements-dev.lock
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-pin requirements.lock (what the image installs) and requirements-dev.lock (what make and CI install) from
# pyproject.toml, with hashes, for every platform and Python 3.11+. Needs uv (`pip install uv`).
UV ?= uv
lock:
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --upgrade \
		--custom-compile-command "make lock" -o requirements.lock -q
	$(UV) pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes --upgrade \
		--custom-compile-command "make lock" -o requirements-dev.lock -q

run: $(STAMP)
	$(BIN)/python -m bot run

# Tests run in parallel (pytest-xdist); `make test PYTEST_WORKERS=0` runs them serially in one process.
# Four workers on two cores: the suite mostly waits (loopback servers, subprocesses), using ~1.2 cores at -n 4.
# loadgroup: tests spread one by one, except those marked xdist_group (a costly module fixture) stay together.
# Property tests try a quarter of their examples here (tests/budgets.py); `make test HYPOTHESIS_BUDGET=full` all.
PYTEST_WORKERS ?= 4
HYPOTHESIS_BUDGET ?= quick
test: $(STAMP)
	HYPOTHESIS_BUDGET=$(HYPOTHESIS_BUDGET) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot storage tests bench devkit
	$(BIN)/ruff format --check bot storage tests bench devkit
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache
