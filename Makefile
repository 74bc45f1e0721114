# One command per chore. Everything runs from a project-local virtualenv (.venv).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit test-integration lint format clean

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

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration

lint: $(STAMP)
	$(BIN)/ruff check worker tasks tests
	$(BIN)/ruff format --check worker tasks tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format worker tasks tests
	$(BIN)/ruff check --fix worker tasks tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
