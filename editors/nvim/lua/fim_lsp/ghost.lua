--- The plugin's own ghost text, for Neovims without vim.lsp.inline_completion (0.11).
---
--- While in insert mode it asks `textDocument/inlineCompletion` after a short quiet time, draws the
--- first suggestion as extmarks (inline virtual text on the cursor line, virtual lines below), and
--- keeps it while what the user types matches it. A suggestion is anchored where it starts: the text
--- between the anchor and the cursor must be a prefix of the suggestion for it to stay on screen.

local acceptance = require('fim_lsp.acceptance')
local config = require('fim_lsp.config')
local text = require('fim_lsp.text')

local api = vim.api
local METHOD = 'textDocument/inlineCompletion'

local M = {}

M.namespace = api.nvim_create_namespace('fim_lsp.ghost')

---@class (private) fim_lsp.ghost.Item
---@field client_id integer
---@field anchor [integer, integer] 0-based row and byte column where `insert_text` starts
---@field replace_end? [integer, integer] end of the range the server asked to replace, if past the anchor
---@field insert_text string
---@field command? lsp.Command

---@class (private) fim_lsp.ghost.Buffer
---@field client_id integer
---@field augroup integer
---@field timer? uv.uv_timer_t
---@field pending? integer id of the request in flight
---@field items fim_lsp.ghost.Item[]
---@field index integer which item is shown
---@field dismissed_tick? integer changedtick at which the user dismissed; no requests until it changes
---@field reported? fim_lsp.ghost.Item the item last said to the server to be on screen
---@field invoked? boolean whether the items answer a request made on purpose (which brings alternatives)
---@field pending_step? integer how far next/prev moves once the answer to its request comes

---@type table<integer, fim_lsp.ghost.Buffer>
local buffers = {}

---@param bufnr integer
---@return [integer, integer]? 0-based row and byte column of the cursor, when a window shows bufnr
local function cursor_of(bufnr)
  local win = api.nvim_get_current_win()
  if api.nvim_win_get_buf(win) ~= bufnr then
    return nil
  end
  local pos = api.nvim_win_get_cursor(win)
  return { pos[1] - 1, pos[2] }
end

--- The text between `from` and `to` (0-based, end exclusive), or nil when `to` lies before `from`.
---@param bufnr integer
---@param from [integer, integer]
---@param to [integer, integer]
---@return string?
local function text_between(bufnr, from, to)
  if to[1] < from[1] or (to[1] == from[1] and to[2] < from[2]) then
    return nil
  end
  local ok, lines = pcall(api.nvim_buf_get_text, bufnr, from[1], from[2], to[1], to[2], {})
  if not ok then
    return nil
  end
  return table.concat(lines, '\n')
end

