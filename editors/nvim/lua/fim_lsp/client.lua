--- Starting, configuring and stopping the `fim-lsp` language server, one client per project root.
---
--- Failures are reported once: a missing server command once per session, a crash once per crash
--- (after which the plugin stops starting servers until `:FimLsp restart`, so a server that dies at
--- start-up cannot turn every opened buffer into another error).

local config = require('fim_lsp.config')
local status = require('fim_lsp.status')

local api = vim.api

local M = {}

M.name = 'fim-lsp'

---@type { missing_reported: boolean, crashed: boolean }
local session = { missing_reported = false, crashed = false }

--- Client ids we stopped on purpose: their exit is not a crash.
---@type table<integer, true>
local stopping = {}

--- A copy of a settings table in which empty tables are JSON objects: Lua cannot tell `{}` from `[]`,
--- and vim.json encodes an empty table as `[]`, which the server rightly rejects as settings.
---@param value table
---@return table
local function as_object(value)
  if vim.tbl_isempty(value) then
    return vim.empty_dict()
  end
  if vim.islist(value) then
    return vim.deepcopy(value)
  end
  local out = {}
  for key, item in pairs(value) do
    out[key] = type(item) == 'table' and as_object(item) or item
  end
  return out
end

---@return table<string, any>
local function settings()
  return as_object(config.get().settings)
end

--- The ghost-text driver in force (builtin or the plugin's own).
---@return { attach: fun(bufnr: integer, client_id: integer), detach: fun(bufnr: integer) }
function M.driver()
  return config.uses_builtin() and require('fim_lsp.builtin') or require('fim_lsp.ghost')
end

--- Neovim announces every non-zero exit itself ("Client … quit with exit code …"); we say the same
--- with the way out, so swallow Neovim's copy of that one message for a moment.
local function swallow_builtin_exit_notice()
  local original = vim.notify
  local function filtered(msg, level, opts)
    if type(msg) == 'string' and msg:find('^Client ' .. vim.pesc(M.name) .. ' quit with exit code') then
      return
    end
    return original(msg, level, opts)
  end
  vim.notify = filtered
  vim.defer_fn(function()
    if vim.notify == filtered then
      vim.notify = original
    end
  end, 1000)
end

---@param code integer
---@param signal integer
---@param client_id integer
local function on_exit(code, signal, client_id)
  if stopping[client_id] then
    stopping[client_id] = nil
    if #vim.lsp.get_clients({ name = M.name }) <= 1 then
      status.set('off')
    end
    return
  end
  if code == 0 and (signal == 0 or signal == 15) then
    status.set('off')
    return
  end
  local first = not session.crashed
  session.crashed = true
  local how = signal ~= 0 and ('signal %d'):format(signal) or ('exit code %d'):format(code)
  local message = ('the server stopped (%s). Completions are off: `:FimLsp restart` tries again, '
    .. '`:FimLsp log` shows its log, `:checkhealth fim_lsp` checks the set-up.'):format(how)
  status.set('stopped', message)
  swallow_builtin_exit_notice()
  if first then
    vim.schedule(function()
      vim.notify('fim-lsp: ' .. message, vim.log.levels.ERROR)
    end)
  end
end

---@param _ any
---@param params table
local function on_status(_, params)
  status.on_notification(params)
end

---@param client vim.lsp.Client
---@param bufnr integer
local function on_attach(client, bufnr)
  if config.get().enabled then
    M.driver().attach(bufnr, client.id)
  end
end

--- The client capabilities, with inline completion announced (Neovim 0.11 does not announce it).
---@return lsp.ClientCapabilities
local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  ---@diagnostic disable-next-line: inject-field
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  return caps
end

--- Start the server for a buffer's project, or attach the buffer to the one already running there.
---@param bufnr integer
---@return integer? client_id
function M.attach(bufnr)
  if session.crashed or not config.wants_buffer(bufnr) then
    return nil
  end
  local root = vim.fs.root(bufnr, config.get().root_markers) or vim.fn.getcwd()
  local cmd, where = config.resolve_cmd(root)
  if not cmd then
    status.set('missing', 'server command ' .. where)
    if not session.missing_reported then
      session.missing_reported = true
      vim.schedule(function()
        vim.notify(
          ('fim-lsp: server command %s. Install fim-lsp or set `cmd` in '
            .. "require('fim_lsp').setup(); `:checkhealth fim_lsp` explains."):format(where),
          vim.log.levels.WARN
        )
      end)
    end
    return nil
  end
  if status.get().state == 'off' or status.get().state == 'missing' then
    status.set('starting')
  end
  return vim.lsp.start({
    name = M.name,
    cmd = cmd,
    root_dir = root,
    init_options = settings(),
    settings = { fimLsp = settings() },
    capabilities = capabilities(),
    handlers = { ['fimLsp/status'] = on_status },
    on_attach = on_attach,
    on_exit = on_exit,
  }, { bufnr = bufnr })
end

---@return vim.lsp.Client[]
function M.clients()
  return vim.lsp.get_clients({ name = M.name })
end

--- Send the settings in force to every running server.
function M.push_settings()
  for _, client in ipairs(M.clients()) do
    client.settings = { fimLsp = settings() }
    client:notify('workspace/didChangeConfiguration', { settings = client.settings })
  end
end

--- Stop every server; `done` runs once all have exited (or after a few seconds).
---@param done? fun()
function M.stop(done)
  local clients = M.clients()
  for _, client in ipairs(clients) do
    stopping[client.id] = true
    for bufnr in pairs(client.attached_buffers) do
      M.driver().detach(bufnr)
    end
    client:stop()
  end
  if done then
    vim.wait(3000, function()
      return #M.clients() == 0
    end, 50)
    done()
  end
end

--- Stop the servers, forget past failures, and start again in every loaded buffer that wants one.
function M.restart()
  M.stop(function()
    session.crashed = false
    session.missing_reported = false
    status.set('off')
    for _, bufnr in ipairs(api.nvim_list_bufs()) do
      if api.nvim_buf_is_loaded(bufnr) then
        M.attach(bufnr)
      end
    end
  end)
end

--- Facts for `:checkhealth fim_lsp`.
---@return { crashed: boolean, missing_reported: boolean }
function M.session()
  return vim.deepcopy(session)
end

return M
