-- fim-lsp: commands, <Plug> mappings, default keys and the autocmd that starts the server.
-- Everything else loads lazily from lua/fim_lsp/ on first use.

if vim.g.loaded_fim_lsp then
  return
end
vim.g.loaded_fim_lsp = true

if vim.fn.has('nvim-0.11') == 0 then
  vim.api.nvim_echo({ { 'fim-lsp needs Neovim 0.11 or newer', 'WarningMsg' } }, true, {})
  return
end

local function fim()
  return require('fim_lsp')
end

vim.api.nvim_set_hl(0, 'FimLspGhost', { link = 'Comment', default = true })
vim.api.nvim_set_hl(0, 'FimLspGhostHint', { link = 'NonText', default = true })

---@type table<string, fun()>
local subcommands = {
  enable = function()
    fim().enable(true)
  end,
  disable = function()
    fim().enable(false)
  end,
  toggle = function()
    fim().toggle()
  end,
  trigger = function()
    fim().trigger()
  end,
  restart = function()
    fim().restart()
  end,
  status = function()
    local s = fim().status()
    local line = ('fim-lsp: %s'):format(s.state)
    if s.latency_ms then
      line = line .. (' (last completion %d ms)'):format(s.latency_ms)
    end
    if s.message ~= '' then
      line = line .. ': ' .. s.message
    end
    vim.api.nvim_echo({ { line } }, false, {})
  end,
  log = function()
    vim.cmd.tabedit(vim.fn.fnameescape(vim.lsp.get_log_path()))
  end,
  stats = function()
    local stats = fim().stats()
    local line = stats and require('fim_lsp.acceptance').describe(stats) or 'no server is running'
    vim.api.nvim_echo({ { 'fim-lsp: ' .. line } }, false, {})
  end,
}

vim.api.nvim_create_user_command('FimLsp', function(args)
  local action = subcommands[args.fargs[1] or 'status']
  if not action then
    vim.notify('fim-lsp: unknown subcommand ' .. args.fargs[1], vim.log.levels.ERROR)
    return
  end
  action()
end, {
  nargs = '?',
  desc = 'fim-lsp: enable | disable | toggle | trigger | restart | status | stats | log',
  complete = function(lead)
    return vim.tbl_filter(function(name)
      return name:find(lead, 1, true) == 1
    end, vim.tbl_keys(subcommands))
  end,
})

---@type table<string, string>
local plugs = {
  ['<Plug>(fim-lsp-accept)'] = 'accept',
  ['<Plug>(fim-lsp-accept-word)'] = 'accept_word',
  ['<Plug>(fim-lsp-accept-line)'] = 'accept_line',
  ['<Plug>(fim-lsp-next)'] = 'next',
  ['<Plug>(fim-lsp-prev)'] = 'prev',
  ['<Plug>(fim-lsp-dismiss)'] = 'dismiss',
  ['<Plug>(fim-lsp-trigger)'] = 'trigger',
}
for lhs, fn in pairs(plugs) do
  vim.keymap.set('i', lhs, function()
    fim()[fn]()
  end, { desc = 'fim-lsp: ' .. fn:gsub('_', ' ') })
end

-- Default keys, unless the user said no or already mapped the key. <Tab> accepts only when a
-- suggestion is on screen; otherwise it does what it did before (Neovim's own default <Tab> jumps
-- in an active snippet, else inserts a tab).
if vim.g.fim_lsp_no_default_keymaps ~= true then
  local function free(lhs)
    return vim.fn.maparg(lhs, 'i') == ''
  end
  ---@param lhs string
  ---@return (fun(): string)? fallback nil when the user mapped the key themselves
  local function previous_tab(lhs)
    local old = vim.fn.maparg(lhs, 'i', false, true)
    if vim.tbl_isempty(old) then
      return function()
        return lhs
      end
    end
    -- Neovim's default snippet-jump mapping (0.11+) is chained; a user's own mapping is left alone.
    if old.expr == 1 and old.callback and (old.desc or ''):find('^vim%.snippet%.jump') then
      return old.callback
    end
    return nil
  end
  local fallback = previous_tab('<Tab>')
  if fallback then
    vim.keymap.set('i', '<Tab>', function()
      if package.loaded['fim_lsp'] and fim().visible() then
        return '<Plug>(fim-lsp-accept)'
      end
      return fallback()
    end, { expr = true, remap = true, desc = 'fim-lsp: accept the suggestion, or <Tab>' })
  end
  local keys = {
    ['<M-]>'] = '<Plug>(fim-lsp-next)',
    ['<M-[>'] = '<Plug>(fim-lsp-prev)',
    ['<C-]>'] = '<Plug>(fim-lsp-dismiss)',
    ['<M-Right>'] = '<Plug>(fim-lsp-accept-word)',
    ['<M-C-Right>'] = '<Plug>(fim-lsp-accept-line)',
    ['<M-\\>'] = '<Plug>(fim-lsp-trigger)',
  }
  for lhs, rhs in pairs(keys) do
    if free(lhs) then
      vim.keymap.set('i', lhs, rhs, { remap = true })
    end
  end
end

vim.api.nvim_create_autocmd('FileType', {
  group = vim.api.nvim_create_augroup('fim_lsp', { clear = true }),
  desc = 'fim-lsp: start the server for this buffer',
  callback = function(args)
    if vim.g.fim_lsp_disable_autostart ~= true then
      fim().attach(args.buf)
    end
  end,
})
