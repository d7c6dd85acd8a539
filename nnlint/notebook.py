"""Jupyter notebooks: their code cells as one Python module, and findings located back by cell and line.

The cells are joined in notebook order (a notebook runs top to bottom, so a model built in one cell
and trained in another is one script), each cell's lines kept one for one, so that a line of the
module is a line of a cell (a cell written indented is dedented, as IPython runs it, and its columns
given back). IPython syntax that is not Python (line magics, shell escapes, `?` help)
becomes `pass` at the same indentation, as IPython itself turns it into a call there; a cell magic
that runs another language skips the whole cell. Notebooks are JSON (nbformat 4: `cells[].source`
is a string or a list of strings), read with the json module: nbformat would add five packages
and 85 ms of import to every worker for two fields.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from pathlib import Path

from nnlint.context import ProjectFiles
from nnlint.finding import Diagnostic, Finding
from nnlint.rule import Rule
from nnlint.static import FileResult, lint_text, not_linted

SUFFIX = ".ipynb"
# Cell magics whose body is Python run by IPython (timed, captured, profiled): linted without the
# magic's own line. Any other (%%bash, %%writefile, %%html, ...) holds no Python: the cell is skipped.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3"})
# `%magic`, `!shell`, `x = !shell`, `x = %magic`, `?name`, `name?`, `name??`.
_IPYTHON_LINE = re.compile(r"\s*(?:[A-Za-z_][\w.,\s]*=\s*)?[%!]|\s*\?|\s*[\w.]+\?\??\s*$")
_NEWLINE = re.compile(r"\r\n|\r|\n")
# "line 41" in a message is a line of the joined module: the reader needs its cell.
_LINE_REFERENCE = re.compile(r"\bline (\d+)\b")


class NotebookError(Exception):
    """A file that is not a notebook nnlint can read; reported as NN901."""


def is_notebook(path: str | Path) -> bool:
    return str(path).endswith(SUFFIX)


def cell_prefix(cell: int | None, *position: int) -> str:
    """`cell 3:2:5: `, for the formats whose lines are the file's (GitHub, SARIF): a line of a notebook's
    cell is no line of its JSON file, so they say where it is in the message. Empty outside notebooks."""
    return f"cell {cell}:" + "".join(f"{number}:" for number in position) + " " if cell is not None else ""


@dataclass(frozen=True)
class NotebookSource:
    """The code cells as one module; `starts[i]` is the module line where code cell number `cells[i]` begins."""

    text: str
    starts: tuple[int, ...]
    cells: tuple[int, ...]
    # Module line -> the indentation removed from it (a cell written indented, see `_dedented`).
    dedents: dict[int, int] = field(default_factory=dict)

    def locate(self, line: int) -> tuple[int, int]:
        """(cell, line in that cell) of a module line; cells are numbered from 1 in notebook order,
        markdown cells included, as a notebook editor shows them."""
        index = max(0, bisect_right(self.starts, line) - 1)
        return self.cells[index], line - self.starts[index] + 1

    def described(self, message: str) -> str:
        """`message` with each "line N" of the module spelled "cell C, line L"."""

        def cell_line(match: re.Match) -> str:
            cell, line = self.locate(int(match.group(1)))
            return f"cell {cell}, line {line}"

        return _LINE_REFERENCE.sub(cell_line, message)


def _cell_text(cell: dict, number: int) -> str:
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        source = "".join(source)
    if not isinstance(source, str):
        raise NotebookError(f"cell {number}: `source` is neither a string nor a list of strings")
    return source


def _lines(source: str) -> list[str]:
    """Split as Python's parser does (str.splitlines also splits at form feeds and U+2028, which
    would shift every line after them)."""
    lines = _NEWLINE.split(source)
    return lines[:-1] if lines[-1] == "" else lines


def _continuation_lines(source: str) -> set[int]:
    """Lines (1-based) that go on with a statement begun above: inside brackets, a multi-line string
    or after a backslash. IPython reads its syntax only at the start of a logical line, so a line
    `% epoch)` that goes on with `("epoch %d"` is Python."""
    inside, depth, previous = set(), 0, ""
    for number, line in enumerate(_lines(source), start=1):
        if previous.rstrip().endswith("\\"):
            inside.add(number)
        previous = line
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.OP and token.string in "([{":
                depth += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                depth = max(0, depth - 1)
            elif token.type == tokenize.NL and depth:
                inside.add(token.start[0] + 1)
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass  # IPython syntax the tokenizer rejects: the lines after it count as logical lines
    return inside


def python_lines(source: str) -> list[str]:
    """A code cell's lines with IPython-only syntax made `pass` (or all blank for a non-Python cell magic)."""
    lines = _lines(source)
    first = next((number for number, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("%%"):  # a cell magic: IPython skips blank lines before it
        magic = lines[first][2:].split(maxsplit=1)
        if not magic or magic[0] not in _PYTHON_CELL_MAGICS:
            return [""] * len(lines)
        lines[first] = ""
    continuations = _continuation_lines("\n".join(lines))
    python, in_magic = [], False
    for number, line in enumerate(lines, start=1):
        if in_magic:  # a magic or shell line continued with a backslash
            python.append("")
        elif number not in continuations and _IPYTHON_LINE.match(line):
            python.append(line[: len(line) - len(line.lstrip())] + "pass")
        else:
            python.append(line)
            continue
        in_magic = line.rstrip().endswith("\\")
    return python


def _dedented(lines: list[str]) -> tuple[list[str], list[int]]:
    """IPython's `leading_indent`: a cell whose first line is indented runs with that indentation
    taken off every line that starts with it. The lines, and the width taken off each."""
    first = next((line for line in lines if line.strip()), "")
    indent = first[: len(first) - len(first.lstrip())]
    if not indent:
        return lines, [0] * len(lines)
    widths = [len(indent) if line.startswith(indent) else 0 for line in lines]
    return [line[width:] for line, width in zip(lines, widths)], widths


def _language(document: dict) -> str:
    """The kernel's language from `metadata.language_info.name`; Python where the notebook does not say."""
    metadata = document.get("metadata")
    info = metadata.get("language_info") if isinstance(metadata, dict) else None
    name = info.get("name") if isinstance(info, dict) else None
    return name if isinstance(name, str) else "python"


def read_notebook(data: bytes) -> NotebookSource | None:
    """The code cells of a notebook's bytes as one module; None for a notebook in another language."""
    try:
        document = json.loads(data)
    except UnicodeDecodeError as error:
        raise NotebookError(f"cannot decode the notebook: {error.reason}") from None
    except json.JSONDecodeError as error:
        raise NotebookError(f"not a notebook: invalid JSON at line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise NotebookError("not a notebook: its JSON is nested too deeply") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        format_version = document.get("nbformat") if isinstance(document, dict) else None
        if isinstance(format_version, int) and format_version < 4:
            raise NotebookError(f"nbformat {format_version} notebook: save it with Jupyter to convert it to format 4")
        raise NotebookError("not a notebook: no `cells` list (nbformat 4)")
    if _language(document).lower() != "python":
        return None
    lines: list[str] = []
    starts, cells, dedents = [], [], {}
    for number, cell in enumerate(document["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        starts.append(len(lines) + 1)
        cells.append(number)
        cell_lines, widths = _dedented(python_lines(_cell_text(cell, number)) or [""])
        dedents.update((len(lines) + offset, width) for offset, width in enumerate(widths, start=1) if width)
        lines.extend(cell_lines)
    return NotebookSource("".join(line + "\n" for line in lines), tuple(starts), tuple(cells), dedents)


def _located_finding(finding: Finding, notebook: NotebookSource) -> Finding:
    """The finding located in its cell; without a fix: its edits are positions in the joined cells' text,
    which neither `--fix` nor an editor could apply to the notebook's JSON."""
    cell, line = notebook.locate(finding.line)
    return replace(
        finding, cell=cell, line=line, end_line=finding.end_line - (finding.line - line),
        column=finding.column + notebook.dedents.get(finding.line, 0),
        end_column=finding.end_column + notebook.dedents.get(finding.end_line, 0),
        message=notebook.described(finding.message), fix=None,
    )  # fmt: skip


def _located_diagnostic(diagnostic: Diagnostic, notebook: NotebookSource) -> Diagnostic:
    if diagnostic.line is None or not notebook.cells:
        return diagnostic
    cell, line = notebook.locate(diagnostic.line)
    return replace(diagnostic, cell=cell, line=line, message=notebook.described(diagnostic.message))


def lint_notebook(
    data: bytes, path: str, rule_types: list[type[Rule]], max_file_size: int,
    location: Path | None = None, project: ProjectFiles | None = None,
) -> FileResult:
    """The static pass over a notebook's code cells, each finding located by cell and line in the cell.

    `max_file_size` bounds the code, not the file: outputs (plots, images) make notebooks large.
    """
    try:
        notebook = read_notebook(data)
    except NotebookError as error:
        return not_linted(FileResult(path), str(error))
    if notebook is None:
        return FileResult(path)
    if len(notebook.text.encode()) > max_file_size:
        message = f"not linted: the notebook's code is larger than max-file-size ({max_file_size:,} bytes)"
        return not_linted(FileResult(path), message)
    result = lint_text(notebook.text, path, rule_types, location, project)
    result.findings = [_located_finding(finding, notebook) for finding in result.findings]
    result.diagnostics = [_located_diagnostic(diagnostic, notebook) for diagnostic in result.diagnostics]
    return result
