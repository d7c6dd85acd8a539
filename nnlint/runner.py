"""Lint many files: in parallel worker processes, robust to a worker dying, in a stable order."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from nnlint.config import Settings
from nnlint.finding import Diagnostic, Finding
from nnlint.project import project_at
from nnlint.rule import all_rules
from nnlint.static import PARSE_ERROR, FileResult, lint_source

INTERNAL_ERROR = "NN900"

# Below this many files, starting worker processes costs more than it saves.
_PARALLEL_THRESHOLD = 8


@dataclass(frozen=True)
class FileTask:
    path: str  # as shown to the user
    absolute: str
    rule_codes: tuple[str, ...]
    max_file_size: int
    root: str  # the project root: calls into files below it are followed


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


def lint_file(task: FileTask) -> FileResult:
    rules_by_code = {rule.code: rule for rule in all_rules()}
    rules = [rules_by_code[code] for code in task.rule_codes]
    try:
        with open(task.absolute, "rb") as handle:
            data = handle.read(task.max_file_size + 1)
    except OSError as error:
        result = FileResult(task.path)
        result.diagnostics.append(Diagnostic(task.path, PARSE_ERROR, f"cannot read: {error.strerror or error}"))
        return result
    try:
        location = Path(task.absolute).resolve()
        return lint_source(data, task.path, rules, task.max_file_size, location, project_at(task.root))
    except Exception as error:  # a bug in nnlint, not in the user's file: report it, lint the rest
        result = FileResult(task.path)
        message = f"internal error in nnlint ({type(error).__name__}: {error}); please report it"
        result.diagnostics.append(Diagnostic(task.path, INTERNAL_ERROR, message))
        return result


def _crashed(task: FileTask) -> FileResult:
    result = FileResult(task.path)
    message = "not linted: the parser crashed on this file (likely pathological nesting); please report it"
    result.diagnostics.append(Diagnostic(task.path, PARSE_ERROR, message))
    return result


def _lint_isolated(task: FileTask) -> FileResult:
    """Lint one file in a process of its own, so that a crash costs only that file."""
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("fork")) as pool:
            return pool.submit(lint_file, task).result()
    except BrokenProcessPool:
        return _crashed(task)


def _lint_parallel(tasks: list[FileTask], jobs: int) -> list[FileResult]:
    results: list[FileResult | None] = [None] * len(tasks)
    chunksize = max(1, min(16, len(tasks) // (jobs * 8)))
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork")) as pool:
            for index, result in enumerate(pool.map(lint_file, tasks, chunksize=chunksize)):
                results[index] = result
    except BrokenProcessPool:
        # A worker died (a native crash): redo the files without a result one by one, isolated.
        for index, task in enumerate(tasks):
            if results[index] is None:
                results[index] = _lint_isolated(task)
    return results  # type: ignore[return-value]


def run(files: list[Path], settings: Settings, cwd: Path, jobs: int) -> RunResult:
    started = time.perf_counter()
    selected = settings.selected_rules()
    tasks = []
    for path in files:
        try:
            relative_to_root = path.relative_to(settings.root).as_posix()
        except ValueError:
            relative_to_root = path.as_posix()
        rules = settings.rules_for(relative_to_root, selected)
        codes = tuple(rule.code for rule in rules)
        tasks.append(FileTask(display_path(path, cwd), str(path), codes, settings.max_file_size, str(settings.root)))

    if jobs > 1 and len(tasks) >= _PARALLEL_THRESHOLD:
        results = _lint_parallel(tasks, jobs)
    else:
        results = [lint_file(task) for task in tasks]

    outcome = RunResult(files=len(results))
    for result in results:
        outcome.findings.extend(result.findings)
        outcome.diagnostics.extend(result.diagnostics)
        outcome.lines += result.lines
    outcome.findings.sort(key=lambda finding: finding.sort_key)
    outcome.diagnostics.sort(key=lambda diagnostic: diagnostic.sort_key)
    outcome.seconds = time.perf_counter() - started
    return outcome
