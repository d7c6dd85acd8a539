"""The human format: `path:line:col: CODE message` (a schedule finding confirmed by simulation adds its LR
curve as a sparkline on the next line), then a one-line summary."""

from __future__ import annotations

import sys
from collections import Counter

import click

from nnlint.report.evidence_pictures import lr_curves
from nnlint.report.sparkline import blocks_for, lr_line
from nnlint.runner import RunResult

_STATUS_TAG = {"suspected": "", "confirmed": " [confirmed]", "refuted": " [refuted]", "unverifiable": " [unverifiable]"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render(result: RunResult, color: bool = False) -> str:
    def style(text: str, **styles) -> str:
        return click.style(text, **styles) if color else text

    lines, blocks = [], blocks_for(sys.stdout)  # the text format is printed to stdout
    for finding in result.findings:
        where = style(f"{finding.path}:{finding.line}:{finding.column}:", bold=True)
        code = style(finding.code, fg="red" if finding.severity == "error" else "yellow", bold=True)
        lines.append(f"{where} {code}{_STATUS_TAG[finding.status]} {finding.message}")
        curves = lr_curves(finding)
        if curves:  # the simulated LR curve (NN401, NN402), the one the code steps: worth a look
            lines.append(f"    {lr_line(curves[0], blocks)}")
    for diagnostic in result.diagnostics:
        where = f"{diagnostic.path}:{diagnostic.line}:" if diagnostic.line else f"{diagnostic.path}:"
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
