"""The `nnlint` command as CI scripts and editors use it: exit codes, selection, formats, paths, order."""

from __future__ import annotations

import re

import pytest
from conftest import BUGGY_LINE, BUGGY_NET, CLEAN_NET

from nnlint import runner
from nnlint.rule import all_rules

FINDING_KEYS = {
    "code", "name", "severity", "status", "message", "path", "line", "column",
    "end_line", "end_column", "evidence", "fix", "url",
}  # fmt: skip


# --- exit codes ---------------------------------------------------------------------------------


def test_clean_tree_exits_0(nnlint, write):
    write({"net.py": CLEAN_NET})
    outcome = nnlint(".")
    assert outcome.exit_code == 0, outcome.stdout
    assert "No findings" in outcome.stdout


def test_findings_exit_1(nnlint, write):
    write({"net.py": BUGGY_NET})
    outcome = nnlint(".")
    assert outcome.exit_code == 1
    assert f"net.py:{BUGGY_LINE}:16: NN301 " in outcome.stdout


def test_exit_zero_reports_but_exits_0(nnlint, write):
    write({"net.py": BUGGY_NET})
    outcome = nnlint(".", "--exit-zero")
    assert outcome.exit_code == 0
    assert "NN301" in outcome.stdout


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--bogus", "."], "No such option"),
        (["--select", "NN999", "."], "NN999"),
        (["--ignore", "NN3,XX1", "."], "XX1"),
        (["--extend-select", "E501", "."], "E501"),
        (["no_such_dir"], "no_such_dir"),
        (["--config", "missing.toml", "."], "missing.toml"),
        (["--format", "yaml", "."], "yaml"),
        (["--jobs", "0", "."], "--jobs"),
    ],
    ids=["unknown-option", "unknown-select", "unknown-in-comma-list", "other-tools-code", "missing-path",
         "missing-config", "unknown-format", "zero-jobs"],
)  # fmt: skip
def test_usage_errors_exit_2_with_a_message_and_no_traceback(nnlint, write, args, complaint):
    write({"net.py": BUGGY_NET})
    outcome = nnlint(*args, "--exit-zero")
    assert outcome.exit_code == 2
    assert complaint in outcome.stderr
    assert "Traceback" not in outcome.stderr + outcome.stdout
    assert outcome.stdout == ""


def test_bad_config_exits_2(nnlint, write):
    write({"net.py": BUGGY_NET, "pyproject.toml": "[tool.nnlint]\nselect = 'NN301'\n"})
    outcome = nnlint(".")
    assert outcome.exit_code == 2
    assert "`select` must be a list of strings" in outcome.stderr


def test_a_crashing_rule_is_an_internal_error_exit_2_and_the_other_files_are_linted(nnlint, write, monkeypatch):
    """A bug in nnlint must not look like a clean run (exit 0) nor hide the other files' findings."""
    [dropout_rule] = [rule for rule in all_rules() if rule.code == "NN301"]

    def crash(self, node):
        if "boom" in self.context.path:
            raise ValueError("rule bug")
        return original(self, node)

    original = dropout_rule.visit_Call
    monkeypatch.setattr(dropout_rule, "visit_Call", crash)
    write({"boom.py": BUGGY_NET, "net.py": BUGGY_NET})
    outcome = nnlint(".", "--format", "json", "--jobs", "1")
    assert outcome.exit_code == 2
    report = outcome.json()
    assert outcome.located() == [("net.py", BUGGY_LINE, "NN301")]
    [error] = report["errors"]
    assert error["path"] == "boom.py" and error["code"] == "NN900"
    assert "ValueError: rule bug" in error["message"]


# --- rule selection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reported"),
    [
        ([], True),
        (["--select", "NN301"], True),
        (["--select", "NN3"], True),
        (["--select", "nn3"], True),
        (["--select", "ALL"], True),
        (["--select", "NN301,NN3"], True),
        (["--ignore", "NN301"], False),
        (["--ignore", "NN3"], False),
        (["--ignore", "ALL"], False),
        (["--select", "NN3", "--ignore", "NN301"], False),
        (["--select", "NN301", "--ignore", "NN3"], True),
        (["--ignore", "NN3", "--extend-select", "NN301"], True),
        (["--select", "NN3", "--ignore", "NN3"], False),
    ],
)
def test_select_ignore_and_extend_select_resolve_by_specificity(nnlint, write, args, reported):
    write({"net.py": BUGGY_NET})
    outcome = nnlint(".", "--format", "json", *args)
    assert outcome.located() == ([("net.py", BUGGY_LINE, "NN301")] if reported else [])
    assert outcome.exit_code == (1 if reported else 0)


