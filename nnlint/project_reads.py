"""What linting one file reads of the project's other files, so that a cached result can be checked.

nnlint.project follows a file's calls and classes into the project's other files: it looks up the
file of an imported module (`find_module_file`) and reads it (`read_source`). A file's findings thus
depend on those lookups and those files' contents. The project records both, and `Reads` is their
record for one linted file; `Disk.holds` replays a record against the files as they are now. Nothing
here imports libcst: a fully cached run checks its records without it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from nnlint.source import decode_source

MAX_FILE_SIZE = 1_000_000  # a larger project file is not read (not followed into)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bytes_of(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_source(path: Path) -> tuple[str | None, str | None]:
    """A project file's text (None: unreadable, undecodable or too large) and the digest of its bytes
    (None: unreadable)."""
    data = _bytes_of(path)
    if data is None:
        return None, None
    try:
        return (decode_source(data) if len(data) <= MAX_FILE_SIZE else None), digest(data)
    except (SyntaxError, UnicodeDecodeError):
        return None, digest(data)


def find_module_file(root: Path, directory: Path, module: str) -> Path | None:
    """The file of `module` as imported by a file in `directory`, below the project `root` only
    (resolved), or None: `from engine import f`, `from .engine import f`, `import utils.engine`."""
    if not module:
        return None
    level = len(module) - len(module.lstrip("."))
    parts = tuple(module.lstrip(".").split("."))
    if level:  # `from ..utils import x`: from the importer's package, one level up per extra dot
        packages = [directory, *directory.parents]
        bases = packages[level - 1 : level]
    else:  # a script's own directory is on sys.path, then the project's packages above it
        bases = [directory, *(p for p in directory.parents if p.is_relative_to(root))]
    found = next((found for base in bases if (found := _file_of(base, parts)) is not None), None)
    # Only the project's own files (an installed package on the path is not followed).
    return found if found is not None and (found.is_relative_to(root) or found.is_relative_to(directory)) else None


def _file_of(base: Path, parts: tuple[str, ...]) -> Path | None:
    """`base/a/b.py` or `base/a/b/__init__.py` for module `a.b`."""
    stem = base.joinpath(*parts)
    for candidate in (stem.with_name(stem.name + ".py"), stem / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


@dataclass(frozen=True)
class Reads:
    """What a file's lint read of the project: each module lookup (importing directory, module, the
    file found or None) and each file read (path, digest of its bytes or None when unreadable)."""

    lookups: tuple[tuple[str, str, str | None], ...] = ()
    files: tuple[tuple[str, str | None], ...] = ()


class Disk:
    """The project's files as they are now, each lookup made and each file read at most once (a run
    checks many records that share them)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._found: dict[tuple[str, str], str | None] = {}
        self._digests: dict[str, str | None] = {}

    def holds(self, reads: Reads) -> bool:
        """Every lookup still finds the same file (a new file shadowing an import counts) and every
        file read still has the same bytes."""
        return all(self._lookup(directory, module) == found for directory, module, found in reads.lookups) and all(
            self._digest(path) == expected for path, expected in reads.files
        )

    def _lookup(self, directory: str, module: str) -> str | None:
        if (directory, module) not in self._found:
            found = find_module_file(self.root, Path(directory), module)
            self._found[directory, module] = str(found) if found is not None else None
        return self._found[directory, module]

    def _digest(self, path: str) -> str | None:
        if path not in self._digests:
            data = _bytes_of(Path(path))
            self._digests[path] = digest(data) if data is not None else None
        return self._digests[path]
