# Editor integrations: the Neovim plugin (editors/nvim), the VS Code extension (editors/vscode), and
# the real editors their tests drive. Included by the top-level Makefile. Editors install once per
# machine into $(EDITORS_DIR) (outside the repository, so CI can cache it); see scripts/install-editors.sh.

EDITORS_INSTALL := scripts/install-editors.sh
EDITORS_DIR ?= $(or $(FIM_LSP_EDITORS_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/fim-lsp/editors)
export FIM_LSP_EDITORS_DIR := $(EDITORS_DIR)
# The model `make try-nvim` asks the server for (empty: the server's default).
TRY_MODEL ?=

.PHONY: editors-setup
editors-setup: setup editors-setup-nvim editors-setup-vscode ## install Neovim 0.12 and 0.11, code-server, chromium; pack the .vsix

.PHONY: editors-setup-nvim
editors-setup-nvim: setup
	VENV=$(VENV) $(EDITORS_INSTALL) nvim

.PHONY: editors-setup-vscode
editors-setup-vscode:
	$(EDITORS_INSTALL) vscode
	$(EDITORS_INSTALL) vsix

.PHONY: vsix
vsix: ## build and pack the VS Code extension: editors/vscode/fim-lsp.vsix
	$(EDITORS_INSTALL) vsix

.PHONY: lint-editors
lint-editors: ## type-check and lint the VS Code extension (tsc strict, eslint)
	cd editors/vscode && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent lint

.PHONY: test-editors
test-editors: test-model editors-setup ## the real-editor tests: Neovim 0.12/0.11 and VS Code, real model
	$(BIN)/python -m pytest tests/editors $(PYTEST_ARGS)

.PHONY: test-nvim
test-nvim: test-model editors-setup-nvim ## only the Neovim tests
	$(BIN)/python -m pytest tests/editors -k "nvim" $(PYTEST_ARGS)

.PHONY: test-vscode
test-vscode: test-model editors-setup-vscode ## only the VS Code tests (code-server in chromium)
	$(BIN)/python -m pytest tests/editors/test_editor_vscode.py $(PYTEST_ARGS)

.PHONY: try-nvim
try-nvim: setup editors-setup-nvim ## open Neovim 0.12 with the plugin on a sample file (TRY_MODEL=name)
	VENV=$(VENV) TRY_MODEL=$(TRY_MODEL) scripts/editors/try-nvim.sh
