"""Load the user's modules without running their scripts.

A training script imported as-is starts training. By default the confirm pass
executes only the parts of a module that define things:

kept     imports; `def`/`class` statements (with their decorators and whole
         class bodies); assignments whose value calls nothing (`EPOCHS = 20`,
         `MEAN = (0.5, 0.5)`, `ACT = nn.GELU`); `try` and `if` blocks made of
         those (`if __name__ == "__main__":` excepted)
skipped  every other top-level statement: calls (`main()`, `model = Net()`,
         `args = parser.parse_args()`), loops, `with` blocks, the
         `__main__` block, `del`, `raise`, `assert`

A kept assignment, `if`, `def` or `class` that fails (its value, test, base
or decorator names something skipped) is dropped too, as is an `if` left
with nothing to run. Project modules imported by a loaded module are loaded the same way
(`SafeImporter`); installed packages are imported normally, also from a
virtualenv inside the project (`.venv/lib/python3.X/site-packages`).
`[tool.nnlint.confirm] full-import = true` turns this off.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

_CALL_FREE = (
    ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Set, ast.Dict,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Slice, ast.Starred,
    ast.arguments, ast.arg, ast.keyword, ast.Load, ast.Store, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
    ast.JoinedStr, ast.FormattedValue,
)  # fmt: skip


def _calls_nothing(expr: ast.AST | None) -> bool:
    """True for a value that runs no user code when evaluated; a lambda's body runs only when called."""
    if expr is None or isinstance(expr, ast.Lambda):
        return True
    return isinstance(expr, _CALL_FREE) and all(_calls_nothing(child) for child in ast.iter_child_nodes(expr))


def _is_main_guard(test: ast.expr) -> bool:
    names = {node.id for node in ast.walk(test) if isinstance(node, ast.Name)}
    constants = {node.value for node in ast.walk(test) if isinstance(node, ast.Constant)}
    return "__name__" in names and "__main__" in constants


def _guarded(statement: ast.stmt) -> ast.Try:
    """`statement`, dropped at run time if it fails (it names a skipped statement)."""
    handler = ast.ExceptHandler(type=ast.Name("Exception", ast.Load()), name=None, body=[ast.Pass()])
    return ast.Try(body=[statement], handlers=[handler], orelse=[], finalbody=[])


def _definitions(body: list[ast.stmt]) -> list[ast.stmt]:
    kept: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            kept.append(statement)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # Guarded: a base or decorator may name a skipped statement (`class Pipe(namedtuple(...))`).
            kept.append(_guarded(statement))
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            kept.append(statement)  # the docstring
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and _calls_nothing(statement.value):
            kept.append(_guarded(statement))
        elif isinstance(statement, ast.Try):
            kept.append(
                ast.Try(
                    body=_definitions(statement.body) or [ast.Pass()],
                    handlers=[
                        ast.ExceptHandler(type=h.type, name=h.name, body=_definitions(h.body) or [ast.Pass()])
                        for h in statement.handlers
                    ],
                    orelse=_definitions(statement.orelse),
                    finalbody=_definitions(statement.finalbody),
                )
            )
        elif isinstance(statement, ast.If) and _calls_nothing(statement.test) and not _is_main_guard(statement.test):
            body, orelse = _definitions(statement.body), _definitions(statement.orelse)
            if body or orelse:  # `if use_gpu: model = model.cuda()` keeps nothing: its test need not run
                kept.append(_guarded(ast.If(test=statement.test, body=body or [ast.Pass()], orelse=orelse)))
    return kept


def definitions_only(source: str | bytes, filename: str):
    """The module's code object with only its definitions (see the module docstring); line numbers kept."""
    tree = ast.parse(source, filename)
    tree.body = _definitions(tree.body)
    return compile(ast.fix_missing_locations(tree), filename, "exec")


class _DefinitionsLoader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        return definitions_only(data, path)

    def get_code(self, fullname):
        # Skip the bytecode cache: a cached full module must never be run instead.
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class SafeImporter(importlib.abc.MetaPathFinder):
    """Imports modules whose files lie under `roots` with `definitions_only`."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [root.resolve() for root in roots]

    def find_spec(self, fullname, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        origin = Path(spec.origin).resolve()
        if not any(origin.is_relative_to(root) for root in self.roots) or _installed(origin):
            return None
        spec.loader = _DefinitionsLoader(fullname, spec.origin)
        return spec

    def install(self) -> None:
        sys.meta_path.insert(0, self)


def _installed(origin: Path) -> bool:
    """A module of an installed package: its module-level calls (`_logger = logging.getLogger()`) must run."""
    return any(part in ("site-packages", "dist-packages") for part in origin.parts)


def module_name(path: Path) -> tuple[str, Path]:
    """(dotted module name, the sys.path entry it is importable from), as a script's directory
    or the top of its package chain (directories with an `__init__.py`)."""
    parts = [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts), directory
