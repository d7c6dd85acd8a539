"""What docs/confirm.md ("Trust") says the confirm pass does NOT guard, pinned: the project's code runs
in nnlint's current directory, with the user's environment and file system, and its output stays out
of nnlint's. If a change makes the sandbox stricter, this test and that section change together."""

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

MODEL = '''
import json
import os

from torch import nn

print("printed while importing the model")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        with open("written_by_the_constructor.json", "w") as out:
            json.dump({"cwd": os.getcwd(), "variable": os.environ.get("NNLINT_TRUST_TEST")}, out)

    def forward(self, x):
        return self.fc(x)
'''


def test_the_project_code_runs_here_as_the_user_and_its_output_stays_out(nnlint, write, tmp_path, monkeypatch):
    monkeypatch.setenv("NNLINT_TRUST_TEST", "the user's environment")
    write({"model.py": MODEL})
    outcome = nnlint("--confirm", ".")
    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    assert "printed while importing" not in outcome.stdout + outcome.stderr
    seen = json.loads((tmp_path / "written_by_the_constructor.json").read_text())
    assert Path(seen["cwd"]) == tmp_path.resolve()
    assert seen["variable"] == "the user's environment"
