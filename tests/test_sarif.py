"""SARIF output: the fields GitHub code scanning requires, one result per finding."""

import json

from click.testing import CliRunner

from nnlint.cli import main

BUGGY = """import torch.nn.functional as F

class Net:
    def forward(self, x):
        return F.dropout(x, 0.5)
"""


def test_sarif_report_has_one_located_result_per_finding(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(BUGGY)
    (tmp_path / "broken.py").write_text("def f(:\n    dropout\n")
    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(main, [".", "--format", "sarif"])
    assert outcome.exit_code == 1
    run = json.loads(outcome.output)["runs"][0]
    assert json.loads(outcome.output)["version"] == "2.1.0"
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} >= {"NN301"}
    [result] = run["results"]
    assert result["ruleId"] == "NN301" and result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "net.py"
    assert location["region"]["startLine"] == 5 and location["region"]["startColumn"] == 16
    [notification] = run["invocations"][0]["toolExecutionNotifications"]
    assert notification["descriptor"]["id"] == "NN901"
    assert notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.py"
