"""Inline suppression with `# noqa: CODE`: exact codes only, on any line of the reported statement."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source

HEADER = """\
import torch.nn.functional as F


class Net:
    def forward(self, x):
"""


def reported_lines(body: str) -> list[int]:
    """Lines of the NN301 findings in a `forward` whose body is `body`."""
    source = HEADER + textwrap.indent(textwrap.dedent(body), " " * 8)
    result = lint_source(source.encode(), "net.py", [rule_by_code("NN301")], max_file_size=10**6)
    assert not result.diagnostics, result.diagnostics
    return [finding.line for finding in result.findings]


FIRST = HEADER.count("\n") + 1  # the first line of the forward body


@pytest.mark.parametrize(
    "line",
    [
        "return F.dropout(x, 0.5)  # noqa: NN301",
        "return F.dropout(x, 0.5)  # NOQA:NN301",
        "return F.dropout(x, 0.5)  # noqa: E501, NN301",
        "return F.dropout(x, 0.5)  # noqa: NN101,NN301 -- MC dropout on purpose",
        "return F.dropout(x, 0.5)  # type: ignore  # noqa: NN301",
    ],
)
def test_noqa_with_the_code_suppresses(line):
    assert reported_lines(line) == []


@pytest.mark.parametrize(
    "line",
    [
        "return F.dropout(x, 0.5)  # noqa",  # bare noqa is for other linters: documented choice
        "return F.dropout(x, 0.5)  # noqa: E501",
        "return F.dropout(x, 0.5)  # noqa: NN3",  # prefixes do not suppress: say which rule
        "return F.dropout(x, 0.5)  # noqa: NN3011",
        "return F.dropout(x, 0.5)  # noqa NN301",  # without the colon it is not a noqa list
        "return F.dropout(x, '# noqa: NN301')",  # inside a string, not a comment
    ],
)
def test_other_comments_do_not_suppress(line):
    assert reported_lines(line) == [FIRST]


def test_noqa_on_any_line_of_a_multiline_statement():
    assert reported_lines("y = F.dropout(\n    x,\n    0.5)  # noqa: NN301\nreturn y\n") == []
    assert reported_lines("y = F.dropout(  # noqa: NN301\n    x, 0.5)\nreturn y\n") == []
    assert reported_lines("y = F.dropout(\n    x,  # noqa: NN301\n    0.5)\nreturn y\n") == []


def test_noqa_does_not_leak_to_neighbouring_statements():
    body = "# noqa: NN301\ny = F.dropout(x, 0.5)\nz = F.dropout(y, 0.5)  # noqa: NN301\nreturn F.dropout(z, 0.5)\n"
    assert reported_lines(body) == [FIRST + 1, FIRST + 3]


def test_noqa_covers_only_its_statement_in_a_compound_header():
    body = "if F.dropout(x, 0.5).sum() > 0:  # noqa: NN301\n    return F.dropout(x, 0.1)\nreturn x\n"
    assert reported_lines(body) == [FIRST + 1]
