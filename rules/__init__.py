"""nnlint's rules: one module per rule, discovered by `nnlint.rule.all_rules`."""
