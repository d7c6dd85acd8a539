"""`python -m nnlint` is the `nnlint` command."""

from nnlint.cli import main

main()
