# fim-lsp: `make run` to see it complete code, `make test` to run every test. `make help` lists the rest.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama.cpp backend: auto (CUDA when an NVIDIA GPU and nvcc are present), cpu or cuda.
LLAMA_BACKEND ?= auto
# The shipped models, installed so that the default (`auto`) can choose the one that fits this machine;
# MODEL names one for `make run` and `make doctor` instead. The small one is what the end-to-end tests use.
MODELS ?= qwen2.5-coder-1.5b qwen2.5-coder-0.5b
MODEL ?=
TEST_MODEL ?= qwen2.5-coder-0.5b
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp: rebuilt when the dependencies or the llama.cpp install script change.
$(VENV)/.installed: $(BIN)/python pyproject.toml scripts/install-llama.sh
	bash scripts/install-llama.sh $(BIN)/python $(LLAMA_BACKEND)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

.PHONY: setup
setup: $(VENV)/.installed ## create .venv and install fim-lsp with llama.cpp (built once per machine)

.PHONY: model
model: setup ## install and verify the shipped models (MODELS=names for others)
	for name in $(MODELS) $(MODEL); do \
		$(BIN)/python -m pip install --quiet $$($(BIN)/fim-lsp models requirements $$name) && \
		$(BIN)/fim-lsp models install $$name || exit 1; \
	done

.PHONY: test-model
test-model: setup
	$(BIN)/python -m pip install --quiet $$($(BIN)/fim-lsp models requirements $(TEST_MODEL))
	$(BIN)/fim-lsp models install $(TEST_MODEL)

.PHONY: run
run: model ## set up, then complete sample files through the real LSP protocol
	$(BIN)/fim-lsp demo $(if $(MODEL),--model $(MODEL))

.PHONY: test
test: model test-model editors-setup warmup-setup ## set up, then run every test (real models, real editors and the warm-up included)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: setup ## only the fast unit tests
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: lint
lint: setup ## ruff and mypy
	$(BIN)/ruff check fim_lsp tests
	$(BIN)/ruff format --check fim_lsp tests
	$(BIN)/mypy fim_lsp

.PHONY: doctor
doctor: setup ## check the set-up
	$(BIN)/fim-lsp doctor $(if $(MODEL),--model $(MODEL))

.PHONY: bench
bench: model test-model ## completion quality on HumanEval-infilling (shipped); BENCH_DIR=folder adds SantaCoder-FIM
	$(BIN)/fim-lsp bench quality $${BENCH_DIR} --limit $${BENCH_LIMIT:-40} \
		$(foreach name,$(MODELS),--model $(name))

.PHONY: clean
clean: ## remove .venv and caches (the model cache in ~/.cache/fim-lsp stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

-include mk/*.mk
