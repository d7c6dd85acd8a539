"""nnlint's cache directory: where it is, files in it written safely, its size kept bounded.

Where: `--cache-dir` (or `$NNLINT_CACHE_DIR`), else the platform's user cache directory
(`$XDG_CACHE_HOME/nnlint` or `~/.cache/nnlint` on Linux, `~/Library/Caches/nnlint` on macOS,
`%LOCALAPPDATA%\\nnlint\\Cache` on Windows). A directory nnlint creates gets a CACHEDIR.TAG and a
`.gitignore`; one that exists is used as it is, and only nnlint's own files in it (digest-named, in
its `v<N>` folders) are ever evicted. Safe under concurrent runs: a file is written under a
temporary name and renamed into place (`os.replace` is atomic), so a reader sees a whole file or none.
Bounded: after a run that wrote, the least recently used files (a read touches its file) are deleted
until the cache is back under its size (`$NNLINT_CACHE_MAX_SIZE`, bytes of disk, `K`/`M`/`G` allowed).
A file that cannot be read is a miss and a cache that cannot be written is skipped with one warning:
the cache only ever saves time, it never fails a run.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nnlint.errors import ConfigError

LAYOUT = "v1"  # a folder per layout: a new layout never reads an old one's files
_LAYOUTS = re.compile(r"v\d+")
_OWN_FILE = re.compile(r"[0-9a-f]{16,}|\.tmp-.*")  # names are digests; a temporary one may be left by a killed run
DEFAULT_MAX_SIZE = 256 * 2**20
_SIZE = re.compile(r"(\d+)\s*([KMG]?)B?", re.IGNORECASE)
_UNIT = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}
_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# This directory is nnlint's cache (https://bford.info/cachedir/).\n"


def default_directory() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "nnlint" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "nnlint"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nnlint"


def max_size_from_environment() -> int:
    """`$NNLINT_CACHE_MAX_SIZE` in bytes (raises ConfigError when it is not a size)."""
    value = os.environ.get("NNLINT_CACHE_MAX_SIZE", "").strip()
    if not value:
        return DEFAULT_MAX_SIZE
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ConfigError(f"NNLINT_CACHE_MAX_SIZE={value!r}: expected a size in bytes, e.g. 500000, 64M or 1G")
    return int(match.group(1)) * _UNIT[match.group(2).upper()]


def _disk_usage(stat: os.stat_result) -> int:
    """Bytes the file takes on disk: small entries fill a whole block each."""
    return getattr(stat, "st_blocks", 0) * 512 or stat.st_size


class Cache:
    """Files under `directory/LAYOUT`, named by the caller (e.g. `results/ab/abcdef...`)."""

    def __init__(self, directory: Path, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.directory = directory
        self.files = directory / LAYOUT
        self.max_size = max_size
        self.wrote = False
        self._prepared = False
        self._broken: str | None = None  # why writing failed: written once to stderr, then skipped

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when it is absent or unreadable; a hit is marked as recently used."""
        path = self.files / name
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            os.utime(path)
        except OSError:  # a read-only cache is still read
            pass
        return data

    def write(self, name: str, data: bytes) -> None:
        """Write atomically: concurrent runs may write the same name, each rename installs a whole file."""
        if self._broken is not None:
            return
        path = self.files / name
        try:
            self._prepare()
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                os.replace(temporary, path)
            except BaseException:
                _remove(Path(temporary))
                raise
        except OSError as error:
            self._broken = f"{error.strerror or error}"
            print(f"nnlint: warning: cannot write the cache in {self.directory} ({self._broken}); "
                  "linting without it", file=sys.stderr)  # fmt: skip
            return
        self.wrote = True

    def _prepare(self) -> None:
        """Create the directory, marked as a cache (backup tools skip it, git ignores it), if it is new."""
        if self._prepared:
            return
        try:
            self.directory.mkdir(parents=True)
        except FileExistsError:
            pass
        else:
            (self.directory / ".gitignore").write_text("# nnlint's cache\n*\n")
            (self.directory / "CACHEDIR.TAG").write_text(_TAG)
        self._prepared = True

    def evict(self) -> None:
        """Delete the least recently used files until the cache is under 80% of its size (so that the
        next runs do not evict again at once); only after a run that wrote."""
        if not self.wrote:
            return
        entries = []
        for path in self._own_files():
            try:
                stat = path.stat()
            except OSError:  # deleted meanwhile by a concurrent run
                continue
            entries.append((stat.st_mtime, _disk_usage(stat), path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_size:
            return
        for _, size, path in sorted(entries, key=lambda entry: entry[0]):
            if total <= self.max_size * 0.8:
                break
            _remove(path)
            total -= size

    def _own_files(self) -> Iterator[Path]:
        for layout in (path for path in self.directory.glob("v*") if _LAYOUTS.fullmatch(path.name)):
            for folder, _, names in os.walk(layout):
                yield from (Path(folder, name) for name in names if _OWN_FILE.fullmatch(name))


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:  # already gone (a concurrent run), or not ours to delete
        pass
