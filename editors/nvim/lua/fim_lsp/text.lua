--- Pure text helpers for ghost text: how much of a suggestion a partial accept takes, and LSP
--- positions (UTF-16 or UTF-8 code units) to byte columns.

local M = {}

--- The part of `text` that "accept word" inserts: leading blanks, then one word or one run of
--- punctuation. At a line break, the break and the next line's indentation.
---@param text string
---@return string
function M.next_word(text)
  if text == '' then
    return ''
  end
  local brk = text:match('^\r?\n[ \t]*')
  if brk then
    return brk
  end
  return text:match('^[ \t]*[%w_]+') or text:match('^[ \t]*[^%w_%s]+') or text:match('^[ \t]+') or text:sub(1, 1)
end

--- The part of `text` that "accept line" inserts: the rest of the current line; at a line break,
--- the break and the whole next line.
---@param text string
---@return string
function M.next_line(text)
  local head = text:match('^[^\n]*')
  if head ~= '' then
    return head
  end
  return text:match('^\n[^\n]*') or ''
end

--- The plain text of an InlineCompletionItem's insertText (a string or a snippet StringValue).
---
--- Snippet tabstops and placeholders are reduced to their default text: ghost text shows what
--- would be typed, and accepting inserts the same.
---@param insert_text string|{ kind: string, value: string }
---@return string
function M.plain(insert_text)
  if type(insert_text) == 'string' then
    return insert_text
  end
  local value = insert_text.value or ''
  if insert_text.kind ~= 'snippet' then
    return value
  end
  local ok, grammar = pcall(require, 'vim.lsp._snippet_grammar')
  if ok then
    local parsed_ok, parsed = pcall(grammar.parse, value)
    if parsed_ok then
      return tostring(parsed)
    end
  end
  -- Older grammars: strip `${1:x}` to `x` and `$1` to nothing.
  value = value:gsub('%${%d+:([^}]*)}', '%1'):gsub('%$%d+', ''):gsub('%${%d+}', '')
  return value
end

--- The byte column of an LSP character offset on `line`.
---@param line string
---@param character integer in the client's offset encoding
---@param encoding 'utf-8'|'utf-16'|'utf-32'
---@return integer
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  if ok and col then
    return math.min(col, #line)
  end
  return #line
end

return M
