"""GitHub Actions workflow commands: one annotation per finding on the pull request's diff."""

from __future__ import annotations

from nnlint.runner import RunResult

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A property value (file=, title=) also ends at `,` and `:` (as in @actions/core's escapeProperty)."""
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def render(result: RunResult, color: bool = False) -> str:
    lines = [
        f"::{_LEVEL[f.severity]} title=nnlint {f.code} ({f.name}),file={_escape_property(f.path)},"
        f"line={f.line},col={f.column},endLine={f.end_line},endColumn={f.end_column}"
        f"::{_escape(f'{f.code} {f.message}')}"
        for f in result.findings
    ]
    lines += [
        f"::error title=nnlint {d.code},file={_escape_property(d.path)}"
        + (f",line={d.line}" if d.line else "")
        + f"::{_escape(d.message)}"
        for d in result.diagnostics
    ]
    return "\n".join(lines)
