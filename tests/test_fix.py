"""`nnlint --fix` and `--diff` on real files: what each fix writes, and what must never change.

The tests run the real command (click's runner in this process) on files in a temporary directory
and compare bytes: encodings, BOMs and line endings survive, a second run changes nothing, `--diff`
and failures write nothing. The last one checks the safety net under every fix with a deliberately wrong one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
from dataclasses import replace

import pytest

from nnlint.finding import Edit, Fix
from nnlint.fixer import FixError, fix_source
from nnlint.rule import rule_by_code
from nnlint.static import lint_source

DROPOUT = """\
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5)
"""
DROPOUT_FIXED = DROPOUT.replace("F.dropout(x, 0.5)", "F.dropout(x, 0.5, training=self.training)")


def _snapshot(path):
    return path.read_bytes(), os.stat(path).st_mtime_ns


@pytest.mark.parametrize(
    ("source", "fixed", "options"),
    [
        (DROPOUT, DROPOUT_FIXED, []),
        (
            "import torch\nimport torch.nn.functional as F\n\n\ndef nll(x):\n    return torch.log(F.softmax(x, dim=1))\n",
            "import torch\nimport torch.nn.functional as F\n\n\ndef nll(x):\n    return F.log_softmax(x, dim=1)\n",
            [],
        ),
        (
            "import torch\n\nmodel = torch.nn.Sequential(torch.nn.Linear(4, 2))\ntorch.save(model, 'm.pt')\n",
            "import torch\n\nmodel = torch.nn.Sequential(torch.nn.Linear(4, 2))\ntorch.save(model.state_dict(), 'm.pt')\n",
            ["--extend-select", "NN704"],
        ),
    ],
    ids=["NN301", "NN502", "NN704"],
)
def test_fix_rewrites_the_file_and_reports_nothing_left(nnlint, tmp_path, source, fixed, options):
    (tmp_path / "train.py").write_text(source)
    outcome = nnlint("--fix", *options, "train.py")
    assert (tmp_path / "train.py").read_text() == fixed
    assert outcome.exit_code == 0, outcome.stdout
    assert "No findings" in outcome.stdout
    assert "nnlint: fixed 1 finding in 1 file; 0 remaining" in outcome.stderr


def test_what_has_no_fix_is_reported_and_left_alone(nnlint, tmp_path):
    """A dropout in a class that may not be a module has no safe fix; a `# noqa` finding is not fixed."""
    source = DROPOUT.replace("nn.Module", "Base") + "\n\nclass Head(nn.Module):\n    def forward(self, x):\n        return F.dropout(x, 0.1)  # noqa: NN301\n"
    (tmp_path / "net.py").write_text(source)
    outcome = nnlint("--fix", "net.py")
    assert (tmp_path / "net.py").read_text() == source
    assert outcome.exit_code == 1
    assert "net.py:7:16: NN301" in outcome.stdout
    assert "fixed 0 findings in 0 files; 1 remaining" in outcome.stderr


def test_crlf_bom_file_keeps_its_bom_and_line_endings(nnlint, tmp_path):
    path = tmp_path / "net.py"
    path.write_bytes(b"\xef\xbb\xbf" + DROPOUT.replace("\n", "\r\n").encode())
    outcome = nnlint("--fix", "net.py")
    assert path.read_bytes() == b"\xef\xbb\xbf" + DROPOUT_FIXED.replace("\n", "\r\n").encode()
    assert outcome.exit_code == 0


def test_latin1_file_stays_latin1(nnlint, tmp_path):
    source = "# -*- coding: latin-1 -*-\n# réseau à deux couches\n" + DROPOUT
    path = tmp_path / "net.py"
    path.write_bytes(source.encode("latin-1"))
    nnlint("--fix", "net.py")
    fixed = ("# -*- coding: latin-1 -*-\n# réseau à deux couches\n" + DROPOUT_FIXED).encode("latin-1")
    assert path.read_bytes() == fixed


def test_mixed_line_endings_and_a_call_over_lines_in_nested_blocks(nnlint, tmp_path):
    source = (
        "import torch.nn.functional as F\r\nfrom torch import nn\n\nclass Net(nn.Module):\r\n"
        "    def forward(self, x):\n        if x.dim() > 2:\r\n            x = (F.dropout(\r\n"
        "                x,\r\n                0.5,\r\n            ))\r\n        return x\n"
    )
    path = tmp_path / "net.py"
    path.write_bytes(source.encode())
    nnlint("--fix", "net.py")
    assert path.read_bytes() == source.replace("0.5,\r\n", "0.5, training=self.training,\r\n").encode()


def test_a_second_fix_run_changes_no_byte_and_does_not_rewrite(nnlint, tmp_path):
    path = tmp_path / "net.py"
    path.write_text(DROPOUT)
    nnlint("--fix", "net.py")
    before = _snapshot(path)
    outcome = nnlint("--fix", "net.py")
    assert _snapshot(path) == before
    assert outcome.exit_code == 0
    assert "fixed 0 findings" in outcome.stderr


def test_overlapping_fixes_apply_in_rounds(nnlint, tmp_path):
    """The outer log(softmax) fix covers the inner one: the inner one is applied in the next round."""
    path = tmp_path / "loss.py"
    path.write_text("import torch\nfrom torch.nn import functional as F\n\ny = torch.log(F.softmax(torch.log(F.softmax(x, 1)), 0))\n")
    outcome = nnlint("--fix", "loss.py")
    assert path.read_text().endswith("\ny = F.log_softmax(F.log_softmax(x, 1), 0)\n")
    assert "fixed 2 findings in 1 file; 0 remaining" in outcome.stderr


def test_diff_prints_the_fixes_and_writes_nothing(nnlint, tmp_path):
    path = tmp_path / "net.py"
    path.write_text(DROPOUT)
    before = _snapshot(path)
    outcome = nnlint("--diff", ".")
    assert _snapshot(path) == before
    assert outcome.exit_code == 1
    assert outcome.stdout == (
        "--- a/net.py\n+++ b/net.py\n@@ -4,4 +4,4 @@\n \n class Net(nn.Module):\n     def forward(self, x):\n"
        "-        return F.dropout(x, 0.5)\n+        return F.dropout(x, 0.5, training=self.training)\n"
    )
    assert "nnlint: would fix 1 finding in 1 file" in outcome.stderr


def test_diff_marks_a_last_line_without_line_break(nnlint, tmp_path):
    (tmp_path / "net.py").write_text(DROPOUT.rstrip("\n"))
    outcome = nnlint("--diff", "net.py")
    assert outcome.stdout.endswith("+        return F.dropout(x, 0.5, training=self.training)\n\\ No newline at end of file\n")


def test_diff_splits_lines_where_python_does(nnlint, tmp_path):
    """A form feed (PEP 8's page break) is inside a line, not a line break."""
    (tmp_path / "net.py").write_text(DROPOUT.replace("\n\nclass", "\n\x0c\nclass"))
    outcome = nnlint("--diff", "net.py")
    assert "\n \x0c\n class Net(nn.Module):\n" in outcome.stdout
    assert "No newline" not in outcome.stdout


def test_diff_with_nothing_to_fix_exits_0(nnlint, tmp_path):
    (tmp_path / "net.py").write_text(DROPOUT_FIXED)
    outcome = nnlint("--diff", ".")
    assert (outcome.exit_code, outcome.stdout) == (0, "")


def test_a_file_with_a_syntax_error_is_untouched_and_the_others_are_fixed(nnlint, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(DROPOUT + "    def (:\n")
    before = _snapshot(broken)
    (tmp_path / "net.py").write_text(DROPOUT)
    outcome = nnlint("--fix", ".")
    assert _snapshot(broken) == before
    assert (tmp_path / "net.py").read_text() == DROPOUT_FIXED
    assert "broken.py:8: NN901 syntax error" in outcome.stdout
    assert outcome.exit_code == 1


def test_a_read_only_file_is_a_clear_error_and_stays_as_it_was(nnlint, tmp_path):
    path = tmp_path / "net.py"
    path.write_text(DROPOUT)
    path.chmod(0o444)
    (tmp_path / "other.py").write_text(DROPOUT)
    before = _snapshot(path)
    outcome = nnlint("--fix", ".")
    assert _snapshot(path) == before
    assert "nnlint: error: cannot write fixes to net.py: the file is read-only" in outcome.stderr
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.exit_code == 2
    assert (tmp_path / "other.py").read_text() == DROPOUT_FIXED
    assert "net.py:7:16: NN301" in outcome.stdout  # still there, still reported


def test_fix_keeps_permissions_and_writes_through_a_symlink(nnlint, tmp_path):
    real = tmp_path / "src" / "net.py"
    real.parent.mkdir()
    real.write_text(DROPOUT)
    real.chmod(0o754)
    link = tmp_path / "net_link.py"
    link.symlink_to(real)
    nnlint("--fix", "net_link.py")
    assert link.is_symlink()
    assert real.read_text() == DROPOUT_FIXED
    assert stat.S_IMODE(real.stat().st_mode) == 0o754
    assert [p.name for p in real.parent.iterdir()] == ["net.py"]  # no temporary file left


def test_a_notebook_finding_has_no_fix_and_the_notebook_is_untouched(nnlint, tmp_path):
    """A notebook's findings are located by cell; edits in the joined cells' text could not be applied
    to its JSON, so they carry no fix and --fix leaves the file as it was."""
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": DROPOUT}]
    path = tmp_path / "explore.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    before = _snapshot(path)
    [finding] = nnlint("--format", "json", "explore.ipynb").json()["findings"]
    assert (finding["code"], finding["cell"], finding["line"], finding["fix"]) == ("NN301", 1, 7, None)
    outcome = nnlint("--fix", "explore.ipynb")
    assert _snapshot(path) == before
    assert outcome.exit_code == 1
    assert "fixed 0 findings in 0 files; 1 remaining" in outcome.stderr


def test_fix_with_json_prints_only_the_remaining_findings_as_json(nnlint, tmp_path):
    (tmp_path / "net.py").write_text(DROPOUT + "\n\ndef loss(x):\n    return x.softmax(-1).log()\n")
    outcome = nnlint("--fix", "--format", "json", "net.py")
    assert outcome.located() == [("net.py", 11, "NN502")]
    assert outcome.json()["findings"][0]["fix"] is None


def test_json_carries_the_fix_for_editors(nnlint, tmp_path):
    (tmp_path / "net.py").write_text(DROPOUT)
    [finding] = nnlint("--format", "json", "net.py").json()["findings"]
    assert finding["fix"] == {
        "message": "Pass training=self.training",
        "edits": [{"line": 7, "column": 32, "end_line": 7, "end_column": 32, "content": ", training=self.training"}],
    }


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the confirm pass runs the model")
def test_fix_then_confirm_judges_the_fixed_code(nnlint, tmp_path):
    """Fixes come from the static pass, before the confirm pass: the probe then runs the fixed forward,
    which is deterministic in eval() (unfixed, it would confirm NN301 at runtime)."""
    source = DROPOUT.replace(
        "class Net(nn.Module):\n",
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(8, 4)\n\n",
    ).replace("return F.dropout(x, 0.5)", "return self.fc(F.dropout(x, 0.5))")
    (tmp_path / "net.py").write_text(source)
    outcome = nnlint("--fix", "--confirm", "net.py")
    assert "F.dropout(x, 0.5, training=self.training)" in (tmp_path / "net.py").read_text()
    assert outcome.exit_code == 0, outcome.stdout
    assert "No findings" in outcome.stdout


def test_a_fix_that_would_break_the_file_is_refused():
    """The safety net under every rule's fix: a round whose result no longer parses stops the file
    (here a deliberately wrong fix, standing for a rule bug, deletes the colon of the class line)."""
    broken = Fix("wrong", (Edit(5, 21, 5, 22, ""),))

    def lint(data):
        result = lint_source(data, "net.py", [rule_by_code("NN301")], 10**7)
        if data == DROPOUT.encode():
            result.findings = [replace(result.findings[0], fix=broken)]
        return result

    with pytest.raises(FixError, match=r"net.py: not fixed, the fixes would break it \(syntax error"):
        fix_source(DROPOUT.encode(), lint)
