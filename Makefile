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
	$(BIN)/pytest -q -m 'serial and not slow'
	$(BIN)/pytest -n 2 -q --durations=15 -m 'not slow and not serial'

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Full benchmark runs (~50 min on 2 cores); results in bench/results, tables and plots in
# docs/benchmarks.md and docs/img. `make test` runs a seconds-long smoke of each scenario.
BENCH_SCENARIOS := seed l4 knee overhead select-profile shared-prefix multi-lora criticality priority dcgm long-prompt

bench: $(STAMP)
	$(BIN)/inference-gateway bench run $(foreach s,$(BENCH_SCENARIOS),--config bench/$(s).yaml)

soak: $(STAMP)
	$(BIN)/pytest -m slow -q tests -k soak

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
