"""SARIF output: valid against the official OASIS SARIF 2.1.0 schema (vendored in tests/sarif/, see its
README) for every kind of run, the fields GitHub code scanning reads, and fingerprints that follow a
finding across runs and edits."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import BUGGY_LINE, BUGGY_NET, CLEAN_NET

jsonschema = pytest.importorskip("jsonschema")

SCHEMA = json.loads((Path(__file__).parent / "sarif" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# Every format the schema names is checked (uri-reference: by rfc3986-validator), not only the structure.
VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
FINGERPRINT = "nnlint/v1"

BUGGY = """import torch.nn.functional as F

class Net:
    def forward(self, x):
        return F.dropout(x, 0.5)
"""


def sarif(nnlint, *args) -> dict:
    """`nnlint --format sarif ARGS`, checked against the schema."""
    outcome = nnlint(*args, "--format", "sarif")
    assert outcome.exit_code in (0, 1), outcome.stderr
    document = outcome.json()
    errors = sorted(VALIDATOR.iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)
    return document


def results(document: dict) -> list[dict]:
    return document["runs"][0]["results"]


def notifications(document: dict) -> list[dict]:
    return document["runs"][0]["invocations"][0]["toolExecutionNotifications"]


def uri(entry: dict) -> str:
    return entry["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def test_the_vendored_schema_is_the_official_one_and_the_validator_is_not_vacuous():
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert SCHEMA["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    minimal = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": []}]}
    assert VALIDATOR.is_valid(minimal)
    assert not VALIDATOR.is_valid(minimal | {"version": "2.0.0"})
    with_uri = {"artifactLocation": {"uri": "my dir/net.py"}}
    broken = {**minimal, "runs": [{**minimal["runs"][0], "results": [
        {"message": {"text": "m"}, "locations": [{"physicalLocation": with_uri}]}
    ]}]}  # fmt: skip
    assert not VALIDATOR.is_valid(broken), "a space in a URI must fail: formats are checked"


def test_sarif_report_has_one_located_result_per_finding(nnlint, write):
    write({"net.py": BUGGY, "broken.py": "def f(:\n    dropout\n"})
    document = sarif(nnlint, ".")
    run = document["runs"][0]
    assert document["version"] == "2.1.0"
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} >= {"NN301"}
    [result] = run["results"]
    assert result["ruleId"] == "NN301" and result["level"] == "error"
    assert result["properties"]["status"] == "suspected"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "net.py"
    assert location["region"]["startLine"] == 5 and location["region"]["startColumn"] == 16
    [notification] = notifications(document)
    assert notification["descriptor"]["id"] == "NN901"
    assert uri(notification) == "broken.py"
    assert notification["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert run["invocations"][0]["executionSuccessful"] is True


def test_an_empty_run_is_valid_sarif(nnlint, write):
    write({"net.py": CLEAN_NET})
    document = sarif(nnlint, ".")
    assert results(document) == [] and notifications(document) == []
    nothing = sarif(nnlint, "net.py", "--select", "NN101")  # a file without the rule's trigger words
    assert results(nothing) == []


def test_paths_that_are_not_plain_uris_are_encoded(nnlint, write, tmp_path, monkeypatch):
    write({"project/my models/net.py": BUGGY, "elsewhere/net.py": BUGGY})
    monkeypatch.chdir(tmp_path / "project")
    document = sarif(nnlint, "my models", "../elsewhere/net.py")
    assert sorted(uri(result) for result in results(document)) == ["../elsewhere/net.py", "my%20models/net.py"]


def test_an_internal_error_is_a_failed_execution(nnlint, write, monkeypatch):
    from nnlint.rule import all_rules

    [dropout_rule] = [rule for rule in all_rules() if rule.code == "NN301"]

    def crash(self, node):
        raise ValueError("rule bug")

    monkeypatch.setattr(dropout_rule, "visit_Call", crash)
    write({"net.py": BUGGY_NET})
    outcome = nnlint(".", "--format", "sarif", "--jobs", "1")
    assert outcome.exit_code == 2
    document = outcome.json()
    assert VALIDATOR.is_valid(document)
    assert document["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert [n["descriptor"]["id"] for n in notifications(document)] == ["NN900"]


# --- fingerprints -------------------------------------------------------------------------------


def _prints(document: dict) -> list[tuple[int, str]]:
    return [
        (r["locations"][0]["physicalLocation"]["region"]["startLine"], r["partialFingerprints"][FINGERPRINT])
        for r in results(document)
    ]


TWO_DROPOUTS = BUGGY_NET + """

