"""nnlint's records as LSP messages: findings as diagnostics, their safe fixes as code actions.

Findings count lines from 1 and columns from 1 in characters; LSP counts both from 0, columns in the
code units the client negotiated (UTF-16 by default), so every position goes through pygls' codec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition

from nnlint.finding import Diagnostic, Finding

SOURCE = "nnlint"
FIX_ALL = f"{types.CodeActionKind.SourceFixAll.value}.nnlint"
SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}
# Lines as libcst counts them (str.splitlines would also break at form feeds and other separators).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class Positions:
    """1-based character positions of one version of a buffer, in the client's units."""

    def __init__(self, text: str, codec: PositionCodec) -> None:
        self.lines = _LINE.findall(text)
        self.codec = codec

    def position(self, line: int, column: int) -> types.Position:
        return self.codec.position_to_client_units(self.lines, ServerTextPosition(line - 1, column - 1))

    def range(self, line: int, column: int, end_line: int, end_column: int) -> types.Range:
        return types.Range(self.position(line, column), self.position(end_line, end_column))

    def line_range(self, line: int) -> types.Range:
        """The whole of a line (for a diagnostic that has a line and no column)."""
        text = self.lines[line - 1].rstrip("\r\n") if 0 < line <= len(self.lines) else ""
        return self.range(line, 1, line, len(text) + 1)


def finding_diagnostic(finding: Finding, positions: Positions) -> types.Diagnostic:
    return types.Diagnostic(
        range=positions.range(finding.line, finding.column, finding.end_line, finding.end_column),
        message=finding.message,
        severity=SEVERITIES[finding.severity],
        code=finding.code,
        code_description=types.CodeDescription(href=finding.url),
        source=SOURCE,
    )


def tool_diagnostic(diagnostic: Diagnostic, positions: Positions) -> types.Diagnostic:
    """NN901 (the file cannot be linted: a syntax error, too large, ...) or NN900 (a bug in nnlint)."""
    return types.Diagnostic(
        range=positions.line_range(diagnostic.line or 1),
        message=diagnostic.message,
        severity=types.DiagnosticSeverity.Error,
        code=diagnostic.code,
        source=SOURCE,
    )


def error_diagnostic(message: str, code: str | None = None) -> types.Diagnostic:
    """A problem that stops the whole file from being linted (a bad `[tool.nnlint]`), on its first line."""
    return types.Diagnostic(
        range=types.Range(types.Position(0, 0), types.Position(1, 0)),
        message=f"nnlint: error: {message}",
        severity=types.DiagnosticSeverity.Error,
        code=code,
        source=SOURCE,
    )


def _document_edit(uri: str, version: int | None, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    """Edits the client applies only to the version they were computed for, where it can (`version`
    None: a client without `documentChanges`, such as Neovim, gets plain `changes`)."""
    if version is None:
        return types.WorkspaceEdit(changes={uri: edits})
    document = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=document, edits=edits)])


def _text_edits(finding: Finding, positions: Positions) -> list[types.TextEdit]:
    assert finding.fix is not None
    return [
        types.TextEdit(positions.range(e.line, e.column, e.end_line, e.end_column), e.content)
        for e in finding.fix.edits
    ]


def quick_fix(
    finding: Finding, diagnostic: types.Diagnostic, uri: str, version: int | None, positions: Positions
) -> types.CodeAction:
    assert finding.fix is not None
    return types.CodeAction(
        title=f"{finding.fix.message} ({finding.code})",
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        edit=_document_edit(uri, version, _text_edits(finding, positions)),
        is_preferred=True,
    )


def _key(position: types.Position) -> tuple[int, int]:
    return position.line, position.character


def overlaps(a: types.Range, b: types.Range) -> bool:
    return _key(a.start) <= _key(b.end) and _key(b.start) <= _key(a.end)


def fix_all(
    findings: Iterable[Finding], uri: str, version: int | None, positions: Positions
) -> types.CodeAction | None:
    """Every fix at once; a fix whose edits overlap those of an earlier one is left for the next run."""
    taken: list[types.TextEdit] = []
    for finding in findings:
        edits = _text_edits(finding, positions)
        if not any(overlaps(edit.range, other.range) for edit in edits for other in taken):
            taken.extend(edits)
    if not taken:
        return None
    taken.sort(key=lambda edit: (_key(edit.range.start), _key(edit.range.end)))
    return types.CodeAction(title="Fix all nnlint findings", kind=FIX_ALL, edit=_document_edit(uri, version, taken))
