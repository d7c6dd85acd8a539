"""`--fix` and `--diff`: apply the findings' safe fixes to the files, re-lint, write atomically.

A file is fixed in rounds: lint, apply every fix that overlaps no other, lint the result again, until
no fix is left (or `MAX_ROUNDS`). The text keeps its encoding (coding line), BOM and line endings:
edits change only the characters they replace and bring the file's own line breaks. Only the static
pass proposes fixes, so a confirm-pass verdict never decides what is rewritten.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nnlint.edits import apply_fixes
from nnlint.finding import Finding
from nnlint.runner import FileTask, lint_data
from nnlint.source import source_encoding
from nnlint.static import FileResult

# Each round applies every fix that overlaps no other; nested fixes need one round per level.
MAX_ROUNDS = 10
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
# Lines as Python (and libcst) count them, with their breaks: str.splitlines also splits at form feeds.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class FixError(Exception):
    """A file that could not be fixed (unreadable, read-only, changed meanwhile): its message says why."""


@dataclass(frozen=True)
class FixedSource:
    data: bytes
    fixed: int  # fixes applied
    result: FileResult  # the lint of `data`


def fix_source(data: bytes, lint: Callable[[bytes], FileResult]) -> FixedSource:
    """`data` with its findings' fixes applied, round after round, until no fix is left.

    Raises FixError if a round makes the file fail to lint (a bug in a rule's fix): nothing of such a
    file may be written."""
    result, fixed = lint(data), 0
    for _ in range(MAX_ROUNDS):
        fixes = [finding.fix for finding in result.findings if finding.fix is not None]
        if not fixes:
            break
        encoding = source_encoding(data)
        text, applied = apply_fixes(data.decode(encoding), fixes)
        data, fixed = text.encode(encoding), fixed + applied
        result, before = lint(data), result
        if len(result.diagnostics) > len(before.diagnostics):
            problem = result.diagnostics[-1].message
            raise FixError(f"{result.path}: not fixed, the fixes would break it ({problem}); please report it")
    return FixedSource(data, fixed, result)


@dataclass(frozen=True)
class FileFix:
    task: FileTask
    before: bytes
    after: bytes
    fixed: int

    def diff(self) -> str:
        """A unified diff, as `git diff` prints it (a last line without its line break is marked)."""
        encoding = source_encoding(self.before)
        lines = difflib.unified_diff(
            _LINE.findall(self.before.decode(encoding)),
            _LINE.findall(self.after.decode(encoding)),
            f"a/{self.task.path}", f"b/{self.task.path}",
        )  # fmt: skip
        return "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n" for line in lines)

    def write(self) -> None:
        """Replace the file with the fixed bytes atomically (a temporary file in its directory, then
        os.replace), keeping its permissions; through a symlink, the file it points to."""
        target = Path(os.path.realpath(self.task.absolute))
        try:
            if target.read_bytes() != self.before:
                raise FixError(f"{self.task.path}: changed while nnlint was fixing it; not written")
            mode = stat.S_IMODE(target.stat().st_mode)
            # No write bit is the owner's "do not touch", even for root, whom os.access lets write anything.
            if not mode & _WRITE_BITS or not os.access(target, os.W_OK):
                raise FixError(f"cannot write fixes to {self.task.path}: the file is read-only")
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".nnlint", dir=target.parent)
        except OSError as error:
            raise FixError(f"cannot write fixes to {self.task.path}: {error.strerror or error}") from None
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(self.after)
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except OSError as error:
            os.unlink(temporary)
            raise FixError(f"cannot write fixes to {self.task.path}: {error.strerror or error}") from None


def fix_file(task: FileTask) -> FileFix:
    try:
        before = Path(task.absolute).read_bytes()
    except OSError as error:
        raise FixError(f"cannot read {task.path}: {error.strerror or error}") from None
    fixed = fix_source(before, lambda data: lint_data(task, data))
    return FileFix(task, before, fixed.data, fixed.fixed)


@dataclass
class FixRun:
    changed: list[FileFix]  # files whose text the fixes change
    errors: list[str]  # files that could not be fixed, one message each

    @property
    def fixed(self) -> int:
        return sum(file_fix.fixed for file_fix in self.changed)


def fix_files(tasks: list[FileTask], findings: list[Finding]) -> FixRun:
    """Fix the files among `tasks` that have a finding with a fix; nothing is written here."""
    fixable = {finding.path for finding in findings if finding.fix is not None}
    outcome = FixRun([], [])
    for task in tasks:
        if task.path not in fixable:
            continue
        try:
            file_fix = fix_file(task)
        except FixError as error:
            outcome.errors.append(str(error))
            continue
        if file_fix.after != file_fix.before:
            outcome.changed.append(file_fix)
    return outcome
