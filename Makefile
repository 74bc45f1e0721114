# One command per chore. Everything runs from a project-local virtualenv (.venv).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit test-integration lint format clean bench docs

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole relay locally: Redis (embedded if REDIS_URL is unset), sandbox APIs, a worker, sample events.
run: $(STAMP)
	$(BIN)/relay dev

## Run every test (unit + integration). Starts its own Redis, sandbox and workers.
test: $(STAMP)
	$(BIN)/pytest

## The pure domain only (schemas, translators, classification, backoff): seconds, no Redis.
test-unit: $(STAMP)
	$(BIN)/pytest tests/tasks tests/config

## Everything that runs against real Redis, HTTP servers and worker processes.
test-integration: $(STAMP)
	$(BIN)/pytest --ignore=tests/tasks --ignore=tests/config

## ruff, mypy strict, and the house rules: no import cycle, imports that point the architecture's
## way, no function over 40 lines, no module over 300 (tools/check_structure.py).
lint: $(STAMP)
	$(BIN)/ruff check worker tasks tests bench tools
	$(BIN)/ruff format --check worker tasks tests bench tools
	$(BIN)/mypy
	$(BIN)/python tools/check_structure.py

format: $(STAMP)
	$(BIN)/ruff format worker tasks tests bench tools
	$(BIN)/ruff check --fix worker tasks tests bench tools

## Measure the relay beside this machine's ceilings (docs/performance.md): BENCH_EVENTS=N, BENCH_ARGS="--parked 100000".
bench: $(STAMP)
	$(BIN)/python -c 'import matplotlib' 2>/dev/null && test -x $(BIN)/py-spy || $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

## Build the documentation site strictly into build/site (`$(BIN)/mkdocs serve` to browse it).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .venv-releases build *.egg-info .pytest_cache .mypy_cache .ruff_cache
