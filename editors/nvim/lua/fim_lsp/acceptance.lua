--- Telling the server what became of its suggestions, and reading back its counts.
---
--- The server counts, in memory only, the suggestions shown, accepted whole, partly accepted (a word,
--- a line) and the characters accepted. The plugin tells it when an item is on screen
--- (`fimLsp/didShowCompletion`, also after cycling: the server's typed-through answers then follow that
--- candidate) and when part of one was accepted (`fimLsp/didPartiallyAcceptCompletion`); accepting a
--- whole item runs the item's own command. The names and shapes follow Copilot's
--- `textDocument/didShowCompletion` and `textDocument/didPartiallyAcceptCompletion`.

local M = {}

M.SHOWN = 'fimLsp/didShowCompletion'
M.PARTLY_ACCEPTED = 'fimLsp/didPartiallyAcceptCompletion'

--- The item as the server sent it: what it reads back is the text and the accept command.
---@param insert_text string|{ kind: string, value: string }
---@param command? lsp.Command
---@return table?
local function wire_item(insert_text, command)
  if not command then
    return nil -- not an item of fim-lsp's (another server, or a test double)
  end
  return { insertText = insert_text, command = command }
end

---@param client_id integer
---@param method string
---@param params table
local function notify(client_id, method, params)
  local client = vim.lsp.get_client_by_id(client_id)
  if client then
    client:notify(method, params)
  end
end

--- An item is on screen.
---@param client_id integer
---@param insert_text string|{ kind: string, value: string }
---@param command? lsp.Command
function M.shown(client_id, insert_text, command)
  local item = wire_item(insert_text, command)
  if item then
    notify(client_id, M.SHOWN, { item = item })
  end
end

--- Part of an item went into the buffer: `accepted` is what this accept inserted (fim-lsp counts the
--- characters each accept inserts; Copilot's `acceptedLength` counts the item's accepted so far).
---@param client_id integer
---@param insert_text string|{ kind: string, value: string }
---@param command? lsp.Command
---@param accepted string
function M.partly_accepted(client_id, insert_text, command, accepted)
  local item = wire_item(insert_text, command)
  if item then
    notify(client_id, M.PARTLY_ACCEPTED, { item = item, acceptedLength = vim.fn.strchars(accepted) })
  end
end

--- The item's accept command, saying how many characters the plugin inserted: fewer than the item
--- holds when the user typed some of it before the next answer came.
---@param command lsp.Command
---@param inserted string
---@return lsp.Command
function M.accept_command(command, inserted)
  local argument = type(command.arguments) == 'table' and command.arguments[1]
  if type(argument) ~= 'table' or argument.length == nil then
    return command
  end
  local copy = vim.deepcopy(command)
  copy.arguments[1].length = vim.fn.strchars(inserted)
  return copy
end

---@class fim_lsp.Stats
---@field shown integer Suggestions shown.
---@field accepted integer Suggestions accepted whole.
---@field partly_accepted integer Suggestions of which a word or a line was accepted.
---@field accepted_chars integer Characters of suggestions accepted, whole or in part.
---@field accepted_alternatives integer Suggestions accepted whole that were not the first candidate.

local FIELDS = { 'shown', 'accepted', 'partly_accepted', 'accepted_chars', 'accepted_alternatives' }

--- The counts of every running server, added up (each project root has its own server).
---@param timeout_ms? integer
---@return fim_lsp.Stats? nil when no server answered
function M.stats(timeout_ms)
  local total, answered = {}, false
  for _, field in ipairs(FIELDS) do
    total[field] = 0
  end
  for _, client in ipairs(require('fim_lsp.client').clients()) do
    local reply = client:request_sync(
      'workspace/executeCommand',
      { command = 'fim-lsp.stats', arguments = {} },
      timeout_ms or 2000
    )
    local result = reply and not reply.err and reply.result
    if type(result) == 'table' then
      answered = true
      for _, field in ipairs(FIELDS) do
        total[field] = total[field] + (tonumber(result[field]) or 0)
      end
    end
  end
  return answered and total or nil
end

--- One line for people: `12 shown, 5 accepted (42%), 3 partly accepted, 310 characters accepted`.
---@param stats fim_lsp.Stats
---@return string
function M.describe(stats)
  local rate = stats.shown > 0 and (' (%d%%)'):format(math.floor(100 * stats.accepted / stats.shown + 0.5)) or ''
  return ('%d shown, %d accepted%s, %d partly accepted, %d characters accepted'):format(
    stats.shown,
    stats.accepted,
    rate,
    stats.partly_accepted,
    stats.accepted_chars
  )
end

return M
