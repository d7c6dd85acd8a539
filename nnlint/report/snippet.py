"""The source excerpt `--show-source` prints under a finding, as ruff draws it: the lines of the range
with two lines of context, line numbers in a gutter, and carets under the range."""

from __future__ import annotations

from collections.abc import Callable

from nnlint.report.source_lines import SourceLines

CONTEXT = 2  # lines before and after the range, as ruff shows
MAX_RANGE_LINES = 8  # of a longer range, its first lines only: the start is what the message is about


def snippet(finding, lines: SourceLines, mark: Callable[[str], str] = str) -> list[str]:
    """The excerpt's lines for `finding` (anything with a path and a 1-based, end-exclusive range);
    none when its file can no longer be read or is shorter than the finding's line."""
    source = lines.of(finding.path)
    if not 0 < finding.line <= len(source):
        return []
    # A range ending at column 1 ends with the line before (a whole-line finding: line..line+1).
    last = finding.end_line - 1 if finding.end_column == 1 and finding.end_line > finding.line else finding.end_line
    last = min(last, len(source), finding.line + MAX_RANGE_LINES - 1)
    first_shown, last_shown = max(1, finding.line - CONTEXT), min(len(source), last + CONTEXT)
    while first_shown < finding.line and not source[first_shown - 1].strip():
        first_shown += 1
    while last_shown > last and not source[last_shown - 1].strip():
        last_shown -= 1
    width = len(str(last_shown))
    gutter = " " * width + " |"
    excerpt = [gutter]
    for number in range(first_shown, last_shown + 1):
        text = source[number - 1]
        excerpt.append(f"{number:>{width}} | {text}".rstrip())
        if finding.line <= number <= last:
            start = finding.column if number == finding.line else len(text) - len(text.lstrip()) + 1
            stop = finding.end_column if number == finding.end_line else len(text) + 1
            # Tabs stay tabs under the text, so that the carets line up however the terminal sets them.
            indent = "".join("\t" if char == "\t" else " " for char in text[: start - 1])
            label = f" {finding.code}" if number == last else ""
            excerpt.append(f"{gutter} {indent}{mark('^' * max(1, stop - start) + label)}")
    excerpt.append(gutter)
    return excerpt
