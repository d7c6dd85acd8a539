"""Paths on the command line -> the Python files and Jupyter notebooks to lint, in a stable order.

Directories are walked without following directory symlinks (no loops, no
escaping the tree); virtualenvs, build output, VCS folders and whatever
`.gitignore` files and the `exclude` setting name are skipped. A file named
explicitly on the command line is always linted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pathspec

SKIPPED_DIRECTORIES = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "site-packages", "build", "dist",
        "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
        ".ipynb_checkpoints",
    }
)  # fmt: skip
LINTED_SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class _IgnoreFile:
    base: Path
    spec: pathspec.PathSpec

    def matches(self, path: Path, is_dir: bool) -> bool:
        try:
            relative = path.relative_to(self.base).as_posix()
        except ValueError:  # outside the directory these patterns are relative to
            return False
        return self.spec.match_file(relative + ("/" if is_dir else ""))

    def without_patterns_excluding(self, directory: Path) -> _IgnoreFile:
        """These patterns less those that exclude `directory` itself (which the user named)."""
        kept = [pattern for pattern in self.spec.patterns if not _excludes(pattern, self.base, directory)]
        return _IgnoreFile(self.base, pathspec.GitIgnoreSpec(kept))


def _excludes(pattern: pathspec.Pattern, base: Path, directory: Path) -> bool:
    try:
        relative = directory.relative_to(base).as_posix() + "/"
    except ValueError:
        return False
    return bool(pattern.include) and pattern.match_file(relative) is not None


def _is_readable_candidate(entry: os.DirEntry) -> bool:
    """A regular file, or a broken or looping symlink (reading it reports why).

    FIFOs, sockets and devices named `*.py` or `*.ipynb` are skipped: opening a FIFO that
    no process writes to blocks forever.
    """
    try:
        return entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path))
    except OSError:  # a symlink loop
        return True


def _is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _gitignore_in(directory: Path) -> _IgnoreFile | None:
    candidate = directory / ".gitignore"
    try:
        lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return _IgnoreFile(directory, pathspec.GitIgnoreSpec.from_lines(lines))


def _inherited_gitignores(directory: Path) -> list[_IgnoreFile]:
    """.gitignore files of the directories above a walked root, up to the repository top."""
    found = []
    for parent in directory.parents:
        ignore = _gitignore_in(parent)
        if ignore is not None:
            found.append(ignore)
        if (parent / ".git").exists():
            break
    return found[::-1]


class FileFinder:
    def __init__(self, exclude_root: Path, exclude: pathspec.PathSpec) -> None:
        self.exclude = _IgnoreFile(exclude_root, exclude)

    @staticmethod
    def _excluded(path: Path, is_dir: bool, ignores: list[_IgnoreFile]) -> bool:
        if is_dir and (path.name in SKIPPED_DIRECTORIES or path.name.endswith(".egg-info") or _is_virtualenv(path)):
            return True
        return any(ignore.matches(path, is_dir) for ignore in ignores)

    def _walk(self, directory: Path, ignores: list[_IgnoreFile], found: list[Path]) -> None:
        own = _gitignore_in(directory)
        if own is not None:
            ignores = [*ignores, own]
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return  # unreadable directory: nothing to lint in it
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not self._excluded(path, True, ignores):
                        self._walk(path, ignores, found)
                elif (
                    entry.name.endswith(LINTED_SUFFIXES)
                    and _is_readable_candidate(entry)
                    and not self._excluded(path, False, ignores)
                ):
                    found.append(path)
            except OSError:
                continue

    def _walk_would_skip(self, path: Path) -> bool:
        """Whether a walk of the project would skip this file: excluded, ignored, or in a skipped
        directory below the project root."""
        ignores = [self.exclude, *_inherited_gitignores(path)]
        if self._excluded(path, False, ignores):
            return True
        try:
            below_root = path.parent.relative_to(self.exclude.base).parts
        except ValueError:
            return False
        directories = (self.exclude.base.joinpath(*below_root[: depth + 1]) for depth in range(len(below_root)))
        return any(self._excluded(directory, True, ignores) for directory in directories)

    def find(self, paths: list[Path], force_exclude: bool = False) -> list[Path]:
        """Files to lint, de-duplicated, in command-line order then sorted within each directory.

        A file named on the command line is linted even if excluded, unless `force_exclude`: pre-commit
        names every staged file, and the project's exclusions should still hold there.
        """
        found: list[Path] = []
        for path in paths:
            if path.is_dir():  # named on the command line: walked even if it is a symlink
                absolute = path.absolute()
                ignores = [self.exclude, *_inherited_gitignores(absolute)]
                self._walk(absolute, [ignore.without_patterns_excluding(absolute) for ignore in ignores], found)
            elif not (force_exclude and self._walk_would_skip(path.absolute())):
                found.append(path.absolute())
        unique: dict[Path, None] = {}
        for path in found:
            unique.setdefault(path, None)
        return list(unique)
