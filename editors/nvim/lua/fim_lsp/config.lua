--- The plugin's options: defaults, validation, and where the server command comes from.
---
--- Nothing here talks to the server. `setup()` hands its table to `merge`; every other module reads
--- the result through `get()`.

local M = {}

---@alias fim_lsp.GhostText
---| 'auto'    # Neovim's vim.lsp.inline_completion where it exists (0.12+), else the plugin's own
---| 'builtin' # always vim.lsp.inline_completion
---| 'plugin'  # always the plugin's own requests and extmarks

---@class fim_lsp.Config
---@field cmd? string[] The server command; nil finds `fim-lsp` on PATH, then `<root>/.venv/bin/fim-lsp`.
---@field settings table<string, any> Server settings, camelCase as `fim-lsp` documents them (e.g. `{ model = 'qwen2.5-coder-0.5b' }`); sent as initializationOptions and as the `fimLsp` section of workspace/didChangeConfiguration.
---@field filetypes? string[] Filetypes to start the server in; nil means every file buffer with a filetype.
---@field exclude_filetypes string[] Filetypes never completed (only consulted when `filetypes` is nil).
---@field root_markers string[] Files or directories that mark a project root (the server's workspace).
---@field ghost_text fim_lsp.GhostText Who draws the ghost text.
---@field debounce_ms integer Quiet time after a keystroke before the plugin's own ghost text asks the server.
---@field enabled boolean Whether completions start out enabled.

---@type fim_lsp.Config
M.defaults = {
  cmd = nil,
  settings = {},
  filetypes = nil,
  exclude_filetypes = {
    'help',
    'qf',
    'gitcommit',
    'gitrebase',
    'netrw',
    'checkhealth',
    'lspinfo',
    'TelescopePrompt',
  },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod', '.hg' },
  ghost_text = 'auto',
  debounce_ms = 150,
  enabled = true,
}

---@type fim_lsp.Config
local current = vim.deepcopy(M.defaults)

--- The options in force.
---@return fim_lsp.Config
function M.get()
  return current
end

--- Validate user options and merge them over the defaults (or over the options in force).
---@param opts? table
---@param base? fim_lsp.Config defaults to the built-in defaults
---@return fim_lsp.Config
function M.merge(opts, base)
  opts = opts or {}
  vim.validate('opts', opts, 'table')
  vim.validate('cmd', opts.cmd, 'table', true)
  vim.validate('settings', opts.settings, 'table', true)
  vim.validate('filetypes', opts.filetypes, 'table', true)
  vim.validate('exclude_filetypes', opts.exclude_filetypes, 'table', true)
  vim.validate('root_markers', opts.root_markers, 'table', true)
  vim.validate('ghost_text', opts.ghost_text, function(v)
    return v == nil or v == 'auto' or v == 'builtin' or v == 'plugin'
  end, "'auto', 'builtin' or 'plugin'")
  vim.validate('debounce_ms', opts.debounce_ms, 'number', true)
  vim.validate('enabled', opts.enabled, 'boolean', true)
  if opts.ghost_text == 'builtin' and not M.has_builtin() then
    error('fim_lsp: ghost_text = "builtin" needs vim.lsp.inline_completion (Neovim 0.12 or newer)')
  end
  local merged = vim.deepcopy(base or M.defaults)
  for key, value in pairs(opts) do
    if M.defaults[key] == nil and key ~= 'cmd' and key ~= 'filetypes' then
      error(('fim_lsp: unknown option %q'):format(key))
    end
    -- Lists and the settings table replace rather than merge: a user's list is the whole list.
    merged[key] = vim.deepcopy(value)
  end
  return merged
end

--- Put options in force.
---@param config fim_lsp.Config
function M.set(config)
  current = config
end

--- Whether this Neovim has vim.lsp.inline_completion (0.12+).
---@return boolean
function M.has_builtin()
  local ok, mod = pcall(require, 'vim.lsp.inline_completion')
  return ok and type(mod) == 'table' and mod.enable ~= nil
end

--- Whether ghost text is drawn by vim.lsp.inline_completion under the options in force.
---@return boolean
function M.uses_builtin()
  local mode = current.ghost_text
  return mode == 'builtin' or (mode == 'auto' and M.has_builtin())
end

--- The server command for a project root, and where it was found.
---
--- An explicit `cmd` wins. Otherwise `fim-lsp` on PATH, then the project's own `.venv` (the layout
--- `make setup` creates when the user works inside the fim-lsp repository or installed it there).
---@param root? string
---@return string[]? cmd nil when no server was found
---@return string where a human-readable account of the search
function M.resolve_cmd(root)
  if current.cmd then
    local exe = current.cmd[1]
    if exe and vim.fn.executable(exe) == 1 then
      return current.cmd, 'setup({ cmd }): ' .. vim.fn.exepath(exe)
    end
    return nil, ('setup({ cmd }) names %q, which is not executable'):format(tostring(exe))
  end
  if vim.fn.executable('fim-lsp') == 1 then
    return { vim.fn.exepath('fim-lsp'), '--stdio' }, 'PATH: ' .. vim.fn.exepath('fim-lsp')
  end
  local tried = { '`fim-lsp` on PATH' }
  for _, dir in ipairs({ root, vim.fn.getcwd() }) do
    if dir then
      local candidate = vim.fs.joinpath(dir, '.venv', 'bin', 'fim-lsp')
      if vim.fn.executable(candidate) == 1 then
        return { candidate, '--stdio' }, 'project venv: ' .. candidate
      end
      table.insert(tried, candidate)
    end
  end
  return nil, 'not found (looked for ' .. table.concat(vim.fn.uniq(tried), ', ') .. ')'
end

--- Whether the plugin should start the server for this buffer.
---@param bufnr integer
---@return boolean
function M.wants_buffer(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return false
  end
  local ft = vim.bo[bufnr].filetype
  if ft == '' then
    return false
  end
  if current.filetypes then
    return vim.tbl_contains(current.filetypes, ft)
  end
  return not vim.tbl_contains(current.exclude_filetypes, ft)
end

return M
