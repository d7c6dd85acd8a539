"""Jupyter notebooks through the real `nnlint` command: code cells linted, IPython syntax skipped
without moving anything, findings located by cell and line in every output format."""

from __future__ import annotations

import json

import pytest
from conftest import BUGGY_NET

IMPORTS = "import torch.nn.functional as F\nfrom torch import nn\n"
# NN301 at line 3, column 16 of its cell.
BUGGY_CELL = "class Net(nn.Module):\n    def forward(self, x):\n        return F.dropout(x, 0.5)\n"


def notebook(*cells: str | tuple[str, str], language: str = "python", as_lines: bool = True) -> str:
    """An nbformat-4 notebook; a plain string is a code cell, ("markdown", text) another kind."""

    def cell(spec: str | tuple[str, str]) -> dict:
        kind, source = spec if isinstance(spec, tuple) else ("code", spec)
        record = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True) if as_lines else source}
        if kind == "code":
            record.update(execution_count=None, outputs=[])
        return record

    metadata = {"kernelspec": {"name": language}, "language_info": {"name": language}}
    return json.dumps({"cells": [cell(c) for c in cells], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


TRAINING = notebook(("markdown", "# Train a model\n"), IMPORTS, ("markdown", "The model:\n"), BUGGY_CELL)


def test_finding_located_by_cell_and_line_in_text(nnlint, write):
    write({"train.ipynb": TRAINING})
    outcome = nnlint("train.ipynb")
    assert outcome.exit_code == 1
    assert outcome.stdout.startswith("train.ipynb:cell 4:3:16: NN301 `dropout` in forward()"), outcome.stdout


def test_json_findings_carry_the_cell(nnlint, write):
    write({"train.ipynb": TRAINING, "net.py": BUGGY_NET})
    findings = nnlint(".", "--format", "json").json()["findings"]
    in_notebook = next(f for f in findings if f["path"] == "train.ipynb")
    assert (in_notebook["cell"], in_notebook["line"], in_notebook["column"]) == (4, 3, 16)
    assert (in_notebook["end_line"], in_notebook["end_column"]) == (3, len("        return F.dropout(x, 0.5)") + 1)
    in_python_file = next(f for f in findings if f["path"] == "net.py")
    assert "cell" not in in_python_file  # the records of Python files keep their shape


def test_github_annotation_names_the_cell_on_the_whole_file(nnlint, write):
    write({"train.ipynb": TRAINING})
    [annotation] = nnlint("train.ipynb", "--format", "github").stdout.splitlines()
    # A cell's line is not a line of the JSON file: no line= property, the cell in the message.
    assert annotation.startswith("::error title=nnlint NN301 (functional-dropout-always-on),file=train.ipynb::")
    assert annotation.split("::")[2].startswith("cell 4:3:16: NN301 ")


def test_sarif_result_names_the_cell(nnlint, write):
    write({"train.ipynb": TRAINING})
    [result] = json.loads(nnlint("train.ipynb", "--format", "sarif").stdout)["runs"][0]["results"]
    assert result["message"]["text"].startswith("cell 4:3:16: `dropout`")
    assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "train.ipynb"}, "region": {"startLine": 1}}
    assert result["properties"]["cell"] == 4
    assert result["properties"]["cellRegion"] == {"startLine": 3, "startColumn": 16, "endLine": 3, "endColumn": 33}


def test_magics_shell_escapes_and_help_keep_positions(nnlint, write):
    cell = (
        "%load_ext autoreload\n"
        "!pip install torch \\\n"
        "    torchvision\n"
        "files = !ls data\n"
        "F.dropout?\n"
        "?nn.Linear\n"
        "message = ('epoch %d'\n"
        "           % 3)\n"  # a `%` that goes on with a statement is Python
        "class Net(nn.Module):\n"
        "    def forward(self, x):\n"
        "        %time y = x\n"
        "        return F.dropout(x, 0.5)\n"
    )
    write({"magic.ipynb": notebook("%matplotlib inline\n" + IMPORTS, cell)})
    outcome = nnlint("magic.ipynb", "--format", "json")
    assert outcome.json()["errors"] == []
    assert [(f["code"], f["cell"], f["line"], f["column"]) for f in outcome.json()["findings"]] == [("NN301", 2, 12, 16)]


def test_python_cell_magic_is_linted_other_cell_magics_skipped(nnlint, write):
    bash_cell = "\n%%bash\n" + BUGGY_CELL  # Python-looking text that IPython hands to bash
    write({"cells.ipynb": notebook(IMPORTS, bash_cell, "%%time\n" + BUGGY_CELL, "%%writefile x.py\ndef f(:\n")})
    outcome = nnlint("cells.ipynb", "--format", "json")
    assert [(f["cell"], f["line"]) for f in outcome.json()["findings"]] == [(3, 4)]
    assert outcome.json()["errors"] == []


def test_a_cell_written_indented_runs_dedented_and_keeps_its_columns(nnlint, write):
    indented = "".join("    " + line + "\n" for line in BUGGY_CELL.splitlines())
    write({"indented.ipynb": notebook(IMPORTS, indented)})
    outcome = nnlint("indented.ipynb", "--format", "json")
    assert [(f["cell"], f["line"], f["column"], f["end_column"]) for f in outcome.json()["findings"]] == [
        (2, 3, 20, len("            return F.dropout(x, 0.5)") + 1)
    ]


