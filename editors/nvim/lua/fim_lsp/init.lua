--- fim-lsp for Neovim: offline fill-in-the-middle ghost text from the `fim-lsp` language server.
---
--- Works without `setup()` when `fim-lsp` is on PATH (plugin/fim_lsp.lua starts it per buffer).
--- `setup()` overrides the command, the server settings and the plugin's behaviour; see
--- `:help fim_lsp`.

local config = require('fim_lsp.config')

local api = vim.api

local M = {}

---@return integer
local function buf()
  return api.nvim_get_current_buf()
end

local function driver()
  return require('fim_lsp.client').driver()
end

--- Configure the plugin. Safe to call more than once: server settings changes reach running
--- servers through workspace/didChangeConfiguration; a changed `cmd` takes effect on `:FimLsp restart`.
---@param opts? fim_lsp.Config|table
function M.setup(opts)
  local old = config.get()
  local new = config.merge(opts, old)
  config.set(new)
  local client = require('fim_lsp.client')
  if not vim.deep_equal(old.settings, new.settings) then
    client.push_settings()
  end
  if old.enabled ~= new.enabled then
    M.enable(new.enabled)
  end
  -- Buffers opened before setup() (a lazily loaded plugin) get their server now.
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and #vim.lsp.get_clients({ bufnr = bufnr, name = client.name }) == 0 then
      client.attach(bufnr)
    end
  end
end

--- Start (or join) the server for a buffer. Called from the FileType autocmd.
---@param bufnr? integer
function M.attach(bufnr)
  require('fim_lsp.client').attach(bufnr or buf())
end

--- Turn ghost text on or off in every buffer the server serves.
---@param on boolean
function M.enable(on)
  local cfg = vim.deepcopy(config.get())
  cfg.enabled = on
  config.set(cfg)
  local client = require('fim_lsp.client')
  for _, c in ipairs(client.clients()) do
    for bufnr in pairs(c.attached_buffers) do
      if on then
        driver().attach(bufnr, c.id)
      else
        driver().detach(bufnr)
      end
    end
  end
  vim.notify(on and 'fim-lsp: completions on' or 'fim-lsp: completions off', vim.log.levels.INFO)
end

--- Flip ghost text on or off.
function M.toggle()
  M.enable(not config.get().enabled)
end

--- Whether a suggestion is on screen in the current buffer.
---@return boolean
function M.visible()
  return driver().visible_text(buf()) ~= nil
end

--- The suggestion's text at the cursor, or nil.
---@return string?
function M.suggestion()
  return driver().visible_text(buf())
end

--- Accept the whole suggestion.
---@return boolean accepted
function M.accept()
  return driver().accept(buf())
end

--- Accept the suggestion up to the end of the next word.
---@return boolean accepted
function M.accept_word()
  return driver().accept(buf(), require('fim_lsp.text').next_word)
end

--- Accept the suggestion up to the end of the current line (or the next line, at a line break).
---@return boolean accepted
function M.accept_line()
  return driver().accept(buf(), require('fim_lsp.text').next_line)
end

--- Show the next suggestion.
function M.next()
  driver().select(buf(), vim.v.count1)
end

--- Show the previous suggestion.
function M.prev()
  driver().select(buf(), -vim.v.count1)
end

--- Hide the suggestion until the next edit.
function M.dismiss()
  driver().dismiss(buf())
end

--- Ask for a suggestion at the cursor now.
function M.trigger()
  driver().request(buf(), 1)
end

--- Stop the servers and start them again (also clears a crash).
function M.restart()
  require('fim_lsp.client').restart()
end

--- The server's last reported status.
---@return fim_lsp.Status
function M.status()
  return require('fim_lsp.status').get()
end

--- What became of the suggestions, counted by the running servers in memory (never on disk): shown,
--- accepted whole, partly accepted, characters accepted. nil when no server answers.
---@return fim_lsp.Stats?
function M.stats()
  return require('fim_lsp.acceptance').stats()
end

--- A short statusline component, e.g. `fim-lsp ✓ 212ms`; '' when no server runs.
---@return string
function M.statusline()
  return require('fim_lsp.status').statusline()
end

return M
