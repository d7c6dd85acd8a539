"""Lint many files: in parallel worker processes, robust to a worker dying, in a stable order.

A run whose files all come from the cache (nnlint.results_cache) imports neither libcst nor the rules:
the static pass is imported only when a file has to be linted.
"""

from __future__ import annotations

import gc
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

from nnlint.config import Settings
from nnlint.finding import PARSE_ERROR, Diagnostic, FileResult, Finding
from nnlint.notebook import is_notebook, lint_notebook
from nnlint.project_reads import Reads
from nnlint.registry import RuleInfo

INTERNAL_ERROR = "NN900"

# Below this many files, starting worker processes costs more than it saves.
_PARALLEL_THRESHOLD = 8
# libcst builds hundreds of thousands of nodes per file, none in a reference cycle; at CPython's default
# thresholds the cycle collector runs over them again and again for nothing (a sixth of libcst's parse time
# on timm). Collecting far less often, as mypy does, keeps that time; what cycles there are are still freed.
_GC_THRESHOLDS = (200_000, 30, 30)


@dataclass(frozen=True)
class FileTask:
    path: str  # as shown to the user
    absolute: str
    rule_codes: tuple[str, ...]
    max_file_size: int
    root: str  # the project root: calls into files below it are followed
    # The file's bytes (as `read_file` reads them) when the caller has read them (the cache, to key its
    # result by them): they are linted as they are, so a stored result belongs to exactly these bytes.
    source: bytes | None = field(default=None, repr=False)


class ResultStore(Protocol):
    """Results kept between runs (nnlint.results_cache.ResultCache)."""

    def fetch(self, task: FileTask) -> tuple[FileResult | None, FileTask]:
        """The stored result of `task`, or None and the task to lint (with its `source`)."""
        ...

    def store(self, task: FileTask, result: FileResult, reads: Reads) -> None:
        """Keep the result of a task `fetch` returned, with what its lint read of the project."""
        ...

    def close(self) -> None:
        """After the run: keep the store within its size."""
        ...


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    seconds: float = 0.0
    confirm: dict[str, int] | None = None  # with --confirm: files probed, models found, built and probed


def display_path(path: Path, cwd: Path) -> str:
    """Relative to the current directory where possible, always with forward slashes."""
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return os.path.relpath(path, cwd).replace(os.sep, "/") if path.anchor == cwd.anchor else path.as_posix()


def file_task(path: Path, settings: Settings, selected: list[RuleInfo], cwd: Path) -> FileTask:
    """What linting the file at `path` takes: its rules (per-file-ignores applied), size limit and project root."""
    try:
        relative_to_root = path.relative_to(settings.root).as_posix()
    except ValueError:
        relative_to_root = path.as_posix()
    codes = tuple(rule.code for rule in settings.rules_for(relative_to_root, selected))
    return FileTask(display_path(path, cwd), str(path), codes, settings.max_file_size, str(settings.root))


def read_file(task: FileTask) -> bytes:
    """The bytes a task lints (raises OSError): a notebook whole, since its outputs (images) may be
    large and max-file-size bounds its code; any other file up to max-file-size + 1 bytes."""
    with open(task.absolute, "rb") as handle:
        return handle.read() if is_notebook(task.absolute) else handle.read(task.max_file_size + 1)


def lint_file(task: FileTask) -> FileResult:
    try:
        data = task.source if task.source is not None else read_file(task)
    except OSError as error:
        result = FileResult(task.path)
        result.diagnostics.append(Diagnostic(task.path, PARSE_ERROR, f"cannot read: {error.strerror or error}"))
        return result
    return lint_data(task, data)


def lint_data(task: FileTask, data: bytes) -> FileResult:
    """Lint a task's file as if it held `data`: an editor's unsaved buffer (nnlint.lsp), the fixer's
    rewritten text before it writes it. A bug in nnlint becomes an NN900 diagnostic, never an exception."""
    from nnlint.project import project_at
    from nnlint.rule import all_rules
    from nnlint.static import lint_source

    rules_by_code = {rule.code: rule for rule in all_rules()}
    rules = [rules_by_code[code] for code in task.rule_codes]
    try:
        location = Path(task.absolute).resolve()
        lint = lint_notebook if is_notebook(task.absolute) else lint_source
        return lint(data, task.path, rules, task.max_file_size, location, project_at(task.root))
    except Exception as error:  # a bug in nnlint, not in the user's file: report it, lint the rest
        result = FileResult(task.path)
        message = f"internal error in nnlint ({type(error).__name__}: {error}); please report it"
        result.diagnostics.append(Diagnostic(task.path, INTERNAL_ERROR, message))
        return result


