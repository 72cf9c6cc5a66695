PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench soak clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/inference-gateway up --config examples/local

test: $(STAMP)
	$(BIN)/pytest -n 2 -q --durations=15 -m 'not slow and not serial'
	$(BIN)/pytest -q -m 'serial and not slow'

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pytest -m slow -q tests/bench || true
	$(BIN)/inference-gateway bench run --config bench/seed.yaml

soak: $(STAMP)
	$(BIN)/pytest -m slow -q tests -k soak

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
