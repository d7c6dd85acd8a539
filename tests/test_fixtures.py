"""The example projects in fixtures/: exactly the planted bugs are found, and nothing in correct code.

`buggy_vit` plants each headline bug where an engineer would write it;
`loop_bugs` the training-loop bugs; `model_bugs` the model and loss bugs,
with the model in model.py and its loss in train.py; `clean_cnn`,
`clean_loops` and `clean_models` are correct projects, the last two full of
look-alikes; `traps` is correct code that looks like the bugs (RULES.md's
traps column). A finding that appears or
disappears here is a change a user would see.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import invoke

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# (path, line, code, what that line says): the bugs planted in buggy_vit.
PLANTED_BUGS = [
    ("buggy_vit/model.py", 18, "NN101", "x = x.view(b, h * w, c)"),  # after b, c, h, w = x.shape
    ("buggy_vit/model.py", 49, "NN301", "x = F.dropout(x, self.p)"),  # in MLP.forward
    ("buggy_vit/model.py", 84, "NN201", "nn.init.zeros_(m.weight)"),  # for every nn.Linear
    ("buggy_vit/train.py", 46, "NN401", "StepLR(optimizer, 30, 0.1)"),  # with --epochs default 20
    ("buggy_vit/train.py", 57, "NN402", "scheduler.step()"),  # inside the batch loop
]
# (path, line, code, what that line says): the training-loop bugs planted in loop_bugs.
LOOP_BUGS = [
    ("loop_bugs/finetune.py", 25, "NN302", "model(images)"),  # evaluate() under no_grad, after model.train()
    ("loop_bugs/finetune.py", 31, "NN601", "DataLoader(train_set, batch_size=32)"),  # the training loader
    ("loop_bugs/finetune.py", 36, "NN305", "param.requires_grad = False"),  # model.train() each epoch after
    ("loop_bugs/finetune.py", 38, "NN407", "model.head = nn.Linear(32, 5)"),  # after the optimizer was built
    ("loop_bugs/finetune.py", 47, "NN506", "running_loss += loss"),  # keeps each batch's graph
    ("loop_bugs/train.py", 34, "NN303", "model.eval()"),  # in validate(), called after each epoch's training
    ("loop_bugs/train.py", 41, "NN602", "next(iter(loader))"),  # in warm_up's step loop
    ("loop_bugs/train.py", 44, "NN502", "probs.log()"),  # probs = model(images).softmax(1) on the line before
    ("loop_bugs/train.py", 45, "NN508", "loss.backward()"),  # on torch.tensor(...item(), requires_grad=True)
    ("loop_bugs/train.py", 61, "NN403", "scheduler.step()"),  # at the top of the epoch, before train_epoch
]
# (path, line, code, what that line says): the model and loss bugs planted in model_bugs, split across files.
MODEL_BUGS = [
    ("model_bugs/model.py", 18, "NN101", "q = q.reshape(B, self.heads, T, C // self.heads)"),  # on (B, T, C)
    ("model_bugs/model.py", 19, "NN101", "k = k.reshape(B, self.heads, T, C // self.heads)"),
    ("model_bugs/model.py", 20, "NN101", "v = v.reshape(B, self.heads, T, C // self.heads)"),
    ("model_bugs/model.py", 30, "NN203", "self.blocks = [Attention(dim, heads) for _ in range(depth)]"),
    ("model_bugs/model.py", 37, "NN204", "gate = nn.Linear(x.size(-1), 1)(x)"),  # a new layer every call
    ("model_bugs/model.py", 39, "NN104", "return F.softmax(self.head(x))"),  # no dim
    ("model_bugs/train.py", 16, "NN501", "loss = criterion(model(tokens), labels)"),  # CrossEntropyLoss on it
]
EXPECTED = {
    "buggy_vit": [bug[:3] for bug in PLANTED_BUGS],
    "loop_bugs": [bug[:3] for bug in LOOP_BUGS],
    "model_bugs": [bug[:3] for bug in MODEL_BUGS],
    "clean_cnn": [],
    "clean_loops": [],
    "clean_models": [],
    "traps": [],
}


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_fixture_project_gives_exactly_the_expected_findings(project, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    outcome = invoke(project, "--format", "json")
    report = outcome.json()
    assert report["errors"] == []
    assert report["stats"]["files"] == len(list((FIXTURES / project).rglob("*.py")))
    assert outcome.located() == EXPECTED[project]
    assert outcome.exit_code == (1 if EXPECTED[project] else 0)


@pytest.mark.parametrize(
    ("path", "line", "code", "text"),
    PLANTED_BUGS + LOOP_BUGS + MODEL_BUGS,
    ids=[bug[2] for bug in PLANTED_BUGS + LOOP_BUGS + MODEL_BUGS],
)
def test_the_expected_lines_still_hold_the_planted_bugs(path, line, code, text):
    """Editing a fixture shifts lines: this says which expectation to update."""
    assert text in (FIXTURES / path).read_text().splitlines()[line - 1]
