"""Qualified names of the expressions in one file, from its import statements.

`F.dropout`, `torch.nn.functional.dropout` and `from torch.nn.functional
import dropout as d; d(...)` must be one call for every rule. libcst's
QualifiedNameProvider does this with a full scope analysis that costs several
times the parse itself; import aliases are all the rules need, so this table
keeps only them (a local variable that shadows an imported name is rare in
training code and is accepted as a known imprecision).
"""

from __future__ import annotations

import libcst as cst


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, None for anything else (calls, subscripts)."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


class ImportTable:
    """Maps each name bound by an import to the dotted path it stands for."""

    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}

    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._aliases[alias.asname.name.value] = full
            else:
                # `import torch.nn` binds `torch`, which then resolves to itself.
                top = full.split(".")[0]
                self._aliases[top] = top

    def add_import_from(self, node: cst.ImportFrom) -> None:
        """`from a.b import c` binds `c` to `a.b.c`; a relative `from ..a import c` to `..a.c` (the dots
        kept, for the project's own files to be found: nnlint.project)."""
        if isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module) if node.module is not None else ""
        if module is None:
            return
        dots = "." * len(node.relative)
        module = f"{dots}{module}" if module else dots[:-1]
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            bound = alias.name.value
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            self._aliases[bound] = f"{module}.{alias.name.value}" if module else f".{alias.name.value}"

    def qualified_name(self, node: cst.BaseExpression) -> str | None:
        """The import path an expression names, e.g. `F.dropout` -> `torch.nn.functional.dropout`.

        None when the chain does not start at an imported name.
        """
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        base = self._aliases.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base
