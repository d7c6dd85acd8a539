"""Every rule's own examples are its tests: bad ones flagged at the marked lines, good ones silent."""

from __future__ import annotations

import inspect

import pytest

from nnlint.fixer import fix_source
from nnlint.rule import SEVERITIES, CODE_PATTERN, all_rules
from nnlint.static import lint_source

RULES = all_rules()


def _lint_result(rule, data: bytes):
    result = lint_source(data, "example.py", [rule], max_file_size=10**7)
    assert not result.diagnostics, result.diagnostics
    return result


def _lint(rule, code: str):
    return _lint_result(rule, code.encode()).findings


def _cases(kind: str):
    return [
        pytest.param(rule, example, id=f"{rule.code}-{kind}{index}")
        for rule in RULES
        for index, example in enumerate(getattr(rule, kind))
    ]


@pytest.mark.parametrize(("rule", "example"), _cases("bad"))
def test_bad_example_is_flagged_at_marked_lines(rule, example):
    assert example.expected_lines, "a bad example must mark its expected line(s) with `# <--`"
    findings = _lint(rule, example.code)
    if not rule.static:
        assert findings == []  # R-only: the rule's runtime test checks the marked lines
        return
    assert sorted({f.line for f in findings}) == example.expected_lines
    assert all(f.code == rule.code and f.status == "suspected" for f in findings)
    if example.message:
        assert all(example.message in f.message for f in findings), [f.message for f in findings]


@pytest.mark.parametrize(("rule", "example"), _cases("bad"))
def test_bad_example_fix_gives_its_fixed_code(rule, example):
    """`fixed=` is exactly what --fix makes of the example; the fixed code keeps only the unfixable
    findings, and fixing it again changes nothing. Without `fixed=`, no finding may carry a fix."""
    findings = _lint(rule, example.code)
    unfixable = [finding for finding in findings if finding.fix is None]
    if example.fixed is None:
        assert unfixable == findings, [finding.fix for finding in findings]
        return
    assert len(unfixable) < len(findings), "fixed= given, but no finding has a fix"
    fixed = fix_source(example.code.encode(), lambda data: _lint_result(rule, data))
    assert fixed.data.decode() == example.fixed
    assert fixed.fixed == len(findings) - len(unfixable)
    assert len(fixed.result.findings) == len(unfixable)
    assert all(finding.fix is None for finding in fixed.result.findings)
    again = fix_source(fixed.data, lambda data: _lint_result(rule, data))
    assert (again.data, again.fixed) == (fixed.data, 0)


@pytest.mark.parametrize(("rule", "example"), _cases("good"))
def test_good_example_is_not_flagged(rule, example):
    assert not example.expected_lines
    assert _lint(rule, example.code) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_rule_metadata_and_docs(rule):
    assert CODE_PATTERN.match(rule.code)
    assert rule.severity in SEVERITIES
    assert rule.summary and rule.bad and rule.good
    assert bool(rule.triggers) == rule.static, "an R-only rule has no triggers, a static rule needs them"
    docs = rule.docs()
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert section in docs, f"{rule.code} docs lack {section}"
    assert rule.__module__.split(".")[-1].startswith(rule.code.lower() + "_"), "one file per rule, named by code"


def test_rule_files_do_not_import_each_other():
    for rule in RULES:
        source = inspect.getsource(inspect.getmodule(rule))
        assert "nnlint.rules" not in source and "from rules" not in source, rule.code
