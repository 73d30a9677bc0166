-- purelint's language server for Python buffers: Neovim 0.7 or later, no plugin needed.
-- One server per project; the root is the nearest directory with a pyproject.toml.
local purelint_clients = {}
vim.api.nvim_create_autocmd("FileType", {
  pattern = "python",
  callback = function(args)
    local found = vim.fn.findfile("pyproject.toml", vim.fn.fnamemodify(args.file, ":p:h") .. ";")
    local root = found ~= "" and vim.fn.fnamemodify(found, ":p:h") or vim.fn.getcwd()
    local config = { name = "purelint", cmd = { "purelint", "server" }, root_dir = root }
    if vim.lsp.start then -- Neovim 0.8+: starts the server, or reuses the one for this root
      vim.lsp.start(config)
      return
    end
    purelint_clients[root] = purelint_clients[root] or vim.lsp.start_client(config)
    vim.lsp.buf_attach_client(args.buf, purelint_clients[root])
  end,
})
