"""The statements of one function in the order they run: does A run after B, can both run in one pass,
which names are read, written and called between them.

Order-sensitive rules (a layer added after its optimizer was built, an optimizer rebuilt before it is
used) ask these facts instead of walking a function body again. The index (`index.py`) says which
bindings a scope has but not where a statement sits among its neighbours, in which `if` arm, or what
reads a name, so each function body is walked once more here, on first use, and kept for every rule.
"""

from __future__ import annotations

import libcst as cst

from nnlint.context import FileContext
from nnlint.names import dotted_name
from nnlint.tree import child_nodes

# Nodes whose enclosing nodes are kept: what order questions are asked about.
_PLACED = (cst.SimpleStatementLine, cst.BaseSmallStatement, cst.BaseCompoundStatement, cst.Call)
# Nodes that open a scope of their own: their statements run at another time (or never).
_OTHER_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
# Arms of these run one at a time: an `if`'s body and its `else`, a `try` body and its handlers.
_ONE_ARM = (cst.If, cst.IfExp, cst.Try)


class Statements:
    """Every scope's `ScopeStatements`, each built the first time a rule asks for it."""

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self._scopes: dict[cst.CSTNode, ScopeStatements] = {}

    def of(self, function: cst.FunctionDef | None) -> ScopeStatements:
        """The statements of `function`, or of the module's own code when `function` is None."""
        scope = function if function is not None else self.context.module
        found = self._scopes.get(scope)
        if found is None:
            found = self._scopes[scope] = ScopeStatements(self.context, scope)
        return found


class ScopeStatements:
    """One walk of a function body (or the module's own statements, not those of its functions and
    classes), in source order: calls, reads and `=` writes of names, and the nodes enclosing each
    statement and call, so that order and exclusive branches are answered without walking again."""

    def __init__(self, context: FileContext, scope: cst.FunctionDef | cst.Module) -> None:
        self.context = context
        self.scope = scope
        self.calls: list[cst.Call] = []
        # Every dotted name loaded, with its node: `model.fc.parameters` also gives `model.fc` and `model`.
        self.reads: list[tuple[str, cst.CSTNode]] = []
        # Each target of `x = ...` / `x: T = ...` with its statement (attributes and subscripts too).
        self.assigned: list[tuple[cst.BaseExpression, cst.Assign | cst.AnnAssign]] = []
        # Dotted names rebound by `=` (not by loops, `with`, `+=` or unpacking: see `index.bindings`).
        self.writes: list[tuple[str, cst.Assign | cst.AnnAssign]] = []
        self._ancestors: dict[cst.CSTNode, tuple[cst.CSTNode, ...]] = {}
        self._spans: dict[cst.CSTNode, tuple[int, int]] | None = None  # numbered on first use: see `span`
        self._walk(scope.body if isinstance(scope, cst.FunctionDef) else scope, [])

    def _walk(self, node: cst.CSTNode, ancestors: list[cst.CSTNode]) -> None:
        if ancestors and isinstance(node, _OTHER_SCOPES):
            return
        if isinstance(node, _PLACED):
            self._ancestors[node] = tuple(ancestors)
        if isinstance(node, (cst.Assign, cst.AnnAssign)) and node.value is not None:
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            for target in targets:
                self.assigned.append((target, node))
                name = dotted_name(target)
                if name is not None:
                    self.writes.append((name, node))
        elif isinstance(node, cst.Call):
            self.calls.append(node)
        elif isinstance(node, (cst.Name, cst.Attribute)) and _loaded(node, ancestors[-1] if ancestors else None):
            name = dotted_name(node)
            if name is not None:
                self.reads.append((name, node))
        ancestors.append(node)
        for child in child_nodes(node):
            self._walk(child, ancestors)
        ancestors.pop()

    def start(self, node: cst.CSTNode) -> tuple[int, int]:
        """(line, column) where a node starts: source order, comparable across the whole scope."""
        start = self.context.position(node).start
        return (start.line, start.column)

    def ancestors(self, node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
        """The nodes of this scope enclosing a statement or call, outermost first (loops, `if`s, `with`s)."""
        return self._ancestors[node]

    def statement_of(self, node: cst.CSTNode) -> cst.SimpleStatementLine | None:
        """The statement line holding a call or small statement of this scope (None if not in this scope)."""
        chain = self._ancestors.get(node)
        if chain is None:
            return None
        return next((n for n in reversed(chain) if isinstance(n, cst.SimpleStatementLine)), None)

    def exclusive(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        """The two sit in different arms of one `if` (or a `try` body and a handler): one pass runs one."""
        a_chain, b_chain = self._ancestors[first], self._ancestors[second]
        for index, (a, b) in enumerate(zip(a_chain, b_chain)):
            if a is not b:
                return index > 0 and isinstance(a_chain[index - 1], _ONE_ARM)
        return False

    def runs_after(self, later: cst.CSTNode, earlier: cst.CSTNode) -> bool:
        """`later` runs after `earlier` in one pass of this scope: later in the source, not in another arm."""
        if self.start(later) <= self.start(earlier):
            return False
        return not self.exclusive(earlier, later)

    def written_between(self, earlier: cst.CSTNode, later: cst.CSTNode) -> set[str]:
        """The names rebound by `=` strictly between two nodes (`model = other_model` in between)."""
        low, high = self.start(earlier), self.start(later)
        return {name for name, node in self.writes if low < self.start(node) < high}

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        """The index of any node of this scope (expressions too) among all its nodes in source order, and the
        index of its last part. Finer than `start`: an enclosing node comes before its parts (`model(x).sum()`
        before `model(x)`), and every part of a node falls inside its span."""
        return self._numbered()[node]

    def nodes(self) -> list[cst.CSTNode]:
        """Every node of this scope in source order, an enclosing node before its parts (the bodies of
        nested functions, classes and lambdas left out): for rules that sort a body's nodes themselves."""
        return list(self._numbered())

    def _numbered(self) -> dict[cst.CSTNode, tuple[int, int]]:
        if self._spans is None:
            self._spans = {}
            self._number(self.scope.body if isinstance(self.scope, cst.FunctionDef) else self.scope, 0)
        return self._spans

    def _number(self, node: cst.CSTNode, index: int) -> int:
        first = index
        self._spans[node] = (first, first)  # placed now, so that the dict lists nodes in source order
        index += 1
        for child in child_nodes(node):
            if not isinstance(child, _OTHER_SCOPES):
                index = self._number(child, index)
        self._spans[node] = (first, index - 1)
        return index

    def encloses(self, outer: cst.CSTNode, node: cst.CSTNode) -> bool:
        """`node` is `outer` or one of its parts (a call inside a loop, a reading inside a print)."""
        low, high = self.span(outer)
        return low <= self.span(node)[0] <= high

    def between(self, node: cst.CSTNode, earlier: cst.CSTNode, later: cst.CSTNode) -> bool:
        """`node` lies wholly after `earlier` (and its parts) and wholly before `later` starts."""
        start, end = self.span(node)
        return self.span(earlier)[1] < start and end < self.span(later)[0]


def _loaded(node: cst.Name | cst.Attribute, parent: cst.CSTNode | None) -> bool:
    """A name read for its value: not an assignment target, nor the `fc` of `model.fc`, nor a keyword."""
    if isinstance(parent, cst.AssignTarget) and parent.target is node:
        return False
    if isinstance(parent, cst.Attribute) and parent.attr is node:
        return False
    return not (isinstance(parent, cst.Arg) and parent.keyword is node)