def test_source_as_one_string_is_read_too(nnlint, write):
    write({"one.ipynb": notebook(IMPORTS, BUGGY_CELL, as_lines=False)})
    assert nnlint("one.ipynb", "--format", "json").located() == [("one.ipynb", 3, "NN301")]


def test_noqa_in_a_cell(nnlint, write):
    silenced = BUGGY_CELL.replace("0.5)\n", "0.5)  # noqa: NN301\n")
    write({"quiet.ipynb": notebook(IMPORTS, silenced, BUGGY_CELL)})
    findings = nnlint("quiet.ipynb", "--format", "json").json()["findings"]
    assert [(f["cell"], f["line"]) for f in findings] == [(3, 3)]


def test_message_lines_name_the_cell(nnlint, write):
    loop = "for x, y in loader:\n    loss = ((model(x) - y) ** 2).mean()\n    loss.backward()\n    optimizer.step()\n"
    setup = "import torch\nmodel = torch.nn.Linear(10, 1)\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    write({"loop.ipynb": notebook(setup, ("markdown", "Train:\n"), loop)})
    [finding] = nnlint("loop.ipynb", "--format", "json", "--select", "NN404").json()["findings"]
    assert (finding["cell"], finding["line"]) == (3, 4)
    assert "the loop at cell 3, line 1 back-propagates (`loss.backward()`, cell 3, line 3)" in finding["message"]


def test_syntax_error_located_by_cell(nnlint, write):
    write({"broken.ipynb": notebook(IMPORTS, "x = F.dropout(\n", "y = 1\n")})
    outcome = nnlint("broken.ipynb")
    assert outcome.exit_code == 1
    assert outcome.stdout.startswith("broken.ipynb:cell 2:1: NN901 syntax error"), outcome.stdout
    [error] = nnlint("broken.ipynb", "--format", "json").json()["errors"]
    assert (error["cell"], error["line"], error["code"]) == (2, 1, "NN901")


def test_rule_prefilter_applies_to_notebooks(nnlint, write):
    # Code with no rule's trigger word is not parsed, in a notebook as in a .py file: its syntax
    # error goes unreported, exactly as `def f(:` in a plain file without trigger words.
    write({"plain.ipynb": notebook("def f(:\n"), "plain.py": "def f(:\n", "triggered.ipynb": notebook("F.dropout(\n")})
    assert [error["path"] for error in nnlint(".", "--format", "json").json()["errors"]] == ["triggered.ipynb"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a notebook: invalid JSON at line 1"),
        ('{"nbformat": 3, "worksheets": []}', "nbformat 3 notebook: save it with Jupyter to convert it to format 4"),
        ("[1, 2]", "not a notebook: no `cells` list"),
        ('{"cells": [{"cell_type": "code", "source": 3}]}', "cell 1: `source` is neither a string nor a list"),
        (b"\xff\xfe{", "cannot decode the notebook"),
        ("[" * 100_000, "not a notebook: its JSON is nested too deeply"),
    ],
)
def test_bad_notebook_is_reported_not_crashed(nnlint, write, content, message):
    write({"bad.ipynb": content, "net.py": BUGGY_NET})
    outcome = nnlint(".")
    assert outcome.exit_code == 1
    assert f"bad.ipynb: NN901 {message}" in outcome.stdout
    assert "net.py:7:" in outcome.stdout  # the run goes on with the other files


def test_notebook_in_another_language_is_not_linted(nnlint, write):
    write({"r.ipynb": notebook("library(torch)\nx <- F.dropout(x, 0.5)\n", language="R")})
    outcome = nnlint("r.ipynb")
    assert outcome.exit_code == 0, outcome.stdout


def test_odd_metadata_means_python(nnlint, write):
    document = json.loads(TRAINING)
    document["metadata"] = {"language_info": "python3"}
    write({"odd.ipynb": json.dumps(document)})
    assert nnlint("odd.ipynb", "--format", "json").located() == [("odd.ipynb", 3, "NN301")]


def test_directory_walk_finds_notebooks_not_checkpoints(nnlint, write):
    write({
        "nb/train.ipynb": TRAINING,
        "nb/.ipynb_checkpoints/train-checkpoint.ipynb": TRAINING,
        "nb/net.py": BUGGY_NET,
        "nb/notes.json": TRAINING,
    })  # fmt: skip
    assert [path for path, _, _ in nnlint(".", "--format", "json").located()] == ["nb/net.py", "nb/train.ipynb"]


def test_notebook_findings_stay_suspected_under_confirm(nnlint, write):
    pytest.importorskip("torch")
    write({"train.ipynb": TRAINING})
    outcome = nnlint("--confirm", "train.ipynb", "--format", "json")
    [finding] = outcome.json()["findings"]
    assert (finding["cell"], finding["line"], finding["status"]) == (4, 3, "suspected")
    assert outcome.json()["errors"] == []
