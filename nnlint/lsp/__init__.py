"""`nnlint server`: the static pass as a language server (pygls), for diagnostics and fixes in editors.

Needs the `lsp` extra (`pip install 'nnlint[lsp]'`); nothing else in nnlint imports this package.
"""