class Other(nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5)
"""


def test_fingerprints_are_stable_across_runs_and_edits_above_and_unique(nnlint, write, tmp_path):
    write({"net.py": TWO_DROPOUTS})
    first = _prints(sarif(nnlint, "."))
    assert [line for line, _ in first] == [BUGGY_LINE, BUGGY_LINE + 5]
    assert first[0][1] != first[1][1], "identical lines get their occurrence index"
    assert _prints(sarif(nnlint, ".")) == first

    # Unrelated edits above and between the findings move their lines, not their fingerprints; so
    # does re-indenting the finding's own line.
    edited = TWO_DROPOUTS.replace("import torch.nn.functional as F\n", '"""Docs."""\nimport os\nimport torch.nn.functional as F\n')
    edited = edited.replace("\n\nclass Other", "\n\nSIZE = 3\n\n\nclass Other")
    edited = edited.replace("        return F.dropout(x, 0.5)\n", "        return  F.dropout(x,  0.5)\n", 1)
    (tmp_path / "net.py").write_text(edited)
    moved = _prints(sarif(nnlint, "."))
    assert [line for line, _ in moved] == [BUGGY_LINE + 2, BUGGY_LINE + 10]
    assert [fingerprint for _, fingerprint in moved] == [fingerprint for _, fingerprint in first]

    # The same finding in another file is another alert.
    shutil.copy(tmp_path / "net.py", tmp_path / "copy.py")
    both = results(sarif(nnlint, "."))
    assert len({r["partialFingerprints"][FINGERPRINT] for r in both}) == 4


# --- every status and the confirm pass's diagnostics (needs torch) ---------------------------------


def test_findings_of_every_status_and_both_diagnostics_are_valid_sarif(nnlint, write, tmp_path):
    pytest.importorskip("torch")
    for name in ("structure", "activations"):
        shutil.copytree(FIXTURES / "confirm" / name, tmp_path / name)
    shutil.copy(FIXTURES / "confirm" / "hostile" / "crash_in_forward.py", tmp_path)
    write({
        "implicit.py": "import torch.nn.functional as F\n\n\ndef probabilities(x):\n    return F.softmax(x)\n",  # NN104: static only
        "broken.py": "def f(:\n    dropout\n",
    })  # fmt: skip
    document = sarif(nnlint, ".", "--confirm", "--show-refuted")
    statuses = {result["properties"]["status"] for result in results(document)}
    assert statuses == {"suspected", "confirmed", "refuted", "unverifiable"}
    for result in results(document):
        if result["properties"]["status"] == "refuted":
            assert (result["kind"], result["level"]) == ("pass", "none")
        else:
            assert "kind" not in result and result["level"] in ("error", "warning", "note")
    codes = {(n["descriptor"]["id"], uri(n)) for n in notifications(document)}
    assert codes == {("NN901", "broken.py"), ("NN902", "crash_in_forward.py")}


def test_the_readme_workflow_writes_the_sarif_file_it_uploads(nnlint, write, tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    workflow = readme.split("## CI: GitHub code scanning", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    [command] = [line.split("run:", 1)[1].split() for line in workflow.splitlines() if "run: nnlint" in line]
    [uploaded] = [line.split(":", 1)[1].strip() for line in workflow.splitlines() if "sarif_file:" in line]
    assert "upload-sarif" in workflow and "security-events: write" in workflow
    write({"net.py": BUGGY})
    outcome = nnlint(*command[1:])
    assert outcome.exit_code == 1 and outcome.stdout == ""
    document = json.loads((tmp_path / uploaded).read_text())
    assert VALIDATOR.is_valid(document)
    assert [result["ruleId"] for result in results(document)] == ["NN301"]


def test_notebook_results_are_valid_and_fingerprinted_by_their_cell_code(nnlint, write):
    """A notebook's line is in a cell, not in the JSON file: the fingerprint must not read the file's line
    (it hashes the message, which quotes the code), and stays put when a cell is added above."""
    from test_notebooks import BUGGY_CELL, IMPORTS, notebook

    write({"train.ipynb": notebook(IMPORTS, BUGGY_CELL)})
    [before] = results(sarif(nnlint, "train.ipynb"))
    write({"train.ipynb": notebook(IMPORTS, "x = 1\n", BUGGY_CELL)})
    [after] = results(sarif(nnlint, "train.ipynb"))
    assert before["properties"]["cell"] == 2 and after["properties"]["cell"] == 3
    assert before["partialFingerprints"] == after["partialFingerprints"]
