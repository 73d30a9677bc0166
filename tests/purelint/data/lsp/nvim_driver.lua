-- Drives headless Neovim as purelint's LSP client for tests/purelint/test_server.py: loads the
-- editor set-up that docs/purelint.md shows (purelint.lua), waits for the diagnostics, asks for
-- a hover and the code actions at the first finding, applies the preferred one, waits for the
-- diagnostics to follow, and writes what it saw to $PURELINT_NVIM_OUT as JSON.
dofile(os.getenv("PURELINT_NVIM_CONFIG"))

local function findings()
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    table.insert(out, { code = d.code, lnum = d.lnum, col = d.col, end_col = d.end_col, source = d.source, message = d.message })
  end
  table.sort(out, function(a, b) return a.lnum < b.lnum end)
  return out
end

local function request(method, params)
  for _, response in pairs(vim.lsp.buf_request_sync(0, method, params, 20000) or {}) do
    if response.result then return response.result end
  end
end

vim.api.nvim_create_autocmd("VimEnter", {
  callback = function()
    local report = {}
    report.attached = vim.wait(20000, function() return #vim.diagnostic.get(0) > 0 end, 20)
    report.before = findings()
    local first = report.before[1]
    if first then
      vim.api.nvim_win_set_cursor(0, { first.lnum + 1, first.col })
      local params = vim.lsp.util.make_range_params()
      local hover = request("textDocument/hover", vim.lsp.util.make_position_params())
      report.hover = hover and hover.contents.value
      params.context = { diagnostics = {} }
      report.actions = {}
      for _, action in ipairs(request("textDocument/codeAction", params) or {}) do
        table.insert(report.actions, action.title)
        if action.isPreferred and not report.applied then
          vim.lsp.util.apply_workspace_edit(action.edit, "utf-16")
          report.applied = action.title
        end
      end
      report.updated = vim.wait(20000, function()
        for _, d in ipairs(vim.diagnostic.get(0)) do
          if d.code == first.code and d.lnum == first.lnum then return false end
        end
        return true
      end, 20)
    end
    report.after = findings()
    report.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
    vim.fn.writefile({ vim.fn.json_encode(report) }, os.getenv("PURELINT_NVIM_OUT"))
    vim.cmd("qa!")
  end,
})
