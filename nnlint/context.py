"""Facts about the file being linted, shared by every rule during the one traversal.

Rules ask the context instead of re-deriving facts (ruff's `Checker`):
qualified names from the import table, and where the current node sits
(enclosing statement, function, class, loops).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from nnlint.names import ImportTable

T = TypeVar("T")

_STATEMENT_TYPES = (cst.SimpleStatementLine, cst.BaseCompoundStatement)
_LOOP_TYPES = (cst.For, cst.While)


class ProjectFiles(Protocol):
    """The project around a linted file (nnlint.project.Project, which sits above the script model it
    builds for its other files: that model is `Any` here). What rules and the script model ask of it."""

    def contexts(self) -> list[FileContext]:
        """The project files read so far."""
        ...

    def function(self, context: FileContext, call: cst.Call) -> tuple[Any, cst.FunctionDef] | None:
        """(script model, function) of another project file that `call` runs."""
        ...

    def class_of(self, context: FileContext, expr: cst.BaseExpression) -> tuple[Any, cst.ClassDef] | None:
        """(script model, class) of another project file that `expr` names."""
        ...


class FileContext:
    def __init__(
        self, path: str, source: str, module: cst.Module, location: Path | None = None, project: ProjectFiles | None = None
    ) -> None:
        self.path = path
        # Where the file is on disk and the project around it: for following calls into other files.
        self.location = location
        self.project = project
        self.source = source
        self.module = module
        self.imports = ImportTable()
        # The nodes enclosing the one being visited, outermost first (the node itself excluded).
        self.ancestors: list[cst.CSTNode] = []
        self._positions = None
        self._shared: dict[object, object] = {}

    def position(self, node: cst.CSTNode) -> CodeRange:
        """Where a node is (1-based lines, 0-based columns). Resolved once per file, on first use:
        most files have no finding and never pay for it."""
        if self._positions is None:
            self._positions = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        return self._positions[node]

    def where(self, node: cst.CSTNode) -> tuple[FileContext, CodeRange]:
        """The file a node is in and its position there: this file, or a project file whose code a
        rule followed a call into (nnlint.project)."""
        for context in [self, *(self.project.contexts() if self.project is not None else ())]:
            try:
                return context, context.position(node)
            except KeyError:
                continue
        raise KeyError(f"{type(node).__name__} is in no file read for {self.path}")

    def at(self, node: cst.CSTNode) -> str:
        """Where a node is, for messages: "line 41" in this file, "engine.py:41" in another."""
        home, position = self.where(node)
        return f"line {position.start.line}" if home is self else f"{home.path}:{position.start.line}"

    def shared(self, key: object, build: Callable[[], T]) -> T:
        """A fact computed once per file by whichever rule asks first (e.g. the training facts)."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]  # type: ignore[return-value]

    def qualified_name(self, node: cst.BaseExpression) -> str | None:
        return self.imports.qualified_name(node)

    def call_name(self, call: cst.Call) -> str | None:
        """The qualified name of the function a call invokes, e.g. `torch.nn.functional.dropout`."""
        return self.imports.qualified_name(call.func)

    def _innermost(self, types: type | tuple[type, ...]) -> cst.CSTNode | None:
        for node in reversed(self.ancestors):
            if isinstance(node, types):
                return node
        return None

    def current_statement(self) -> cst.CSTNode | None:
        return self._innermost(_STATEMENT_TYPES)

    def enclosing_function(self) -> cst.FunctionDef | None:
        return self._innermost(cst.FunctionDef)

    def enclosing_class(self) -> cst.ClassDef | None:
        return self._innermost(cst.ClassDef)

    def enclosing_method(self) -> tuple[cst.ClassDef, cst.FunctionDef] | None:
        """(class, method) when the innermost function is defined directly in a class body."""
        for index in range(len(self.ancestors) - 1, -1, -1):
            node = self.ancestors[index]
            if isinstance(node, cst.FunctionDef):
                # A method's parents are: ClassDef > IndentedBlock > FunctionDef.
                if index >= 2 and isinstance(self.ancestors[index - 2], cst.ClassDef):
                    return self.ancestors[index - 2], node
                return None
        return None

    def enclosing_loops(self) -> list[cst.For | cst.While]:
        """Loops around the current node inside the current function, outermost first."""
        loops = []
        for node in reversed(self.ancestors):
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                break
            if isinstance(node, _LOOP_TYPES):
                loops.append(node)
        return loops[::-1]
