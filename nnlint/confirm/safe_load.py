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
with nothing to run, unless a skipped assignment binds what it needs: that
assignment then runs, once, and the statement again (`_demand`); so does one
whose name another module imports (`from utils.config import opt`). Project
modules imported by a loaded module are loaded the same way (`SafeImporter`;
one not importable from here, from where it lies in the project); installed
packages are imported normally, also from a virtualenv inside the project
(`.venv/lib/python3.X/site-packages`); a package that is not installed gets a
stand-in that fails only when used (`install_stand_ins`).
`[tool.nnlint.confirm] full-import = true` turns this off.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import sys
import types
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

_CALL_FREE = (
    ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Set, ast.Dict,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Slice, ast.Starred,
    ast.arguments, ast.arg, ast.keyword, ast.Load, ast.Store, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
    ast.JoinedStr, ast.FormattedValue,
)  # fmt: skip


# Builtins that build a value from their arguments and run nothing else (`IMAGENET_STD = tuple([0.2] * 3)`,
# `_registry = set()`): calls of these on call-free arguments are kept like constants.
_PURE_BUILTINS = frozenset({"tuple", "list", "dict", "set", "frozenset", "int", "float", "str", "bool", "len", "range"})


def _calls_nothing(expr: ast.AST | None) -> bool:
    """True for a value that runs no user code when evaluated; a lambda's body runs only when called."""
    if expr is None or isinstance(expr, ast.Lambda):
        return True
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in _PURE_BUILTINS:
        return all(_calls_nothing(argument) for argument in [*expr.args, *(k.value for k in expr.keywords)])
    return isinstance(expr, _CALL_FREE) and all(_calls_nothing(child) for child in ast.iter_child_nodes(expr))


def _is_main_guard(test: ast.expr) -> bool:
    names = {node.id for node in ast.walk(test) if isinstance(node, ast.Name)}
    constants = {node.value for node in ast.walk(test) if isinstance(node, ast.Constant)}
    return "__name__" in names and "__main__" in constants


def _guarded(statement: ast.stmt, filename: str) -> ast.Try:
    """`statement`, dropped at run time if it fails (it names a skipped statement), unless what it
    needs is bound by a skipped assignment: `_retry` runs that, then the statement again."""
    error = "__nnlint_error__"
    fromlist = ast.List([ast.Constant("_retry")], ast.Load())
    this_module = ast.Call(ast.Name("__import__", ast.Load()), [ast.Constant(__name__), ast.Constant(None), ast.Constant(None), fromlist], [])
    retry = ast.Call(
        ast.Attribute(this_module, "_retry", ast.Load()),
        [ast.Name(error, ast.Load()), ast.Constant(filename), ast.Constant(statement.lineno), ast.Call(ast.Name("globals", ast.Load()), [], [])],
        [],
    )  # fmt: skip
    handler = ast.ExceptHandler(type=ast.Name("Exception", ast.Load()), name=error, body=[ast.Expr(retry)])
    return ast.Try(body=[statement], handlers=[handler], orelse=[], finalbody=[])


def _definitions(body: list[ast.stmt], plan: _Plan) -> list[ast.stmt]:
    kept: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            kept.append(statement)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # Guarded: a base or decorator may name a skipped statement (`class Pipe(namedtuple(...))`).
            kept.append(plan.guarded(statement))
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            kept.append(statement)  # the docstring
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and _calls_nothing(statement.value):
            kept.append(plan.guarded(statement))
        elif isinstance(statement, ast.Try):
            kept.append(
                ast.Try(
                    body=_definitions(statement.body, plan) or [ast.Pass()],
                    handlers=[
                        ast.ExceptHandler(type=h.type, name=h.name, body=_definitions(h.body, plan) or [ast.Pass()])
                        for h in statement.handlers
                    ],
                    orelse=_definitions(statement.orelse, plan),
                    finalbody=_definitions(statement.finalbody, plan),
                )
            )
        elif isinstance(statement, ast.If) and _calls_nothing(statement.test) and not _is_main_guard(statement.test):
            body, orelse = _definitions(statement.body, plan), _definitions(statement.orelse, plan)
            if body or orelse:  # `if use_gpu: model = model.cuda()` keeps nothing: its test need not run
                kept.append(plan.guarded(ast.copy_location(ast.If(statement.test, body or [ast.Pass()], orelse), statement)))
        else:
            plan.skip(statement)
    return kept


