"""The source lines a report quotes (`--show-source`) or fingerprints (SARIF), read back from the files.

The report runs after the lint, so it re-reads each file, once per report (never a process-wide
cache: an editor's long-running process must see the file as it is now). A file that cannot be read
or decoded any more (deleted meanwhile, an NN901) has no lines to show.
"""

from __future__ import annotations

import re
from pathlib import Path

from nnlint.source import decode_source

# The line ends libcst and CPython count; str.splitlines() would also split at \f, \v, \x1c...
_LINE_END = re.compile(r"\r\n|\r|\n")


class SourceLines:
    """Lines of the files one report names (paths as the report shows them: relative to the current
    directory), each file read at most once."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}

    def of(self, path: str) -> list[str]:
        """Every line of `path`, without line ends; empty when it cannot be read or decoded."""
        if path not in self._files:
            try:
                self._files[path] = _LINE_END.split(decode_source(Path(path).read_bytes()))
            except (OSError, UnicodeDecodeError, SyntaxError, LookupError):
                self._files[path] = []
        return self._files[path]

    def line(self, path: str, number: int) -> str:
        """Line `number` (1-based) of `path`, or "" when there is none."""
        lines = self.of(path)
        return lines[number - 1] if 0 < number <= len(lines) else ""
