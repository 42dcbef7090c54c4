--- `:checkhealth fim_lsp`: what the plugin needs, what it found, and what the server last said.

local M = {}

function M.check()
  local health = vim.health
  local config = require('fim_lsp.config')
  local client = require('fim_lsp.client')
  local status = require('fim_lsp.status').get()

  health.start('fim-lsp: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.11') == 0 then
    health.error('Neovim ' .. version .. ' is too old', { 'fim-lsp needs Neovim 0.11 or newer' })
  elseif config.uses_builtin() then
    health.ok('Neovim ' .. version .. ': ghost text by vim.lsp.inline_completion')
  else
    health.ok('Neovim ' .. version .. ": ghost text by the plugin's own extmarks")
  end

  health.start('fim-lsp: server')
  local bufnr = vim.api.nvim_get_current_buf()
  local root = vim.fs.root(bufnr, config.get().root_markers) or vim.fn.getcwd()
  local cmd, where = config.resolve_cmd(root)
  if cmd then
    health.ok('server command: ' .. table.concat(cmd, ' ') .. ' (' .. where .. ')')
    local out = vim.system({ cmd[1], '--version' }, { text = true }):wait(5000)
    if out.code == 0 then
      health.ok('`' .. cmd[1] .. ' --version`: ' .. vim.trim(out.stdout or ''))
    else
      health.warn('`' .. cmd[1] .. ' --version` failed: ' .. vim.trim((out.stderr or '') .. (out.stdout or '')))
    end
  else
    health.error('server command ' .. where, {
      'Install fim-lsp (`pipx install fim-lsp`, or `make setup` in its repository) so `fim-lsp` is on PATH',
      "or name it: require('fim_lsp').setup({ cmd = { '/path/to/fim-lsp', '--stdio' } })",
    })
  end
  if client.session().crashed then
    health.error('the server stopped unexpectedly in this session', {
      ':FimLsp log shows its log; :FimLsp restart tries again',
    })
  end

  local running = client.clients()
  if #running == 0 then
    health.info('no fim-lsp server running (it starts when a file buffer opens)')
  end
  for _, c in ipairs(running) do
    local n = vim.tbl_count(c.attached_buffers)
    health.info(('client %d: root %s, %d buffer(s)'):format(c.id, c.root_dir or '?', n))
  end

  health.start('fim-lsp: model')
  local detail = status.message ~= '' and (': ' .. status.message) or ''
  if status.state == 'ready' then
    health.ok('ready' .. (status.latency_ms and (', last completion %d ms'):format(status.latency_ms) or ''))
  elseif status.state == 'loading' or status.state == 'starting' then
    health.info(status.state .. detail)
  elseif status.state == 'error' then
    health.error('the server reports an error' .. detail, {
      '`fim-lsp doctor` checks the model and the llama.cpp build',
      '`fim-lsp models` lists the known models; set one with setup({ settings = { model = "…" } })',
    })
  elseif status.state == 'off' then
    health.info('no status yet')
  else
    health.warn(status.state .. detail)
  end

  health.start('fim-lsp: settings')
  local settings = config.get().settings
  if next(settings) == nil then
    health.info('server settings: the defaults')
  else
    health.info('server settings: ' .. vim.json.encode(settings))
  end
end

return M
