--- Ghost text through Neovim's own vim.lsp.inline_completion (0.12+).
---
--- Neovim requests, draws (namespace `nvim.lsp.inline_completion`) and accepts; this module only
--- enables it per buffer and adds what it lacks: partial accepts, dismiss, and an explicit trigger.

local api = vim.api

local M = {}

---@return table vim.lsp.inline_completion
local function ic()
  return require('vim.lsp.inline_completion')
end

M.namespace = api.nvim_create_namespace('nvim.lsp.inline_completion')

---@param bufnr integer
function M.attach(bufnr)
  ic().enable(true, { bufnr = bufnr })
end

---@param bufnr integer
function M.detach(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    ic().enable(false, { bufnr = bufnr })
  end
end

---@param bufnr integer
---@return boolean
function M.attached(bufnr)
  return ic().is_enabled({ bufnr = bufnr })
end

--- The ghost text on screen (the first line of it), read back from Neovim's extmarks.
---@param bufnr integer
---@return string?
function M.visible_text(bufnr)
  local marks = api.nvim_buf_get_extmarks(bufnr, M.namespace, 0, -1, { details = true })
  for _, mark in ipairs(marks) do
    local chunks = mark[4].virt_text or {}
    local parts = {}
    for _, chunk in ipairs(chunks) do
      parts[#parts + 1] = chunk[1]
    end
    local first = table.concat(parts)
    local rest = {}
    for _, line in ipairs(mark[4].virt_lines or {}) do
      local p = {}
      for _, chunk in ipairs(line) do
        p[#p + 1] = chunk[1]
      end
      rest[#rest + 1] = table.concat(p)
    end
    if first ~= '' or #rest > 0 then
      return table.concat(vim.list_extend({ first }, rest), '\n')
    end
  end
  return nil
end

--- Insert all or part of the current suggestion.
---
--- Neovim's own accept replaces the item's range as it was when the answer came, so text typed
--- since (along the suggestion) would be doubled; this inserts what the buffer does not hold yet.
---@param bufnr integer
---@param part? fun(rest: string): string how much to take (nil: all of it)
---@return boolean accepted
function M.accept(bufnr, part)
  local text = require('fim_lsp.text')
  return ic().get({
    bufnr = bufnr,
    on_accept = function(item)
      local insert = text.plain(item.insert_text)
      local win = api.nvim_get_current_win()
      local cursor = api.nvim_win_get_cursor(win)
      local row, col = cursor[1] - 1, cursor[2]
      local stop_row, stop_col = row, col
      if item.range then
        local start, stop = item.range.start, item.range.end_
        local ok, typed = pcall(api.nvim_buf_get_text, bufnr, start.row, start.col, row, col, {})
        typed = ok and table.concat(typed, '\n') or ''
        if insert:sub(1, #typed) == typed then
          insert = insert:sub(#typed + 1)
        end
        if stop.row > row or (stop.row == row and stop.col > col) then
          stop_row, stop_col = stop.row, stop.col
        end
      end
      local chunk = part and part(insert) or insert
      local whole = #chunk == #insert
      if not whole then
        stop_row, stop_col = row, col
      end
      local lines = vim.split(chunk, '\n', { plain = true })
      api.nvim_buf_set_text(bufnr, row, col, stop_row, stop_col, lines)
      api.nvim_win_set_cursor(win, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
      if whole and item.command then
        local client = vim.lsp.get_client_by_id(item.client_id)
        if client then
          client:exec_cmd(item.command, { bufnr = bufnr })
        end
      end
    end,
  })
end

---@param bufnr integer
---@param count integer
function M.select(bufnr, count)
  ic().select({ bufnr = bufnr, count = count })
end

--- Hide the suggestion: disabling and re-enabling the buffer drops Neovim's state for it, and the
--- next keystroke asks again.
---@param bufnr integer
function M.dismiss(bufnr)
  if M.attached(bufnr) then
    ic().enable(false, { bufnr = bufnr })
    ic().enable(true, { bufnr = bufnr })
  end
end

--- Ask now. Neovim has no public call for it; its request is driven by its CursorMovedI autocmd
--- (debounced), so run that autocmd's group.
---@param bufnr integer
function M.request(bufnr)
  pcall(api.nvim_exec_autocmds, 'CursorMovedI', {
    group = ('nvim.lsp.inline_completion:%d'):format(bufnr),
    modeline = false,
  })
end

return M
