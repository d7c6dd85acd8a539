"""The static pass over one file: read, guard, parse once, one traversal for all rules.

Never imports or executes the code it reads. Every way a file can be bad
(undecodable, binary, too large, too deep, not Python) becomes an NN901
diagnostic instead of an exception.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

import libcst as cst

from nnlint.context import FileContext, ProjectFiles
from nnlint.edits import replacement_fix
from nnlint.finding import Diagnostic, Finding
from nnlint.rule import Report, Rule
from nnlint.source import decode_source
from nnlint.suppress import noqa_codes_by_line
from nnlint.tree import child_nodes

PARSE_ERROR = "NN901"


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: int = 0
    parsed: bool = False


@cache
def _handler_names(rule_type: type[Rule]) -> tuple[tuple[str, str], ...]:
    """(node type name, method name) for every visit_/leave_ method a rule defines."""
    return tuple(
        (attr.split("_", 1)[1], attr)
        for attr in dir(rule_type)
        if attr.startswith(("visit_", "leave_")) and callable(getattr(rule_type, attr))
    )


class _Traversal:
    """Walks the tree once and calls each rule's visit_/leave_ methods.

    A hand-written walk over the dataclass fields: libcst's own `visit`
    rebuilds every node as it goes and costs four times as much.
    """

    def __init__(self, context: FileContext, rules: list[Rule]) -> None:
        self.context = context
        self.visitors: dict[str, list] = {}
        self.leavers: dict[str, list] = {}
        for rule in rules:
            for node_type, method in _handler_names(type(rule)):
                table = self.visitors if method.startswith("visit_") else self.leavers
                table.setdefault(node_type, []).append(getattr(rule, method))

    def walk(self, node: cst.CSTNode) -> None:
        type_name = type(node).__name__
        if type_name == "Import":
            self.context.imports.add_import(node)
        elif type_name == "ImportFrom":
            self.context.imports.add_import_from(node)
        for visit in self.visitors.get(type_name, ()):
            visit(node)
        ancestors = self.context.ancestors
        ancestors.append(node)
        for child in child_nodes(node):
            self.walk(child)
        ancestors.pop()
        for leave in self.leavers.get(type_name, ()):
            leave(node)


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


# libcst nests `a and b and c ...` one level per operand, and its native parser
# overflows the C stack (a segfault, not an exception) near 8,000 operands,
# while CPython keeps the chain flat and accepts it. The traversal stops near
# 1,000 levels anyway, so refusing deeper chains before libcst loses nothing.
_MAX_BOOL_OPERATOR_DEPTH = 1000
# Ends of `and`/`or` keywords (and of words like `for`): an upper bound on the
# operators a file can chain, cheap enough to spare ordinary files the AST walk.
_BOOL_OPERATOR_END = re.compile(r"(?:and|or)\b")


def _bool_operator_depth(tree: ast.AST) -> tuple[int, int | None]:
    """The most `and`/`or` operators nested along one path of the tree, and the line where that path starts."""
    deepest, line = 0, None
    pending: list[tuple[ast.AST, int, int | None]] = [(tree, 0, None)]
    while pending:
        node, depth, start = pending.pop()
        if isinstance(node, ast.BoolOp):
            depth += len(node.values) - 1
            start = start or node.lineno
            if depth > deepest:
                deepest, line = depth, start
        pending.extend((child, depth, start) for child in ast.iter_child_nodes(node))
    return deepest, line


def _syntax_problem(text: str, path: str) -> tuple[str, int | None] | None:
    """CPython's own parser as a guard before libcst.

    libcst's native parser can overflow its stack on pathologically deep
    nesting and kill the process; CPython's parser has a depth limit and
    reports such files as a SyntaxError or MemoryError instead. Its messages
    are also the clearest a Python user can get.
    """
    try:
        tree = compile(text, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as error:
        return f"syntax error: {error.msg}", error.lineno
    except (MemoryError, RecursionError):
        return "the code is nested too deeply to parse", None
    except ValueError as error:
        return f"cannot parse: {error}", None
    if len(_BOOL_OPERATOR_END.findall(text)) > _MAX_BOOL_OPERATOR_DEPTH:
        depth, line = _bool_operator_depth(tree)
        if depth > _MAX_BOOL_OPERATOR_DEPTH:
            return f"the code is nested too deeply to parse ({depth:,} chained `and`/`or` operators)", line
    return None


def _finding(rule: type[Rule], report: Report, path: str, context: FileContext) -> Finding:
    where = context.position(report.node)
    return Finding(
        code=rule.code,
        name=rule.name,
        severity=rule.severity,
        message=report.message,
        path=path,
        line=where.start.line,
        column=where.start.column + 1,
        end_line=where.end.line,
        end_column=where.end.column + 1,
        fix=replacement_fix(context, report.fix) if report.fix is not None else None,
        facts=report.facts,
    )


def _noqa_lines(report: Report, context: FileContext) -> range:
    """The lines a `# noqa` may sit on: the reported line, or any line of its simple statement."""
    if isinstance(report.statement, cst.SimpleStatementLine):
        span = context.position(report.statement)
        return range(span.start.line, span.end.line + 1)
    line = context.position(report.node).start.line
    return range(line, line + 1)


def _findings(context: FileContext, rules: list[Rule]) -> list[Finding]:
    reported = [(rule, report) for rule in rules for report in rule.reports]
    if not reported:
        return []
    noqa = noqa_codes_by_line(context.source)
    return [
        _finding(type(rule), report, context.path, context)
        for rule, report in reported
        if not any(rule.code in noqa.get(line, ()) for line in _noqa_lines(report, context))
    ]


def not_linted(result: FileResult, message: str, line: int | None = None) -> FileResult:
    """`result` with the NN901 diagnostic that says why its file could not be checked."""
    result.diagnostics.append(Diagnostic(result.path, PARSE_ERROR, message, line))
    return result


def lint_source(
    data: bytes, path: str, rule_types: list[type[Rule]], max_file_size: int,
    location: Path | None = None, project: ProjectFiles | None = None,
) -> FileResult:
    """Lint one file's bytes with the given rules; never raises for bad input. With its `location` on
    disk and its `project`, the rules may follow its calls into the project's other files."""
    fail = partial(not_linted, FileResult(path))

    if len(data) > max_file_size:
        # The runner reads at most max_file_size + 1 bytes, so len(data) is not the file's size.
        return fail(f"not linted: the file is larger than max-file-size ({max_file_size:,} bytes)")
    if b"\x00" in data:
        return fail("not linted: the file contains NUL bytes (binary?)", _line_of_offset(data, data.index(b"\x00")))
    try:
        text = decode_source(data)
    except SyntaxError as error:  # unknown encoding named in a coding line
        return fail(f"cannot decode: {error.msg}", error.lineno)
    except UnicodeDecodeError as error:
        return fail(f"cannot decode as {error.encoding}: {error.reason}", _line_of_offset(data, error.start))
    return lint_text(text, path, rule_types, location, project)


def lint_text(
    text: str, path: str, rule_types: list[type[Rule]], location: Path | None = None, project: ProjectFiles | None = None
) -> FileResult:
    """Lint decoded source text: a Python file's, or a notebook's code cells (nnlint.notebook)."""
    result = FileResult(path)
    fail = partial(not_linted, result)
    result.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)

    wanted = [rule for rule in rule_types if any(trigger in text for trigger in rule.triggers)]
    if not wanted:
        return result
    problem = _syntax_problem(text, path)
    if problem is not None:
        return fail(*problem)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        return fail(f"syntax error: {error.message}", error.raw_line)
    result.parsed = True
    context = FileContext(path, text, module, location, project)
    rules = [rule(context) for rule in wanted]
    try:
        _Traversal(context, rules).walk(module)
        result.findings = _findings(context, rules)
    except RecursionError:
        return fail("not linted: the code is nested too deeply for the linter's traversal")
    return result
