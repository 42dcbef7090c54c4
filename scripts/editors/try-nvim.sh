#!/usr/bin/env bash
# Open the real Neovim 0.12 with the fim-lsp plugin from editors/nvim and the server from .venv, on a
# sample Python file in a scratch directory, with a statusline that shows the server's state.
#
#   TRY_MODEL=qwen2.5-coder-0.5b scripts/editors/try-nvim.sh [FILE]
#   NVIM_VERSION=nvim-0.11 scripts/editors/try-nvim.sh     # the plugin's own ghost text
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
NVIM_VERSION="${NVIM_VERSION:-nvim-0.12}"
"$ROOT/scripts/install-editors.sh" "$NVIM_VERSION"
NVIM="$("$ROOT/scripts/install-editors.sh" path "$NVIM_VERSION")"
SERVER="$(cd "$(dirname "$VENV/bin/fim-lsp")" && pwd)/fim-lsp"
[[ -x "$SERVER" ]] || { echo "no $SERVER: run 'make setup' first" >&2; exit 1; }

file="${1:-}"
if [[ -z "$file" ]]; then
    dir="$(mktemp -d -t fim-lsp-try.XXXXXX)"
    file="$dir/shapes.py"
    cat >"$file" <<'PY'
"""Try fim-lsp: in insert mode, pause after typing and ghost text appears.

<Tab> accepts, <M-Right> accepts a word, <M-C-Right> a line, <M-]>/<M-[> cycle, <C-]> dismisses.
:FimLsp status, :checkhealth fim_lsp. The statusline shows the server's state and last latency.
"""

import math
from dataclasses import dataclass


@dataclass
class Circle:
    radius: float

    def area(self) -> float:
        return 

    def circumference(self) -> float:
        


def largest(circles: list[Circle]) -> Circle:
    """The circle with the largest area."""
    
PY
fi

settings="{}"
if [[ -n "${TRY_MODEL:-}" ]]; then
    settings="{ model = '${TRY_MODEL}' }"
fi
exec "$NVIM" --clean -n \
    --cmd "set rtp^=$ROOT/editors/nvim" \
    -c "lua require('fim_lsp').setup({ cmd = { '$SERVER', '--stdio' }, settings = $settings })" \
    -c "set laststatus=2 statusline=%f\ %m%=%{v:lua.require'fim_lsp'.statusline()}\ \ %l:%c" \
    "$file"
