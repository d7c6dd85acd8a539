"""Text edits: from a rule's node replacement to an `Edit`, and applying fixes to a file's text.

An edit is kept minimal (the replacement's code less what it shares with the old code at both ends),
so that fixes of nested calls (`alpha_dropout(drop(x, 0.1), 0.1)`) touch different characters and
apply in one round. Positions are libcst's: lines split at `\\r\\n`, `\\r` or `\\n`, columns count
characters.
"""

from __future__ import annotations

import os
import re

import libcst as cst

from nnlint.context import FileContext
from nnlint.finding import Edit, Fix
from nnlint.rule import Replacement

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_INDENTATION = re.compile(r"[ \t]*")


def _without_parentheses(node: cst.CSTNode, parentheses: object) -> cst.CSTNode:
    """The node without `parentheses` around it: libcst's positions leave out an expression's own
    parentheses, which stay in the file; a new node's other parentheses are part of its code."""
    return node.with_changes(lpar=(), rpar=()) if parentheses and getattr(node, "lpar", None) == parentheses else node


def _line_starts(text: str) -> list[int]:
    return [0, *(match.end() for match in _LINE_BREAK.finditer(text))]


def _lines(text: str) -> list[str]:
    return _LINE_BREAK.split(text)


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def replacement_fix(context: FileContext, replacement: Replacement) -> Fix:
    """The fix that puts `replacement.new` where `replacement.old` is, as one minimal edit.

    libcst prints a node on its own without the indentation of the blocks around it (a call spread
    over lines loses its statement's indentation), so the edit is found between the old and new code
    printed alike, then placed in the file's real text, line by line; new lines in the inserted code
    get the statement's indentation and the file's line break.
    """
    parentheses = getattr(replacement.old, "lpar", None)
    old = context.module.code_for_node(_without_parentheses(replacement.old, parentheses))
    new = context.module.code_for_node(_without_parentheses(replacement.new, parentheses))
    prefix = _common_prefix(old, new)
    suffix = _common_prefix(old[prefix:][::-1], new[prefix:][::-1])
    where = context.position(replacement.old)
    starts = context.shared(_line_starts, lambda: _line_starts(context.source))
    first_line = starts[where.start.line - 1]
    real_lines = _lines(context.source[first_line + where.start.column : starts[where.end.line - 1] + where.end.column])

    def real_position(offset: int) -> tuple[int, int]:
        """1-based (line, column) in the file of an offset into the printed old code."""
        printed = _lines(old[:offset])
        if len(printed) == 1:
            return where.start.line, where.start.column + len(printed[0]) + 1
        index = len(printed) - 1
        added_indentation = len(real_lines[index]) - len(_lines(old)[index])
        return where.start.line + index, added_indentation + len(printed[-1]) + 1

    indentation = _INDENTATION.match(context.source, first_line).group()
    content = _LINE_BREAK.sub(lambda match: match.group() + indentation, new[prefix : len(new) - suffix])
    line, column = real_position(prefix)
    end_line, end_column = real_position(len(old) - suffix)
    return Fix(replacement.title, (Edit(line, column, end_line, end_column, content),))


def apply_fixes(text: str, fixes: list[Fix]) -> tuple[str, int]:
    """`text` with every fix whose edits overlap no earlier fix's applied, and how many were applied.

    Overlapping fixes are left for the next round (the caller lints the result again): a fix is
    applied whole or not at all.
    """
    starts = _line_starts(text)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    spans = [
        (fix, [(offset(e.line, e.column), offset(e.end_line, e.end_column), e.content) for e in fix.edits])
        for fix in fixes
    ]
    spans.sort(key=lambda item: min(start for start, _, _ in item[1]))
    taken: list[tuple[int, int, str]] = []
    applied = 0
    for _, edits in spans:
        # Touching counts as overlapping: two insertions at one place have no certain order.
        if any(start <= other_end and other_start <= end for start, end, _ in edits for other_start, other_end, _ in taken):
            continue
        taken.extend(edits)
        applied += 1
    for start, end, content in sorted(taken, reverse=True):
        text = text[:start] + content + text[end:]
    return text, applied