# --- rules and rule ------------------------------------------------------------------------------


def test_rules_lists_every_rule(nnlint):
    outcome = nnlint("rules")
    assert outcome.exit_code == 0
    lines = outcome.stdout.splitlines()
    assert len(lines) == len(all_rules())
    for line, rule in zip(lines, all_rules()):
        assert line.startswith(f"{rule.code}  {rule.name} ")
        assert rule.severity in line and rule.summary in line


def test_rules_as_json(nnlint):
    outcome = nnlint("rules", "--format", "json")
    assert outcome.exit_code == 0
    expected = [
        {"code": r.code, "name": r.name, "severity": r.severity, "default": r.default_enabled, "summary": r.summary}
        for r in all_rules()
    ]
    assert outcome.json() == expected


@pytest.mark.parametrize("code", ["NN301", "nn301"])
def test_rule_prints_its_documentation(nnlint, code):
    outcome = nnlint("rule", code)
    assert outcome.exit_code == 0
    assert outcome.stdout.startswith("# NN301 functional-dropout-always-on (error)")
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert section in outcome.stdout


def test_unknown_rule_exits_2(nnlint):
    outcome = nnlint("rule", "NN999")
    assert outcome.exit_code == 2
    assert "unknown rule 'NN999'" in outcome.stderr


# --- output formats ------------------------------------------------------------------------------


def test_json_report_follows_the_published_contract(nnlint, write):
    source = BUGGY_NET.replace(
        "        return F.dropout(x, 0.5)\n", "        y = F.dropout(\n            x, 0.5)\n        return y\n"
    )
    write({"net.py": source, "broken.py": "import torch.nn.functional as F\ndef f(:\n    F.dropout\n"})
    report = nnlint(".", "--format", "json").json()

    assert set(report) == {"version", "findings", "errors", "stats"}
    assert report["version"] == 1
    [finding] = report["findings"]
    assert set(finding) == FINDING_KEYS
    call_line = source.splitlines()[BUGGY_LINE - 1]
    assert finding["code"] == "NN301" and finding["name"] == "functional-dropout-always-on"
    assert finding["severity"] == "error" and finding["status"] == "suspected"
    assert finding["path"] == "net.py"
    # 1-based, end exclusive: the call `F.dropout(\n            x, 0.5)` spans two lines.
    assert (finding["line"], finding["column"]) == (BUGGY_LINE, call_line.index("F.dropout") + 1)
    assert (finding["end_line"], finding["end_column"]) == (BUGGY_LINE + 1, len("            x, 0.5)") + 1)
    assert finding["evidence"] is None
    # The safe fix (issue 11): insert the flag before the closing parenthesis, on the call's last line.
    insertion = {"line": BUGGY_LINE + 1, "column": len("            x, 0.5") + 1, "end_line": BUGGY_LINE + 1,
                 "end_column": len("            x, 0.5") + 1, "content": ", training=self.training"}  # fmt: skip
    assert finding["fix"] == {"message": "Pass training=self.training", "edits": [insertion]}
    assert finding["url"].endswith("docs/rules.md#nn301-functional-dropout-always-on") and "training=self.training" in finding["message"]

    assert report["errors"] == [{"path": "broken.py", "code": "NN901", "message": "syntax error: invalid syntax", "line": 2}]
    stats = report["stats"]
    assert set(stats) == {"files", "lines", "seconds"}
    assert stats["files"] == 2 and stats["lines"] == len(source.splitlines()) + 3
    assert isinstance(stats["seconds"], float) and stats["seconds"] >= 0