class _Plan:
    """One module's definitions-only plan: the kept statements that may be run again, by line, and the
    skipped assignments (at top level or in a kept `if`/`try`), by the names they bind (each run at
    most once, on demand)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.kept: dict[int, ast.stmt] = {}
        self.skipped: dict[str, ast.stmt] = {}
        self.demanded: set[str] = set()

    def guarded(self, statement: ast.stmt) -> ast.Try:
        self.kept[statement.lineno] = statement
        return _guarded(statement, self.filename)

    def skip(self, statement: ast.stmt) -> None:
        if isinstance(statement, ast.Assign):
            targets = [t for target in statement.targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets = [statement.target]
        else:
            return  # calls, loops, `with`, the __main__ block: never run
        for target in targets:
            if isinstance(target, ast.Name):
                self.skipped.setdefault(target.id, statement)

    def run(self, statement: ast.stmt, namespace: dict) -> None:
        """`statement` alone in the module's namespace, first running the skipped assignments it needs."""
        code = compile(ast.fix_missing_locations(ast.Module([statement], [])), self.filename, "exec")
        while True:
            try:
                exec(code, namespace)
                return
            except Exception as error:
                if not _demand(error):
                    raise


_PLANS: dict[str, _Plan] = {}  # by file name, for `_retry` and `_demand`


def _demand(error: BaseException) -> bool:
    """When `error` is a NameError for a global of a definitions-only module that one of its skipped
    assignments binds (`_autowrap = set()`, `opt = Config()`), run that assignment (once) and say so."""
    if not isinstance(error, NameError) or not error.name or error.__traceback__ is None:
        return False
    trace = error.__traceback__
    while trace.tb_next is not None:
        trace = trace.tb_next
    frame = trace.tb_frame
    plan = _PLANS.get(frame.f_code.co_filename)
    if plan is None or error.name not in plan.skipped or error.name in plan.demanded:
        return False
    _run_skipped(plan, error.name, frame.f_globals)
    return error.name in frame.f_globals


def _run_skipped(plan: _Plan, name: str, namespace: dict) -> None:
    """The skipped assignment that binds `name`, run once; computed from a stand-in, its names are
    stand-ins too; any other failure leaves them unbound (`args = parser.parse_args()` exits)."""
    plan.demanded.add(name)
    assignment = plan.skipped[name]
    try:
        plan.run(assignment, namespace)
    except MissingModuleUsed as missing:
        _bind_stand_ins(assignment, namespace, missing)
    except (Exception, SystemExit):
        pass


def _retry(error: Exception, filename: str, line: int, namespace: dict) -> None:
    """A kept statement failed: run it again once what it needs is bound (`_demand`). One that fails
    for a package not installed binds stand-ins instead (`class Crop(nn.Module)` whose body uses
    torchvision's InterpolationMode: importing it still works, using it names torchvision); any other
    failure drops it."""
    plan = _PLANS.get(filename)
    statement = plan.kept.get(line) if plan is not None else None
    if statement is None:
        return
    try:
        if _demand(error):
            plan.run(statement, namespace)
            return
    except MissingModuleUsed as missing:
        error = missing
    except Exception:
        return
    if isinstance(error, MissingModuleUsed):
        _bind_stand_ins(statement, namespace, error)


def _bind_stand_ins(statement: ast.stmt, namespace: dict, missing: MissingModuleUsed) -> None:
    """The names `statement` defines or assigns, bound to the stand-in whose use stopped it."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names = [statement.name]
    elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        names = [node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)]
    else:
        return
    for name in names:
        namespace[name] = _stand_in(missing.name)


def _skipped_attribute(module: types.ModuleType, name: str):
    """A definitions-only module's `__getattr__`: `from utils.config import opt` runs `opt = Config()`."""
    plan = _PLANS.get(getattr(module, "__file__", None) or "")
    if plan is not None and name in plan.skipped and name not in plan.demanded:
        _run_skipped(plan, name, module.__dict__)
    if name in module.__dict__:
        return module.__dict__[name]
    raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")


