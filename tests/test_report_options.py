"""ruff's CI options on `nnlint check`: --output-file, --statistics, --show-source (issue 11, item 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BUGGY_LINE, BUGGY_NET, CLEAN_NET

from nnlint.finding import Finding
from nnlint.report.snippet import snippet
from nnlint.report.source_lines import SourceLines

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TWO_RULES = BUGGY_NET + """

class Other(nn.Module):
    def forward(self, x):
        y = F.dropout(x, 0.5)
        return F.softmax(y)
"""


# --- --output-file ------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["text", "json", "github", "sarif"])
def test_output_file_holds_exactly_what_stdout_would_and_creates_its_directories(nnlint, write, tmp_path, output_format):
    write({"net.py": BUGGY_NET})
    printed = nnlint(".", "--format", output_format)
    written = nnlint(".", "--format", output_format, "--output-file", "reports/ci/nnlint.out")
    assert written.exit_code == printed.exit_code == 1
    assert written.stdout == "" and written.stderr == ""
    text = (tmp_path / "reports" / "ci" / "nnlint.out").read_text(encoding="utf-8")
    if output_format == "text":  # the timing in the summary differs between the two runs
        assert text.splitlines()[:-1] == printed.stdout.splitlines()[:-1]
    elif output_format in ("json", "sarif"):
        without_time = lambda document: {**document, "stats": None}  # noqa: E731
        assert without_time(json.loads(text)) == without_time(printed.json())
    else:
        assert text == printed.stdout


def test_output_file_short_option_no_colour_and_clean_runs(nnlint, write, tmp_path):
    write({"net.py": BUGGY_NET, "clean.py": CLEAN_NET})
    outcome = nnlint("net.py", "-o", "out.txt", "--color")
    assert outcome.exit_code == 1 and outcome.stdout == ""
    text = (tmp_path / "out.txt").read_text()
    assert f"net.py:{BUGGY_LINE}:16: NN301 " in text and "\x1b[" not in text
    clean = nnlint("clean.py", "-o", "out.txt", "--format", "github")
    assert clean.exit_code == 0 and (tmp_path / "out.txt").read_text() == ""  # replaced, and empty


@pytest.mark.parametrize(
    ("target", "complaint"),
    [("a_directory", "is a directory"), ("a_file/report.txt", "--output-file a_file/report.txt")],
    ids=["directory", "under-a-file"],
)
def test_an_output_file_that_cannot_be_written_is_a_usage_error(nnlint, write, tmp_path, target, complaint):
    write({"net.py": BUGGY_NET, "a_file": "not a directory\n"})
    (tmp_path / "a_directory").mkdir()
    outcome = nnlint(".", "--output-file", target)
    assert outcome.exit_code == 2
    assert complaint in outcome.stderr and "Traceback" not in outcome.stderr
    assert (tmp_path / "a_file").read_text() == "not a directory\n"


# --- --statistics -------------------------------------------------------------------------------


def test_statistics_counts_findings_per_rule_most_frequent_first(nnlint, write):
    write({"net.py": TWO_RULES, "broken.py": "def f(:\n    dropout\n"})
    outcome = nnlint(".", "--statistics")
    assert outcome.exit_code == 1
    assert outcome.stdout.splitlines() == [
        "2\tNN301\tfunctional-dropout-always-on",
        "1\tNN104\tsoftmax-implicit-dim",
        "1\tNN901\tfile-not-checked",
    ]
    rows = nnlint(".", "--statistics", "--format", "json").json()
    assert rows == [
        {"code": "NN301", "name": "functional-dropout-always-on", "count": 2, "statuses": {"suspected": 2}},
        {"code": "NN104", "name": "softmax-implicit-dim", "count": 1, "statuses": {"suspected": 1}},
        {"code": "NN901", "name": "file-not-checked", "count": 1, "statuses": {}},
    ]
    assert nnlint(".", "--statistics", "--exit-zero").exit_code == 0


def test_statistics_of_a_clean_run_print_nothing_or_an_empty_array(nnlint, write):
    write({"net.py": CLEAN_NET})
    text = nnlint(".", "--statistics")
    assert (text.exit_code, text.stdout) == (0, "")
    assert nnlint(".", "--statistics", "--format", "json").json() == []


def test_statistics_count_numbers_aligned(nnlint, write):
    write({f"net{i}.py": BUGGY_NET for i in range(10)} | {"other.py": "import torch.nn.functional as F\nF.softmax(x)\n"})
    assert nnlint(".", "--statistics").stdout.splitlines() == [
        "10\tNN301\tfunctional-dropout-always-on",
        " 1\tNN104\tsoftmax-implicit-dim",
    ]


@pytest.mark.parametrize("output_format", ["github", "sarif"])
def test_statistics_in_a_format_without_a_table_is_a_usage_error_before_linting(nnlint, write, output_format):
    write({"net.py": BUGGY_NET})
    outcome = nnlint(".", "--statistics", "--format", output_format, "--confirm")
    assert outcome.exit_code == 2 and outcome.stdout == ""
    assert f"--statistics prints --format text or json, not {output_format}" in outcome.stderr


def test_statistics_show_the_confirm_pass_verdicts(nnlint, tmp_path):
    pytest.importorskip("torch")
    shutil.copytree(FIXTURES / "confirm" / "structure", tmp_path / "structure")
    outcome = nnlint("structure", "--confirm", "--show-refuted", "--statistics", "--format", "json")
    assert outcome.exit_code == 1
    verdicts = {row["code"]: row["statuses"] for row in outcome.json()}
    judged = nnlint("structure", "--confirm", "--show-refuted", "--format", "json").json()["findings"]
    expected: dict = {}
    for finding in judged:
        expected.setdefault(finding["code"], {}).setdefault(finding["status"], 0)
        expected[finding["code"]][finding["status"]] += 1
    assert verdicts == expected
    assert {"confirmed", "refuted"} <= {status for statuses in verdicts.values() for status in statuses}
    table = nnlint("structure", "--confirm", "--show-refuted", "--statistics").stdout
    assert "confirmed" in table and "refuted" in table


# --- --show-source ------------------------------------------------------------------------------


def test_show_source_underlines_the_range_with_context(nnlint, write):
    write({"net.py": TWO_RULES})
    outcome = nnlint(".", "--show-source")
    assert outcome.exit_code == 1
    blocks = outcome.stdout.split("\n\n")
    assert blocks[0].splitlines() == [
        f"net.py:{BUGGY_LINE}:16: NN301 " + blocks[0].splitlines()[0].split(" NN301 ", 1)[1],
        "  |",
        "5 | class Net(nn.Module):",
        "6 |     def forward(self, x):",
        "7 |         return F.dropout(x, 0.5)",
        "  |                ^^^^^^^^^^^^^^^^^ NN301",
        "  |",
    ]
    # Blank context lines are trimmed at the edges of the excerpt; the gutter widens with the numbers.
    assert blocks[1].splitlines()[1:] == [
        "   |",
        "10 | class Other(nn.Module):",
        "11 |     def forward(self, x):",
        "12 |         y = F.dropout(x, 0.5)",
        "   |             ^^^^^^^^^^^^^^^^^ NN301",
        "13 |         return F.softmax(y)",
        "   |",
    ]
    assert blocks[2].splitlines()[-3:] == ["13 |         return F.softmax(y)", "   |                ^^^^^^^^^^^^ NN104", "   |"]
    assert blocks[-1].startswith("3 findings in 1 file")


def test_show_source_keeps_tabs_under_tabs_and_is_text_only(nnlint, write, tmp_path):
    (tmp_path / "tabs.py").write_text("import torch.nn.functional as F\n\n\ndef f(x):\n\treturn F.softmax(x)\n")
    lines = nnlint("tabs.py", "--show-source").stdout.splitlines()
    assert lines[-5:-3] == ["5 | \treturn F.softmax(x)", "  | \t       ^^^^^^^^^^^^ NN104"]
    plain = nnlint("tabs.py", "--format", "json").json()
    shown = nnlint("tabs.py", "--format", "json", "--show-source").json()
    assert shown["findings"] == plain["findings"]


def _finding(line: int, column: int, end_line: int, end_column: int) -> Finding:
    return Finding("NN101", "view-as-permute", "error", "m", "model.py", line, column, end_line, end_column)


def test_snippet_of_multi_line_and_whole_line_ranges(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text("a = 1\nx = f(\n    y,\n    z)\nb = 2\n")
    assert snippet(_finding(2, 5, 4, 7), SourceLines()) == [
        "  |", "1 | a = 1", "2 | x = f(", "  |     ^^", "3 |     y,", "  |     ^^", "4 |     z)", "  |     ^^ NN101",
        "5 | b = 2", "  |",
    ]  # fmt: skip
    # The probes report a whole line as line..line+1 at column 1.
    assert snippet(_finding(5, 1, 6, 1), SourceLines())[-3:] == ["5 | b = 2", "  | ^^^^^ NN101", "  |"]
    assert snippet(_finding(9, 1, 9, 2), SourceLines()) == []  # the file changed since: nothing to show


def test_probe_takes_the_same_report_options(nnlint, tmp_path):
    pytest.importorskip("torch")
    shutil.copytree(FIXTURES / "buggy_vit", tmp_path / "buggy_vit")
    outcome = nnlint("probe", "buggy_vit.model:ViT", "--statistics", "--format", "json", "-o", "out/probe.json")
    assert outcome.exit_code == 1 and outcome.stdout == ""
    rows = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert {row["code"] for row in rows} >= {"NN101", "NN301", "NN201"}
    assert all(set(row["statuses"]) == {"confirmed"} for row in rows)
