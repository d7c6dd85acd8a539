"""Each file's lint result kept between runs: a run over unchanged files parses nothing.

A stored result is reused only when everything it was computed from is unchanged; a wrong result
is worse than a slow run, so where in doubt the key says more than needed. The key is a digest of:

- nnlint's fingerprint: its version and its sources, Python's version, libcst's installation
  (nnlint.fingerprint);
- the complete effective settings (every field of `Settings`, the command line's selectors included;
  a change to any setting re-lints) and the file's task: the rules selected for it, its path as shown
  (findings carry it), the project root, the size limit;
- the file's real location (imports are resolved from its directory) and the digest of its bytes.

A file's findings can also depend on other files: nnlint.project follows its calls and model classes
into the project's other files. So the entry also holds the file's `Reads` (nnlint.project_reads):
every module lookup made from the file and, transitively, from the files those lookups found, and
the digest of each file read. The entry is reused only if every lookup still finds the same file (a
new module that shadows an import counts) and every file read still has the same bytes: editing
`engine.py` re-lints the `train.py` that follows calls into it, and no file that never looked at it.

Entries are pickles of nnlint's records (FileResult, Finding, Fix, ...), so a field added to them is
kept without a change here; they are read back by an unpickler that builds nnlint's dataclasses and
nothing else. Findings are stored without their `facts` (libcst nodes, for the confirm pass only): a
`--confirm` run stores its static results but does not reuse any. An entry that cannot be read, does
not unpickle or is not the one its name promises is a miss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle

from nnlint.cache import Cache
from nnlint.config import Settings
from nnlint.finding import Diagnostic, FileResult, Finding
from nnlint.project_reads import Disk, Reads, digest
from nnlint.runner import FileTask, read_file

FORMAT = 1  # in every key: changing what an entry holds changes every key


class _RecordsOnly(pickle.Unpickler):
    """Builds nnlint's dataclasses and nothing else: a cache file cannot make nnlint call anything."""

    def find_class(self, module: str, name: str) -> type:
        if module.startswith("nnlint."):
            found = super().find_class(module, name)
            if dataclasses.is_dataclass(found):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not one of nnlint's records")


class ResultCache:
    """The results of one run's files, in a Cache; `reuse=False` (the confirm pass) only stores."""

    def __init__(self, cache: Cache, fingerprint: str, settings: Settings, reuse: bool = True) -> None:
        self.cache = cache
        self.reuse = reuse
        self._common = repr((FORMAT, fingerprint, settings))
        self._disk = Disk(settings.root)
        self._keys: dict[str, str] = {}  # a task's absolute path -> the key of the bytes it lints

    def fetch(self, task: FileTask) -> tuple[FileResult | None, FileTask]:
        """The stored result of `task`, or None and the task with the bytes its key was computed from."""
        try:
            data = read_file(task)
            location = os.path.realpath(task.absolute)
        except OSError:
            return None, task  # linting it reports why
        task = dataclasses.replace(task, source=data)
        key = hashlib.sha256(f"{self._common}\n{task!r}\n{location}\n{digest(data)}".encode()).hexdigest()
        self._keys[task.absolute] = key
        return (self._load(key) if self.reuse else None), task

    def _load(self, key: str) -> FileResult | None:
        data = self.cache.read(_name(key))
        if data is None:
            return None
        try:
            stored_key, reads, result = _RecordsOnly(io.BytesIO(data)).load()
            usable = stored_key == key and _well_formed(reads, result) and self._disk.holds(reads)
        except Exception:  # a corrupt or foreign file: whatever it holds, it is a miss
            return None
        return result if usable else None

    def store(self, task: FileTask, result: FileResult, reads: Reads) -> None:
        key = self._keys.get(task.absolute)
        if key is None:  # not read here (unreadable): nothing to key it by
            return
        findings = [dataclasses.replace(finding, facts=None) for finding in result.findings]
        entry = (key, reads, dataclasses.replace(result, findings=findings))
        self.cache.write(_name(key), pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        self.cache.evict()


def _well_formed(reads: object, result: object) -> bool:
    return (
        isinstance(reads, Reads)
        and isinstance(result, FileResult)
        and all(isinstance(finding, Finding) for finding in result.findings)
        and all(isinstance(diagnostic, Diagnostic) for diagnostic in result.diagnostics)
    )


def _name(key: str) -> str:
    return f"results/{key[:2]}/{key}"