def definitions_only(source: str | bytes, filename: str):
    """The module's code object with only its definitions (see the module docstring); line numbers kept.
    A skipped top-level assignment runs when a kept statement needs it (`_demand`)."""
    tree = ast.parse(source, filename)
    plan = _PLANS[filename] = _Plan(filename)
    tree.body = _definitions(tree.body, plan)
    return compile(ast.fix_missing_locations(tree), filename, "exec")


class _DefinitionsLoader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        return definitions_only(data, path)

    def exec_module(self, module) -> None:
        super().exec_module(module)
        if "__getattr__" not in module.__dict__:  # an importer may need a skipped assignment's name
            module.__getattr__ = partial(_skipped_attribute, module)

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


# -- stand-ins for missing packages ----------------------------------------------------------
#
# A training script imports its data pipeline (`torchvision`, `numpy`, `gymnasium`) beside its model;
# the model rarely needs them. A top-level package that no finder can import, imported by a file of
# the project outside any `try ... except ImportError`, is bound to a stand-in module: every name taken
# from it while the user's modules load (`from torchvision import datasets`, `tv.transforms.Compose`,
# a base class `class MyDS(datasets.MNIST)`, an annotation `np.ndarray`) is a stand-in class, and any
# use (a call or an instantiation, arithmetic, iteration, isinstance, an attribute taken once loading is
# over) raises `MissingModuleUsed` naming the package and the user's line. Never `torch`, never a module
# of the project (a missing one is a real error), never for an import that torch or an installed
# package makes (their optional imports must fail as usual).

STOOD_IN: list[str] = []  # the top-level packages stood in for in this process, in import order
# An installed module that failed to import for a missing package its own code imports, stood in itself:
# module name -> that package (`{"torch.utils.tensorboard": "tensorboard"}`), for the messages.
_NEEDS: dict[str, str] = {}
_NEVER = frozenset({"torch", "__main__", "__future__", "builtins"})
_LOADING = [0]  # >0 while the user's modules are being imported (names may be taken from stand-ins)


class MissingModuleUsed(Exception):
    """A stand-in for a package that is not installed was used; `path`:`line` is the user's line."""

    def __init__(self, module: str, name: str, path: str | None, line: int | None) -> None:
        self.module, self.name, self.path, self.line = module, name, path, line
        where = f" at {Path(path).name}:{line}" if path else ""
        super().__init__(f"`{module}` is not installed: `{name}` used{where}")

    def needs(self, model: str) -> str:
        """The NN902 sentence: what the model needs and where it used it."""
        where = f", used at {Path(self.path).name}:{self.line}" if self.path else ""
        return f"model {model} needs `{self.module}` (not installed){where} (`{self.name}`)"


@contextmanager
def loading_user_modules():
    """While the user's modules load, names may be taken from stand-ins (at use time that is a use)."""
    _LOADING[0] += 1
    try:
        yield
    finally:
        _LOADING[0] -= 1
        if not _LOADING[0]:  # the user's modules hold their stand-ins; torch's own imports must not find them
            for name, module in list(sys.modules.items()):
                if isinstance(module, _MissingModule):
                    del sys.modules[name]
                    parent, _, child = name.rpartition(".")
                    if getattr(sys.modules.get(parent), child, None) is module:  # torch.utils.tensorboard
                        delattr(sys.modules[parent], child)


def _user_frame(roots: list[Path]):
    """The innermost frame running a file under `roots` (not an installed package): the user's line."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and _under(filename, roots):
            return frame
        frame = frame.f_back
    return None


def _under(filename: str, roots: list[Path]) -> bool:
    path = Path(filename)
    return any(path.is_relative_to(root) for root in roots) and not _installed(path)


def _used(name: str):
    """A MissingModuleUsed for `name` (dotted), at the user's innermost line."""
    frame = _user_frame(_StandInFinder.roots)
    package = next((needs for module, needs in _NEEDS.items() if f"{name}.".startswith(f"{module}.")), None)
    package = package or name.partition(".")[0]
    return MissingModuleUsed(package, name, frame and frame.f_code.co_filename, frame and frame.f_lineno)