--- What of `item` is still to be inserted at the cursor, or nil when the buffer no longer agrees with it.
---@param bufnr integer
---@param item fim_lsp.ghost.Item
---@return string?
local function remainder(bufnr, item)
  local cursor = cursor_of(bufnr)
  if not cursor then
    return nil
  end
  local typed = text_between(bufnr, item.anchor, cursor)
  if typed == nil or item.insert_text:sub(1, #typed) ~= typed then
    return nil
  end
  local rest = item.insert_text:sub(#typed + 1)
  return rest ~= '' and rest or nil
end

---@param bufnr integer
function M.hide(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
end

--- Draw the current item, or hide it when it no longer fits the buffer.
---@param bufnr integer
---@return boolean shown
local function render(bufnr)
  M.hide(bufnr)
  local state = buffers[bufnr]
  local item = state and state.items[state.index]
  local rest = item and remainder(bufnr, item)
  local cursor = cursor_of(bufnr)
  if not rest or not cursor then
    return false
  end
  local lines = vim.split(rest, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'FimLspGhost' } }
  end
  local virt_text = { { lines[1], 'FimLspGhost' } }
  if #state.items > 1 then
    local hint = { (' (%d/%d)'):format(state.index, #state.items), 'FimLspGhostHint' }
    table.insert(#virt_lines > 0 and virt_lines[#virt_lines] or virt_text, hint)
  end
  api.nvim_buf_set_extmark(bufnr, M.namespace, cursor[1], cursor[2], {
    virt_text = virt_text,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
    priority = 200,
  })
  if state.reported ~= item then
    state.reported = item
    acceptance.shown(item.client_id, item.insert_text, item.command)
  end
  return true
end

---@param state fim_lsp.ghost.Buffer
local function stop_timer(state)
  local timer = state.timer
  state.timer = nil
  if timer and not timer:is_closing() then
    timer:stop()
    timer:close()
  end
end

---@param bufnr integer
local function cancel_pending(bufnr)
  local state = buffers[bufnr]
  if not state or not state.pending then
    return
  end
  local client = vim.lsp.get_client_by_id(state.client_id)
  if client then
    client:cancel_request(state.pending)
  end
  state.pending = nil
end

--- Turn the server's answer into anchored items; drop those that do not start at or before the cursor.
---@param bufnr integer
---@param client vim.lsp.Client
---@param result lsp.InlineCompletionList|lsp.InlineCompletionItem[]|nil
---@param cursor [integer, integer]
---@return fim_lsp.ghost.Item[]
local function to_items(bufnr, client, result, cursor)
  local raw = result and (result.items or result) or {}
  local items = {}
  for _, lsp_item in ipairs(raw) do
    local insert = text.plain(lsp_item.insertText or '')
    local anchor, replace_end = cursor, nil
    if lsp_item.range then
      local s, e = lsp_item.range.start, lsp_item.range['end']
      local function pos(p)
        local line = api.nvim_buf_get_lines(bufnr, p.line, p.line + 1, false)[1] or ''
        return { p.line, text.byte_col(line, p.character, client.offset_encoding) }
      end
      anchor = pos(s)
      local stop = pos(e)
      if stop[1] > cursor[1] or (stop[1] == cursor[1] and stop[2] > cursor[2]) then
        replace_end = stop
      end
    end
    if insert ~= '' then
      items[#items + 1] = {
        client_id = client.id,
        anchor = anchor,
        replace_end = replace_end,
        insert_text = insert,
        command = lsp_item.command,
      }
    end
  end
  return items
end

--- Ask the server for suggestions at the cursor now.
---@param bufnr integer
---@param trigger_kind integer 1 invoked, 2 automatic
function M.request(bufnr, trigger_kind)
  local state = buffers[bufnr]
  local client = state and vim.lsp.get_client_by_id(state.client_id)
  local cursor = cursor_of(bufnr)
  if not state or not client or not cursor then
    return
  end
  cancel_pending(bufnr)
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  ---@diagnostic disable-next-line: inject-field
  params.context = { triggerKind = trigger_kind }
  local ok, id = client:request(METHOD, params, function(err, result)
    if buffers[bufnr] ~= state then
      return
    end
    state.pending = nil
    -- A stale answer (the user typed on or moved meanwhile) is dropped: a newer request is coming.
    if err or api.nvim_buf_get_changedtick(bufnr) ~= tick or not vim.deep_equal(cursor_of(bufnr), cursor) then
      return
    end
    if not api.nvim_get_mode().mode:match('^i') then
      return
    end
    state.items = to_items(bufnr, client, result, cursor)
    state.invoked = trigger_kind == 1
    local step = state.pending_step
    state.pending_step = nil
    state.index = (step and #state.items > 0) and (step % #state.items) + 1 or 1
    render(bufnr)
  end, bufnr)
  state.pending = ok and id or nil
end

--- After a keystroke: keep the suggestion if the user typed along it, and ask again after a pause.
---@param bufnr integer
local function on_change(bufnr)
  local state = buffers[bufnr]
  if not state then
    return
  end
  if state.dismissed_tick and state.dismissed_tick == api.nvim_buf_get_changedtick(bufnr) then
    return
  end
  state.dismissed_tick = nil
  if render(bufnr) then
    -- The suggestion still applies; asking again would only repeat it.
    return
  end
  state.items = {}
  stop_timer(state)
  cancel_pending(bufnr)
  state.timer = vim.defer_fn(function()
    state.timer = nil
    if buffers[bufnr] == state and api.nvim_get_mode().mode:match('^i') then
      M.request(bufnr, 2)
    end
  end, config.get().debounce_ms)
end

--- Start drawing ghost text in a buffer for a client.
---@param bufnr integer
---@param client_id integer
function M.attach(bufnr, client_id)
  if buffers[bufnr] then
    return
  end
  local augroup = api.nvim_create_augroup('fim_lsp.ghost.' .. bufnr, { clear = true })
  ---@type fim_lsp.ghost.Buffer
  local state = { client_id = client_id, augroup = augroup, items = {}, index = 1 }
  buffers[bufnr] = state
  api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'CursorMovedI' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      on_change(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  if api.nvim_get_mode().mode:match('^i') and api.nvim_get_current_buf() == bufnr then
    on_change(bufnr)
  end
end

--- Stop drawing ghost text in a buffer.
---@param bufnr integer
function M.detach(bufnr)
  local state = buffers[bufnr]
  if not state then
    return
  end
  M.clear(bufnr)
  pcall(api.nvim_del_augroup_by_id, state.augroup)
  buffers[bufnr] = nil
end

--- Forget the suggestion and any request in flight.
---@param bufnr integer
function M.clear(bufnr)
  local state = buffers[bufnr]
  if state then
    stop_timer(state)
    cancel_pending(bufnr)
    state.items = {}
  end
  M.hide(bufnr)
end

---@param bufnr integer
---@return boolean
function M.attached(bufnr)
  return buffers[bufnr] ~= nil
end

--- The text the current suggestion would insert at the cursor.
---@param bufnr integer
---@return string?
function M.visible_text(bufnr)
  local state = buffers[bufnr]
  local item = state and state.items[state.index]
  return item and remainder(bufnr, item) or nil
end

--- Insert all or part of the current suggestion.
---@param bufnr integer
---@param part? fun(rest: string): string how much to take (nil: all of it)
---@return boolean accepted
function M.accept(bufnr, part)
  local state = buffers[bufnr]
  local item = state and state.items[state.index]
  local rest = item and remainder(bufnr, item)
  local cursor = cursor_of(bufnr)
  if not item or not rest or not cursor then
    return false
  end
  local chunk = part and part(rest) or rest
  local whole = #chunk == #rest
  local stop = cursor
  if whole and item.replace_end then
    stop = item.replace_end
  end
  local lines = vim.split(chunk, '\n', { plain = true })
  stop_timer(state)
  cancel_pending(bufnr)
  M.hide(bufnr)
  api.nvim_buf_set_text(bufnr, cursor[1], cursor[2], stop[1], stop[2], lines)
  local row = cursor[1] + #lines - 1
  local col = (#lines == 1 and cursor[2] or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  if whole then
    state.items = {}
    if item.command then
      local client = vim.lsp.get_client_by_id(item.client_id)
      if client then
        client:exec_cmd(acceptance.accept_command(item.command, chunk), { bufnr = bufnr })
      end
    end
  else
    acceptance.partly_accepted(item.client_id, item.insert_text, item.command, chunk)
    -- The rest stays on screen; the TextChangedI that follows finds it still matches.
    render(bufnr)
  end
  return true
end

--- Show the next (or previous, with a negative count) suggestion.
---@param bufnr integer
---@param count integer
function M.select(bufnr, count)
  local state = buffers[bufnr]
  if not state or #state.items == 0 then
    return
  end
  if #state.items == 1 and not state.invoked then
    -- Typing got the first suggestion alone: ask on purpose, which brings the others, then move.
    state.pending_step = count
    M.request(bufnr, 1)
    return
  end
  state.index = (state.index - 1 + count) % #state.items + 1
  render(bufnr)
end

--- Hide the suggestion until the buffer changes.
---@param bufnr integer
function M.dismiss(bufnr)
  local state = buffers[bufnr]
  M.clear(bufnr)
  if state then
    state.dismissed_tick = api.nvim_buf_get_changedtick(bufnr)
  end
end

return M
