"""GitHub Actions workflow commands: one annotation per finding on the pull request's diff."""

from __future__ import annotations

from nnlint.notebook import cell_prefix
from nnlint.runner import RunResult

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A property value (file=, title=) also ends at `,` and `:` (as in @actions/core's escapeProperty)."""
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def render(result: RunResult, color: bool = False) -> str:
    """A finding in a notebook annotates the whole file and says its cell and line in the message."""
    lines = []
    for f in result.findings:
        span = f",line={f.line},col={f.column},endLine={f.end_line},endColumn={f.end_column}" if f.cell is None else ""
        prefix = cell_prefix(f.cell, f.line, f.column)
        lines.append(
            f"::{_LEVEL[f.severity]} title=nnlint {f.code} ({f.name}),file={_escape_property(f.path)}{span}"
            f"::{_escape(f'{prefix}{f.code} {f.message}')}"
        )
    for d in result.diagnostics:
        line = f",line={d.line}" if d.line and d.cell is None else ""
        message = cell_prefix(d.cell, d.line) + d.message
        lines.append(f"::error title=nnlint {d.code},file={_escape_property(d.path)}{line}::{_escape(message)}")
    return "\n".join(lines)
