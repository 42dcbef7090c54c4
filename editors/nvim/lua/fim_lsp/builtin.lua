--- Ghost text through Neovim's own vim.lsp.inline_completion (0.12+).
---
--- Neovim requests, draws (namespace `nvim.lsp.inline_completion`) and accepts; this module only
--- enables it per buffer and adds what it lacks: partial accepts, dismiss, an explicit trigger, and
--- telling the server which item is on screen and what was partly accepted (`fim_lsp.acceptance`).

local acceptance = require('fim_lsp.acceptance')

local api = vim.api

local M = {}

---@class (private) fim_lsp.builtin.Answer
---@field client_id integer
---@field items lsp.InlineCompletionItem[]
---@field invoked boolean whether it answers a request made on purpose (which brings the alternatives)
---@field reported? lsp.InlineCompletionItem the item last said to be on screen

--- The last answer per buffer, as Neovim got it.
---@type table<integer, fim_lsp.builtin.Answer>
local answers = {}

--- How far to move once the answer to a request made for next/prev comes, per buffer.
---@type table<integer, integer>
local pending_select = {}

--- Clients whose inline completion answers this module sees.
---@type table<vim.lsp.Client, true>
local observed = setmetatable({}, { __mode = 'k' })

---@return table vim.lsp.inline_completion
local function ic()
  return require('vim.lsp.inline_completion')
end

M.namespace = api.nvim_create_namespace('nvim.lsp.inline_completion')

--- See the answers Neovim gets from `client`: it has no event for an answer or a suggestion drawn,
--- so the client's `request` is wrapped (this client only, fim-lsp's own) to learn both after Neovim's
--- handler ran.
---@param client vim.lsp.Client
local function observe(client)
  if observed[client] then
    return
  end
  observed[client] = true
  local request = client.request
  ---@diagnostic disable-next-line: duplicate-set-field
  client.request = function(self, method, params, handler, bufnr)
    if method == 'textDocument/inlineCompletion' and type(handler) == 'function' then
      local inner = handler
      local invoked = type(params) == 'table' and type(params.context) == 'table' and params.context.triggerKind == 1
      handler = function(err, result, ctx)
        inner(err, result, ctx)
        M.answered(ctx.bufnr, ctx.client_id, not err and result or nil, invoked)
      end
    end
    return request(self, method, params, handler, bufnr)
  end
end

---@param bufnr integer
---@param client_id integer
function M.attach(bufnr, client_id)
  local client = client_id and vim.lsp.get_client_by_id(client_id)
  if client then
    observe(client)
  end
  ic().enable(true, { bufnr = bufnr })
end

---@param bufnr integer
function M.detach(bufnr)
  answers[bufnr] = nil
  pending_select[bufnr] = nil
  if api.nvim_buf_is_valid(bufnr) then
    ic().enable(false, { bufnr = bufnr })
  end
end

--- Neovim got an answer for `bufnr` (and drew its first item, if any).
---@param bufnr integer
---@param client_id integer
---@param result? lsp.InlineCompletionList|lsp.InlineCompletionItem[]
---@param invoked boolean
function M.answered(bufnr, client_id, result, invoked)
  answers[bufnr] = { client_id = client_id, items = result and (result.items or result) or {}, invoked = invoked }
  local step = invoked and pending_select[bufnr] or nil
  pending_select[bufnr] = nil
  if step then
    ic().select({ bufnr = bufnr, count = step })
  end
  M.report_shown(bufnr)
end

--- Neovim's inline completion state for a buffer. It has no public call to ask now; its request
--- method is reached through the capability registry, and nil is answered where that changed.
---@param bufnr integer
---@return table?
local function completor(bufnr)
  local ok, capability = pcall(require, 'vim.lsp._capability')
  local class = ok and type(capability.all) == 'table' and capability.all.inline_completion or nil
  local active = type(class) == 'table' and type(class.active) == 'table' and class.active[bufnr] or nil
  return active and type(active.request) == 'function' and active or nil
end

--- Tell the server which item is on screen, when it is another than the one last said. Neovim draws
--- an item less what the buffer already holds of it: the item whose text ends so is the one.
---@param bufnr integer
function M.report_shown(bufnr)
  local answer = answers[bufnr]
  local visible = M.visible_text(bufnr)
  if not answer or not visible then
    return
  end
  local plain = require('fim_lsp.text').plain
  local found
  for _, item in ipairs(answer.items) do
    local text = plain(item.insertText or '')
    if text == visible then
      found = item
      break
    elseif not found and #text > #visible and text:sub(-#visible) == visible then
      found = item
    end
  end
  if found and found ~= answer.reported then
    answer.reported = found
    acceptance.shown(answer.client_id, found.insertText, found.command)
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
      if chunk[2] ~= 'ComplHintMore' then -- the ' (2/3)' hint after a cycled item
        parts[#parts + 1] = chunk[1]
      end
    end
    local first = table.concat(parts)
    local rest = {}
    for _, line in ipairs(mark[4].virt_lines or {}) do
      local p = {}
      for _, chunk in ipairs(line) do
        if chunk[2] ~= 'ComplHintMore' then
          p[#p + 1] = chunk[1]
        end
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
          client:exec_cmd(acceptance.accept_command(item.command, chunk), { bufnr = bufnr })
        end
      elseif not whole then
        acceptance.partly_accepted(item.client_id, item.insert_text, item.command, chunk)
      end
    end,
  })
end

---@param bufnr integer
---@param count integer
function M.select(bufnr, count)
  local answer = answers[bufnr]
  if answer and #answer.items == 1 and not answer.invoked and M.visible_text(bufnr) and completor(bufnr) then
    -- Typing got the first suggestion alone: ask on purpose, which brings the others, then move.
    pending_select[bufnr] = count
    M.request(bufnr)
    return
  end
  ic().select({ bufnr = bufnr, count = count })
  M.report_shown(bufnr)
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

--- Ask now, on purpose (the server then answers the alternatives too). Where Neovim's request method
--- cannot be reached, run its CursorMovedI autocmd group, which asks as typing does (debounced).
---@param bufnr integer
function M.request(bufnr)
  local active = completor(bufnr)
  if active then
    active:request(1) -- InlineCompletionTriggerKind.Invoked
    return
  end
  pcall(api.nvim_exec_autocmds, 'CursorMovedI', {
    group = ('nvim.lsp.inline_completion:%d'):format(bufnr),
    modeline = false,
  })
end

return M