def _lint_recording(task: FileTask) -> tuple[FileResult, Reads | None]:
    """lint_file, and what it read of the project's other files, for a store to keep them together;
    None: nothing to keep (no store read the file for this task, or nnlint failed on it)."""
    from nnlint.project import project_at

    result = lint_file(task)
    if task.source is None or any(diagnostic.code == INTERNAL_ERROR for diagnostic in result.diagnostics):
        return result, None
    return result, project_at(task.root).reads_of(Path(os.path.realpath(task.absolute)))


def _crashed(task: FileTask) -> tuple[FileResult, None]:
    result = FileResult(task.path)
    message = "not linted: the parser crashed on this file (likely pathological nesting); please report it"
    result.diagnostics.append(Diagnostic(task.path, PARSE_ERROR, message))
    return result, None


def _lint_isolated(task: FileTask) -> tuple[FileResult, Reads | None]:
    """Lint one file in a process of its own, so that a crash costs only that file."""
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("fork")) as pool:
            return pool.submit(_lint_recording, task).result()
    except BrokenProcessPool:
        return _crashed(task)


def _lint_parallel(tasks: list[FileTask], jobs: int) -> list[tuple[FileResult, Reads | None]]:
    results: list[tuple[FileResult, Reads | None] | None] = [None] * len(tasks)
    chunksize = max(1, min(16, len(tasks) // (jobs * 8)))
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork")) as pool:
            for index, result in enumerate(pool.map(_lint_recording, tasks, chunksize=chunksize)):
                results[index] = result
    except BrokenProcessPool:
        # A worker died (a native crash): redo the files without a result one by one, isolated.
        for index, task in enumerate(tasks):
            if results[index] is None:
                results[index] = _lint_isolated(task)
    return results  # type: ignore[return-value]


def _lint(tasks: list[FileTask], jobs: int) -> list[tuple[FileResult, Reads | None]]:
    """Each file's result and reads. The static pass is imported here, before the workers fork (they
    inherit it), and the project is read afresh: a long-running process must not see an earlier
    run's files."""
    from nnlint.project import project_at
    from nnlint.rule import all_rules

    all_rules()
    project_at.cache_clear()
    thresholds = gc.get_threshold()
    gc.set_threshold(*_GC_THRESHOLDS)  # forked workers inherit it
    try:
        if jobs > 1 and len(tasks) >= _PARALLEL_THRESHOLD:
            return _lint_parallel(tasks, jobs)
        return [_lint_recording(task) for task in tasks]
    finally:
        gc.set_threshold(*thresholds)


def file_tasks(files: list[Path], settings: Settings, cwd: Path) -> list[FileTask]:
    """One task per file: its displayed path and the rules its per-file settings select."""
    selected = settings.selected_rules()
    return [file_task(path, settings, selected, cwd) for path in files]


def run(files: list[Path], settings: Settings, cwd: Path, jobs: int, store: ResultStore | None = None) -> RunResult:
    """Lint `files`; with a `store`, reuse the results it holds and keep the new ones."""
    started = time.perf_counter()
    tasks = file_tasks(files, settings, cwd)
    results: list[FileResult | None] = [None] * len(tasks)
    if store is not None:
        for index, task in enumerate(tasks):
            results[index], tasks[index] = store.fetch(task)
    pending = [index for index, result in enumerate(results) if result is None]
    if pending:
        for index, (result, reads) in zip(pending, _lint([tasks[index] for index in pending], jobs)):
            results[index] = result
            if store is not None and reads is not None:
                store.store(tasks[index], result, reads)
    if store is not None:
        store.close()

    outcome = RunResult(files=len(results))
    for result in results:
        outcome.findings.extend(result.findings)
        outcome.diagnostics.extend(result.diagnostics)
        outcome.lines += result.lines
    outcome.findings.sort(key=lambda finding: finding.sort_key)
    outcome.diagnostics.sort(key=lambda diagnostic: diagnostic.sort_key)
    outcome.seconds = time.perf_counter() - started
    return outcome