def _raises(operation: str):
    def use(cls, *args, **kwargs):
        raise _used(cls._missing_name)

    use.__name__ = operation
    return use


class _Missing(type):
    """The metaclass of stand-ins: a stand-in class can be named, subclassed and annotated with; using it
    (or instantiating a subclass) raises MissingModuleUsed."""

    def __getattr__(cls, name: str):
        if name.startswith("__") or not _LOADING[0]:
            if name.startswith("__"):
                raise AttributeError(name)
            raise _used(f"{cls._missing_name}.{name}")
        return _stand_in(f"{cls._missing_name}.{name}")

    def __getitem__(cls, item):  # `npt.NDArray[np.float32]` in an annotation
        if not _LOADING[0]:
            raise _used(cls._missing_name)
        return cls

    def __call__(cls, *args, **kwargs):
        raise _used(cls._missing_name)

    __instancecheck__ = _raises("__instancecheck__")
    __subclasscheck__ = _raises("__subclasscheck__")
    __iter__ = _raises("__iter__")
    __len__ = _raises("__len__")
    __contains__ = _raises("__contains__")
    __enter__ = _raises("__enter__")
    __float__ = _raises("__float__")
    __int__ = _raises("__int__")
    __index__ = _raises("__index__")


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "lt", "le", "gt", "ge"):
    setattr(_Missing, f"__{_op}__", _raises(f"__{_op}__"))
    setattr(_Missing, f"__r{_op}__", _raises(f"__r{_op}__"))


_STAND_INS: dict[str, type] = {}


def _stand_in(name: str) -> type:
    """The stand-in class for the dotted `name` (one per name: `from x import A` twice gives one class)."""
    if name not in _STAND_INS:
        parent, _, short = name.rpartition(".")
        _STAND_INS[name] = _Missing(short, (), {"_missing_name": name, "__module__": parent})
    return _STAND_INS[name]


def is_stand_in(value) -> bool:
    """Whether `value` is a stand-in for something of a package that is not installed."""
    return isinstance(value, (_Missing, _MissingModule))


class _MissingModule(types.ModuleType):
    """A stand-in module (a package: its submodules are stand-ins too)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if not _LOADING[0]:
            raise _used(f"{self.__name__}.{name}")
        return _stand_in(f"{self.__name__}.{name}")


class _StandInLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _MissingModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module) -> None:
        pass


class _StandInFinder(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path: asked only for what no other finder found (see above)."""

    roots: list[Path] = []
    project_names: dict[str, set[Path]] = {}  # a top-level module name of the project -> the directories holding it

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        importer = _importer()
        if importer is None or not _under(importer.f_code.co_filename, self.roots):
            return None  # torch's or an installed package's optional import: it must fail as usual
        if top in self.project_names and "." not in fullname:
            return self._where_it_lies(fullname, Path(importer.f_code.co_filename))
        if top not in STOOD_IN:
            if "." in fullname or top in _NEVER:
                return None  # a submodule missing from a real package, torch
            if _guarded_import(importer.f_code.co_filename, importer.f_lineno):
                return None  # `try: import apex except ImportError:` has its own fallback
            STOOD_IN.append(top)
        return importlib.machinery.ModuleSpec(fullname, _StandInLoader(), is_package=True)

    def _where_it_lies(self, name: str, importer: Path):
        """A module of the project that is not importable from here, loaded from where it lies: the
        directory nearest above the importer that holds it (`sys.path.insert(0, "..")` in a notebook),
        else the only one (`sys.path.append("../../helpers")`). Several elsewhere: an import error."""
        places = self.project_names[name]
        above = [place for place in places if importer.is_relative_to(place)]
        if not above and len(places) != 1:
            return None
        place = max(above, key=lambda place: len(place.parts)) if above else next(iter(places))
        spec = importlib.machinery.PathFinder.find_spec(name, [str(place)])
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            spec.loader = _DefinitionsLoader(name, spec.origin)
        return spec


