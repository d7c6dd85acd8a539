"""The human format: `path:line:col: CODE message` (`path:cell N:line:col:` in a notebook), then a one-line summary."""

from __future__ import annotations

from collections import Counter

import click

from nnlint.report.snippet import snippet
from nnlint.report.source_lines import SourceLines
from nnlint.runner import RunResult

_STATUS_TAG = {"suspected": "", "confirmed": " [confirmed]", "refuted": " [refuted]", "unverifiable": " [unverifiable]"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _cell(cell: int | None) -> str:
    """A notebook's findings are located as ruff does it: `nb.ipynb:cell 3:2:5:`."""
    return f"cell {cell}:" if cell is not None else ""


def render(result: RunResult, color: bool = False, show_source: bool = False) -> str:
    """`show_source`: each finding followed by its source lines, the range underlined (ruff's
    `--show-source`), and a blank line (not for a notebook's: its lines are in a cell, not the file)."""

    def style(text: str, **styles) -> str:
        return click.style(text, **styles) if color else text

    lines = []
    sources = SourceLines()
    for finding in result.findings:
        where = style(f"{finding.path}:{_cell(finding.cell)}{finding.line}:{finding.column}:", bold=True)
        colour = "red" if finding.severity == "error" else "yellow"
        code = style(finding.code, fg=colour, bold=True)
        lines.append(f"{where} {code}{_STATUS_TAG[finding.status]} {finding.message}")
        if show_source and finding.cell is None:
            lines += [*snippet(finding, sources, lambda carets: style(carets, fg=colour, bold=True)), ""]
    for diagnostic in result.diagnostics:
        where = f"{diagnostic.path}:{_cell(diagnostic.cell)}{diagnostic.line}:" if diagnostic.line else f"{diagnostic.path}:"
        lines.append(f"{style(where, bold=True)} {style(diagnostic.code, fg='magenta', bold=True)} {diagnostic.message}")

    by_code = Counter(finding.code for finding in result.findings)
    summary = f"{_plural(len(result.findings), 'finding')} in {_plural(result.files, 'file')}"
    if by_code:
        summary += " (" + ", ".join(f"{code}: {count}" for code, count in sorted(by_code.items())) + ")"
    if result.diagnostics:
        summary += f"; {_plural(len(result.diagnostics), 'file')} could not be checked"
    summary += f"; {result.lines:,} lines in {result.seconds:.2f}s"
    lines.append(style(summary, bold=bool(result.findings)) if lines else style("No findings. " + summary, fg="green"))
    return "\n".join(lines)
