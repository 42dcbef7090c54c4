# Repository warm-up (fim_lsp/warmup): a LoRA adapter of the model trained on FIM tasks cut from code.
# Training needs torch, transformers, peft and gguf: the optional extra `fim-lsp[warmup]`, installed into
# .venv by these targets only (the server's own install stays without them). Included by the Makefile.

# Permissively licensed packages installed in .venv that `make warmup` trains on (MIT, MIT, BSD-3,
# BSD-3). Never httpx, starlette or pygls (held-out evaluation repositories), HumanEval or SantaCoder-FIM.
WARMUP_PACKAGES ?= rich urllib3 click uvicorn
WARMUP_STEPS ?= 120
WARMUP_THREADS ?= 1
WARMUP_ARGS ?=

$(VENV)/.warmup-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,warmup]'
	touch $@

.PHONY: warmup-setup
warmup-setup: $(VENV)/.warmup-installed ## install the warm-up's training dependencies (torch CPU wheel, transformers, peft, gguf) into .venv

.PHONY: warmup
warmup: warmup-setup test-model ## warm the 0.5B up on installed packages (rich, urllib3, click, uvicorn); adapter in ~/.cache/fim-lsp/adapters
	$(BIN)/fim-lsp warmup $$($(BIN)/python -c "import importlib.util, os, sys; \
		print(' '.join(os.path.dirname(importlib.util.find_spec(n).origin) for n in sys.argv[1:]))" $(WARMUP_PACKAGES)) \
		--model $(TEST_MODEL) --steps $(WARMUP_STEPS) --threads $(WARMUP_THREADS) \
		--output $$($(BIN)/python -c "from fim_lsp.warmup.adapters import adapters_dir; \
		print(adapters_dir() / '$(TEST_MODEL)-general.gguf')") $(WARMUP_ARGS)

.PHONY: test-warmup
test-warmup: warmup-setup test-model ## the warm-up's tests: tiny model through data, training, export, llama.cpp
	$(BIN)/python -m pytest tests/warmup tests/unit/test_warmup.py $(PYTEST_ARGS)
