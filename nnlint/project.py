"""The project around the file being linted: its other files, read when the file calls into them.

A training script often keeps its loop in one file and its steps in another (`train.py` calls
`train_one_epoch` and `evaluate` from `engine.py`). The script model follows such a call into the
other file (nnlint.script.timeline), the way it follows a call of the file's own functions; this
module finds that file from the import (`from engine import ...`, `from .engine import ...`,
`import utils.engine as engine`), below the project root only, and reads it once per process (a
long-running language server tells it when files change: `Project.edited`, `Project.refresh`).

A file is read only when a rule asks for a name it defines (a function the run calls, a model class),
once per process; a function is followed only if its code can hold a training event (a `backward`, a
`step`, a mode switch, a `no_grad` block), itself or through the functions of its file it calls.

Lookups and reads go through nnlint.project_reads and are recorded: `reads_of` says what a linted
file's findings may depend on, so that the cache can tell when they must be computed again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
import libcst as cst

from nnlint.context import FileContext
from nnlint.project_reads import Reads, find_module_file, read_source
from nnlint.script import Script, script_model
from nnlint.tree import walk_with_ancestors

# Code without any of these cannot change what a training run does: a function of another file is
# followed only if its code, or that of a function of its file it calls, has one.
_TRAINING_WORDS = (
    "backward(", "step(", ".eval()", ".train(", "zero_grad", "no_grad", "inference_mode", "scaler(", "grad = None",
)  # fmt: skip
# A file that runs training or evaluation names its data or epochs; calls are followed only from such
# a file (a model definition's calls of the project's helpers change no training run).
_RUN_WORDS = ("epoch", "loader", "Loader", "backward(", "zero_grad")


@dataclass(frozen=True)
class _Outline:
    """What a file's text says before it is parsed: its top-level functions and classes, and whether it
    has a training word at all (most imported files are never parsed)."""

    functions: frozenset[str]
    classes: frozenset[str]
    trains: bool

    @staticmethod
    def of(text: str) -> _Outline:
        return _Outline(
            frozenset(re.findall(r"^(?:async\s+)?def\s+(\w+)", text, re.MULTILINE)),
            frozenset(re.findall(r"^class\s+(\w+)", text, re.MULTILINE)),
            any(word in text for word in _TRAINING_WORDS),
        )


class Project:
    """The Python files under `root`, each parsed at most once, on first call into it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        # Editor buffers not saved yet, read instead of the disk (nnlint.lsp): see `edited`.
        self._unsaved: dict[Path, str] = {}
        self._forget()

    def _forget(self) -> None:
        self._texts: dict[Path, str | None] = {}
        self._digests: dict[Path, str | None] = {}
        # (mtime, size) of each file read from disk, to notice a change made outside the editor.
        self._stamps: dict[Path, tuple[int, int] | None] = {}
        # Every module lookup, by importing file, memoised or not: what `reads_of` reports.
        self._lookups: dict[Path, dict[str, Path | None]] = {}
        self._outlines: dict[Path, _Outline | None] = {}
        self._scripts: dict[Path, Script | None] = {}
        self._relevant: dict[cst.FunctionDef, bool] = {}
        self._files: dict[tuple[Path, str], Path | None] = {}

    def edited(self, path: Path, unsaved: str | None) -> None:
        """A long-running process (the language server) says a file changed: `unsaved` is its text in an
        editor buffer, read instead of the disk's from now on (None: the disk's again, once saved or closed).

        Everything read so far is forgotten, not only that file: a file's script model keeps what it
        learnt from the files it calls into, and a new file can change what an import resolves to."""
        path = path.resolve()
        if unsaved is None:
            self._unsaved.pop(path, None)
        else:
            self._unsaved[path] = unsaved
        self._forget()

    def refresh(self) -> None:
        """Forget everything read so far if a file read from disk has changed there since (a checkout,
        another tool): one stat per file read, for a long-running process to call before each lint."""
        if any(_stamp(path) != stamp for path, stamp in self._stamps.items()):
            self._forget()

    def function(self, context: FileContext, call: cst.Call) -> tuple[Script, cst.FunctionDef] | None:
        """The module-level function of another project file that `call` runs, with that file's script
        model: `train_one_epoch(...)` after `from engine import train_one_epoch`, `engine.evaluate(...)`.
        Only a function whose code can hold a training event is followed (most imported helpers, such as
        timm's `trunc_normal_`, cannot: inlining them at each of their calls would only cost time)."""
        if not context.shared(_RUN_WORDS, lambda: any(word in context.source for word in _RUN_WORDS)):
            return None
        path, name = self._definition(context, call.func)
        outline = self._outline(path) if path is not None else None
        if outline is None or name not in outline.functions or not outline.trains:
            return None
        script = self._script(path)
        if script is None:
            return None
        candidates = [f for f in script.index.functions.get(name, []) if f not in script.index.owner_class]
        if len(candidates) != 1 or not self._trains_or_evaluates(script, candidates[0], set()):
            return None
        return script, candidates[0]

    def _trains_or_evaluates(self, script: Script, function: cst.FunctionDef, seen: set) -> bool:
        """The function's code, or that of a function of its file it calls, has a training word."""
        if function not in self._relevant:
            seen.add(function)
            code = script.context.module.code_for_node(function)
            callees = {script.index.callee(call, caller) for call, caller in script.index.calls if caller is function}
            self._relevant[function] = any(word in code for word in _TRAINING_WORDS) or any(
                self._trains_or_evaluates(script, callee, seen) for callee in callees if callee is not None and callee not in seen
            )
        return self._relevant[function]

    def class_of(self, context: FileContext, expr: cst.BaseExpression) -> tuple[Script, cst.ClassDef] | None:
        """The class of another project file that `expr` names (`Net` after `from model import Net`,
        `models.Net` after `import models`), with that file's script model."""
        path, name = self._definition(context, expr)
        outline = self._outline(path) if path is not None else None
        script = self._script(path) if outline is not None and name in outline.classes else None
        cls = script.index.classes.get(name) if script is not None else None
        return (script, cls) if cls is not None else None

    def _definition(self, context: FileContext, expr: cst.BaseExpression) -> tuple[Path | None, str]:
        """The project file a name imported into `context` comes from, and the name there."""
        qualified = context.qualified_name(expr)
        if qualified is None or context.location is None:
            return None, ""
        module, _, name = qualified.rpartition(".")
        return self._module_file(context.location, module), name

    def contexts(self) -> list[FileContext]:
        """The project files read so far."""
        return [script.context for script in self._scripts.values() if script is not None]

    def _module_file(self, importer: Path, module: str) -> Path | None:
        """The file of `module` as imported from `importer`, once per directory and module: a file
        calls the same imported names many times."""
        key = (importer.parent, module)
        if key not in self._files:
            self._files[key] = find_module_file(self.root, importer.parent, module)
        self._lookups.setdefault(importer, {})[module] = self._files[key]
        return self._files[key]

    def reads_of(self, location: Path) -> Reads:
        """What linting the file at `location` may have read of the project: the lookups made from it
        and, transitively, from the files they found (whose script models it used), with the digests
        of the files read. A superset: other files' lints may have made more lookups from those files,
        and a record that says too much only costs a re-lint, one that says too little a wrong result."""
        lookups: set[tuple[str, str, str | None]] = set()
        files: dict[str, str | None] = {}
        pending, seen = [location], {location}
        while pending:
            importer = pending.pop()
            for module, found in self._lookups.get(importer, {}).items():
                lookups.add((str(importer.parent), module, str(found) if found is not None else None))
                if found is not None and found not in seen:
                    seen.add(found)
                    pending.append(found)
                    if found in self._digests:
                        files[str(found)] = self._digests[found]
        return Reads(tuple(sorted(lookups, key=str)), tuple(sorted(files.items(), key=str)))

    def _outline(self, path: Path) -> _Outline | None:
        if path not in self._outlines:
            text = self._text(path)
            self._outlines[path] = _Outline.of(text) if text is not None else None
        return self._outlines[path]

    def _text(self, path: Path) -> str | None:
        if path in self._unsaved:
            return self._unsaved[path]
        if path not in self._texts:
            self._stamps[path] = _stamp(path)
            self._texts[path], self._digests[path] = read_source(path)
        return self._texts[path]

    def _script(self, path: Path) -> Script | None:
        if path not in self._scripts:
            self._scripts[path] = self._read(path)
        return self._scripts[path]

    def _read(self, path: Path) -> Script | None:
        text = self._text(path)
        if text is None:
            return None
        try:
            module = cst.parse_module(text)
        except (cst.ParserSyntaxError, RecursionError):
            return None  # its own lint run reports it (NN901)
        shown = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else path.name
        context = FileContext(shown, text, module, location=path, project=self)
        for node, _ in walk_with_ancestors(module):  # in source order: a later import wins
            if isinstance(node, cst.Import):
                context.imports.add_import(node)
            elif isinstance(node, cst.ImportFrom):
                context.imports.add_import_from(node)
        return script_model(context)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@cache
def project_at(root: str) -> Project:
    """One project per root in a process (each worker of a parallel run keeps its own)."""
    return Project(Path(root))
