--- What the server last said about itself (`fimLsp/status`), and the plugin's own view of the client.
---
--- One record for the whole session: the plugin runs one server per project root, and they share a
--- model, so the most recent word from any of them is what the user wants to see.

local M = {}

---@alias fim_lsp.State
---| 'off'       # no server started (none needed yet, or completions disabled)
---| 'starting'  # process spawned, `initialize` not answered yet
---| 'loading'   # the server loads its model
---| 'ready'     # completions are served
---| 'error'     # the server reported an error (missing model, …)
---| 'missing'   # no server command found
---| 'stopped'   # the server exited unexpectedly

---@class fim_lsp.Status
---@field state fim_lsp.State
---@field message string Human-readable detail ('' when there is nothing to add).
---@field latency_ms? number The last completion's latency, when the server reported one.

---@type fim_lsp.Status
local current = { state = 'off', message = '' }

--- The current status (a copy).
---@return fim_lsp.Status
function M.get()
  return vim.deepcopy(current)
end

--- Record a new status, redraw statuslines, and fire `User FimLspStatus` for anyone listening.
---@param state fim_lsp.State
---@param message? string
---@param latency_ms? number keeps the last latency when nil
function M.set(state, message, latency_ms)
  current = {
    state = state,
    message = message or '',
    latency_ms = latency_ms or (state == current.state and current.latency_ms or nil),
  }
  vim.schedule(function()
    pcall(vim.cmd.redrawstatus, { bang = true })
    vim.api.nvim_exec_autocmds('User', { pattern = 'FimLspStatus', modeline = false, data = M.get() })
  end)
end

--- Handler for the server's `fimLsp/status` notification.
---@param params { state: string, message?: string, latencyMs?: number|vim.NIL }
function M.on_notification(params)
  if type(params) ~= 'table' then
    return
  end
  local state = params.state
  if state ~= 'loading' and state ~= 'ready' and state ~= 'error' then
    return
  end
  local latency = params.latencyMs
  M.set(state, type(params.message) == 'string' and params.message or '', type(latency) == 'number' and latency or nil)
end

--- A short string for a statusline: `fim-lsp ✓ 212ms`, `fim-lsp …`, `fim-lsp ✗`; '' when off.
---@return string
function M.statusline()
  local s = current
  if s.state == 'off' then
    return ''
  elseif s.state == 'ready' then
    return s.latency_ms and ('fim-lsp ✓ %dms'):format(s.latency_ms) or 'fim-lsp ✓'
  elseif s.state == 'loading' or s.state == 'starting' then
    return 'fim-lsp …'
  end
  return 'fim-lsp ✗'
end

return M
