"""The records every layer speaks: a rule's finding and a tool diagnostic.

The JSON report (a public contract, see DESIGN.md) is built from these, so
field names here are the field names users parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# The order of DESIGN.md's example, which readers of the raw JSON expect.
_JSON_FIELDS = (
    "code", "name", "severity", "status", "message", "path", "cell", "line", "column", "end_line", "end_column",
    "evidence", "fix",
)  # fmt: skip
STATUSES = ("suspected", "confirmed", "refuted", "unverifiable")
# docs/rules.md is generated from the rules (`nnlint rules --format markdown`).
DOCS_URL = "https://github.com/nnlint/nnlint/blob/main/docs/rules.md#{code}-{name}"


@dataclass(frozen=True)
class Edit:
    """Replace the source range [(line, column), (end_line, end_column)) with `content`.

    1-based like findings, end exclusive; columns count characters, not bytes.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    content: str

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line, "column": self.column, "end_line": self.end_line, "end_column": self.end_column,
            "content": self.content,
        }  # fmt: skip


@dataclass(frozen=True)
class Fix:
    """A safe fix: edits that cannot change correct behaviour (issue 11: `--fix`, `--diff`, editor code actions)."""

    message: str
    edits: tuple[Edit, ...]

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "edits": [edit.to_json() for edit in self.edits]}


@dataclass(frozen=True)
class Finding:
    """One suspected (or, after the confirm pass, judged) bug at a source range.

    Lines and columns are 1-based; the end is exclusive.
    """

    code: str
    name: str
    severity: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    status: str = "suspected"
    evidence: Any = None
    fix: Fix | None = None
    # In a notebook, the code cell (numbered from 1, all cells counted) whose `line` this is.
    cell: int | None = None
    # What the static check learnt for the runtime check; internal, not part of the JSON contract.
    facts: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code.lower(), name=self.name)

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)

    def with_status(self, status: str, evidence: Any = None, message: str | None = None) -> Finding:
        return replace(self, status=status, evidence=evidence, message=message or self.message)

    def to_json(self) -> dict[str, Any]:
        # `cell` only in a notebook: the records of Python files keep their shape.
        record = {name: getattr(self, name) for name in _JSON_FIELDS if name != "cell" or self.cell is not None}
        record["fix"] = self.fix.to_json() if self.fix else None
        record["url"] = self.url
        return record


@dataclass(frozen=True)
class Diagnostic:
    """A problem of the tool with a file (NN901 unreadable, NN902 probe failed), not a bug finding."""

    path: str
    code: str
    message: str
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    cell: int | None = None  # as in Finding

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line or 0, self.code)

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"path": self.path, "code": self.code, "message": self.message}
        if self.cell is not None:
            record["cell"] = self.cell
        if self.line is not None:
            record["line"] = self.line
        record.update(self.extra)
        return record