def test_single_line_range_is_end_exclusive(nnlint, write):
    write({"net.py": BUGGY_NET})
    [finding] = nnlint(".", "--format", "json").json()["findings"]
    call = "F.dropout(x, 0.5)"
    start = BUGGY_NET.splitlines()[BUGGY_LINE - 1].index(call) + 1
    assert (finding["line"], finding["column"], finding["end_line"], finding["end_column"]) == (
        BUGGY_LINE, start, BUGGY_LINE, start + len(call),
    )  # fmt: skip


def test_github_format_annotates_findings_and_unreadable_files(nnlint, write):
    write({"net.py": BUGGY_NET, "broken.py": "import torch.nn.functional as F\ndef f(:\n    F.dropout\n"})
    outcome = nnlint(".", "--format", "github")
    assert outcome.exit_code == 1
    finding, error = outcome.stdout.splitlines()
    assert re.fullmatch(
        rf"::error title=nnlint NN301 \(functional-dropout-always-on\),file=net\.py,line={BUGGY_LINE},col=16,"
        rf"endLine={BUGGY_LINE},endColumn=33::NN301 `dropout` in forward\(\) .*",
        finding,
    ), finding
    assert error == "::error title=nnlint NN901,file=broken.py,line=2::syntax error: invalid syntax"


def test_github_format_escapes_what_would_end_a_property_or_message(nnlint, write):
    write({"a,b:c.py": BUGGY_NET})
    [line] = nnlint(".", "--format", "github").stdout.splitlines()
    assert ",file=a%2Cb%3Ac.py,line=" in line


def test_text_format_summary(nnlint, write):
    write({"net.py": BUGGY_NET, "clean.py": CLEAN_NET, "broken.py": "import torch.nn.functional as F\nF.dropout(\n"})
    lines = nnlint(".", "--no-color").stdout.splitlines()
    assert lines[0].startswith(f"net.py:{BUGGY_LINE}:16: NN301 `dropout` in forward()")
    assert lines[1].startswith("broken.py:")
    assert lines[-1].startswith("1 finding in 3 files (NN301: 1); 1 file could not be checked; ")


# --- paths and order -----------------------------------------------------------------------------


def test_paths_are_shown_relative_to_the_current_directory(nnlint, write, tmp_path, monkeypatch):
    write({"project/pkg/net.py": BUGGY_NET, "elsewhere/.keep": ""})
    assert nnlint("project", "--format", "json").located() == [("project/pkg/net.py", BUGGY_LINE, "NN301")]

    monkeypatch.chdir(tmp_path / "project")
    outcome = nnlint(tmp_path / "project" / "pkg", "--format", "json")
    assert outcome.located() == [("pkg/net.py", BUGGY_LINE, "NN301")]

    monkeypatch.chdir(tmp_path / "elsewhere")
    outcome = nnlint("../project/pkg/net.py", "--format", "json")
    assert outcome.located() == [("../project/pkg/net.py", BUGGY_LINE, "NN301")]


def test_parallel_run_reports_the_same_findings_in_the_same_order(nnlint, write, monkeypatch):
    files = {}
    for index in range(12):
        padding = "# shifts the bug down a line\n" * (index % 4)
        files[f"pkg{index % 3}/net_{index:02}.py"] = padding + BUGGY_NET
    files["pkg1/broken.py"] = "import torch.nn.functional as F\nclass (F.dropout):\n"
    write(files)

    parallel_runs = []
    lint_parallel = runner._lint_parallel
    monkeypatch.setattr(runner, "_lint_parallel", lambda *args: parallel_runs.append(args) or lint_parallel(*args))

    serial = nnlint(".", "--format", "json", "--jobs", "1").json()
    parallel = nnlint(".", "--format", "json", "--jobs", "2").json()
    assert len(parallel_runs) == 1, "the parallel path did not run"

    assert parallel["findings"] == serial["findings"] and parallel["errors"] == serial["errors"]
    assert len(serial["findings"]) == 12 and len(serial["errors"]) == 1
    keys = [(f["path"], f["line"], f["column"]) for f in serial["findings"]]
    assert keys == sorted(keys)
    assert {f["line"] for f in serial["findings"]} == {BUGGY_LINE + padding for padding in range(4)}