class _InstalledModuleFinder(importlib.abc.MetaPathFinder):
    """First on sys.meta_path: an installed module that a file of the project imports itself, loaded so
    that if its own code fails to import a package that is not installed (`torch.utils.tensorboard`
    imports `tensorboard`), the module becomes a stand-in naming that package, used as the others are."""

    def find_spec(self, fullname, path=None, target=None):
        if not _LOADING[0] or fullname in _NEVER:
            return None
        importer = _importer()
        if importer is None or not _under(importer.f_code.co_filename, _StandInFinder.roots):
            return None
        if _guarded_import(importer.f_code.co_filename, importer.f_lineno):
            return None  # `try: from torch.utils.tensorboard import SummaryWriter except ImportError:`
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not spec.origin or not _installed(Path(spec.origin)):
            return None
        spec.loader = _StandInOnMissingPackage(spec.loader)
        return spec


class _StandInOnMissingPackage:
    """An installed module's loader: a ModuleNotFoundError for a top-level package that is not installed
    turns the module into a stand-in (see _InstalledModuleFinder); anything else is left to the loader."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            self.loader.exec_module(module)
        except ModuleNotFoundError as error:
            missing = (error.name or "").partition(".")[0]
            if not missing or missing in _NEVER or importlib.machinery.PathFinder.find_spec(missing) is not None:
                raise
            _NEEDS[module.__name__] = missing
            if missing not in STOOD_IN:
                STOOD_IN.append(missing)
            module.__class__ = _MissingModule


def _importer():
    """The frame whose statement is importing (the first one outside importlib and this module)."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith("<frozen") or filename in (importlib.__file__, __file__)):
            return frame
        frame = frame.f_back
    return None


@lru_cache(maxsize=256)
def _import_guards(filename: str) -> tuple[tuple[int, int], ...]:
    """The line spans of `try` bodies in `filename` whose handlers catch an ImportError."""
    try:
        tree = ast.parse(Path(filename).read_bytes(), filename)
    except (OSError, SyntaxError, ValueError):
        return ()
    catching = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and node.body:
            names = set()
            for handler in node.handlers:
                if handler.type is None:
                    names.add("Exception")
                else:
                    caught = ast.walk(handler.type)
                    names |= {n.id if isinstance(n, ast.Name) else getattr(n, "attr", "") for n in caught}
            if names & catching:
                spans.append((node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno))
    return tuple(spans)


def _guarded_import(filename: str, line: int) -> bool:
    return any(start <= line <= end for start, end in _import_guards(filename))


def install_stand_ins(roots: list[Path], files: set[str]) -> None:
    """Stand-ins for the packages the project's files import but are not installed (see above)."""
    _StandInFinder.roots = [root.resolve() for root in roots]
    names: dict[str, set[Path]] = {}
    for file in files:  # a module of the project is never stood in, even when it is not importable from here
        path = Path(file).resolve()
        root = next((root for root in _StandInFinder.roots if path.is_relative_to(root)), path.parent)
        for name, directory in _top_level_names(path, root):
            names.setdefault(name, set()).add(directory)
    _StandInFinder.project_names = names
    if not any(isinstance(finder, _StandInFinder) for finder in sys.meta_path):
        sys.meta_path.append(_StandInFinder())
        sys.meta_path.insert(0, _InstalledModuleFinder())


def _top_level_names(path: Path, root: Path) -> list[tuple[str, Path]]:
    """The names under which `path` or a package above it (up to `root`) can be imported at top level,
    with the directory that holds each:
    the file's stem when its directory is not a package, and each package (a directory with an
    `__init__.py`) whose parent is not one. A module inside a package (`d2l/jax.py`, `utils/datasets.py`
    beside an `__init__.py`) does not shadow the package it is named after, nor does a directory of
    scripts (`examples/transformers/`): `import jax`, `import transformers` are the third-party packages."""
    parts = path.relative_to(root).with_suffix("").parts
    package = [(root.joinpath(*parts[: depth + 1]) / "__init__.py").is_file() for depth in range(len(parts) - 1)] + [True]
    return [
        (part, root.joinpath(*parts[:depth])) for depth, part in enumerate(parts)
        if package[depth] and (depth == 0 or not package[depth - 1])
    ]  # fmt: skip
