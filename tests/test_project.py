"""A training run split across files: the loop in `train.py`, its steps in `engine.py` (nnlint.project).

The script model follows a call into another project file as it follows a call of the file's own
functions; a bug that spans the files is reported in the file that runs the loop, at the call that
leads there, and a bug inside one function is reported once, in the file that has it.
"""

from __future__ import annotations

import pytest

MODEL = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 10), nn.Dropout(0.5), nn.Linear(10, 2))

    def forward(self, x):
        return self.body(x)
"""

ENGINE = """\
import torch


def train_one_epoch(model, loader, optimizer, criterion):
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()


def evaluate(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct
"""

TRAIN = """\
import torch
from torch import nn

from {engine} import evaluate, train_one_epoch
from model import Net

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
train_loader = torch.utils.data.DataLoader(range(10), shuffle=True)
val_loader = torch.utils.data.DataLoader(range(10))

for epoch in range(10):
    train_one_epoch(model, train_loader, optimizer, criterion)
    print(evaluate(model, val_loader))
"""
CALL_LINE = 15  # `evaluate(model, val_loader)` in TRAIN


def _project(write, engine=ENGINE, train=TRAIN, engine_module="engine"):
    write({"model.py": MODEL, "engine.py": engine, "train.py": train.format(engine=engine_module)})


def test_eval_in_another_file_never_undone(nnlint, write):
    _project(write)
    outcome = nnlint("--select", "NN303", "--format", "json", ".")
    assert outcome.located() == [("train.py", CALL_LINE, "NN303")]
    message = outcome.json()["findings"][0]["message"]
    assert "`model.eval()` (engine.py:13, run by `evaluate(model, val_loader)`) is never undone" in message
    assert "trains `model(x)` (engine.py:7)" in message


def test_evaluation_in_another_file_without_eval(nnlint, write):
    _project(write, engine=ENGINE.replace("    model.eval()\n", ""))
    outcome = nnlint("--select", "NN302,NN303", "--format", "json", ".")
    assert outcome.located() == [("train.py", CALL_LINE, "NN302")]
    message = outcome.json()["findings"][0]["message"]
    assert "in `evaluate()` (engine.py:16, run by `evaluate(model, val_loader)`) while still in train mode" in message


def test_restored_train_mode_in_another_file_is_clean(nnlint, write):
    engine = ENGINE.replace("    for x, y in loader:\n        optimizer", "    model.train()\n    for x, y in loader:\n        optimizer", 1)
    _project(write, engine=engine)
    assert nnlint("--select", "NN302,NN303", ".").exit_code == 0


def test_relative_import_in_a_package(nnlint, write):
    write({"pkg/__init__.py": "", "pkg/model.py": MODEL, "pkg/engine.py": ENGINE,
           "pkg/train.py": TRAIN.format(engine=".engine").replace("from model", "from .model")})  # fmt: skip
    outcome = nnlint("--select", "NN303", "--format", "json", ".")
    assert outcome.located() == [("pkg/train.py", CALL_LINE, "NN303")]


def test_bug_inside_one_function_is_reported_once_in_its_file(nnlint, write):
    _project(write, engine=ENGINE.replace("        optimizer.zero_grad()\n", ""))
    outcome = nnlint("--select", "NN404", "--format", "json", ".")
    assert outcome.located() == [("engine.py", 8, "NN404")]


def test_helper_in_another_file_that_zeroes_gradients(nnlint, write):
    write({
        "helpers.py": "def reset(optimizer):\n    optimizer.zero_grad()\n",
        "train.py": (
            "from helpers import reset\n\n"
            "def fit(model, loader, optimizer, criterion):\n"
            "    for x, y in loader:\n"
            "        reset(optimizer)\n"
            "        criterion(model(x), y).backward()\n"
            "        optimizer.step()\n"
        ),
    })  # fmt: skip
    assert nnlint("--select", "NN404", ".").exit_code == 0


def test_same_name_outside_the_project_is_not_followed(nnlint, write):
    """`from engine import ...` resolves to the importer's directory or the project root, nowhere else."""
    write({"lib/engine.py": ENGINE, "app/model.py": MODEL, "app/train.py": TRAIN.format(engine="engine")})
    assert nnlint("--select", "NN303", ".").exit_code == 0


def test_unparsable_imported_file_is_skipped(nnlint, write):
    _project(write, engine=ENGINE + "\ndef broken(:\n    model.eval()\n")
    outcome = nnlint("--select", "NN303", "--format", "json", ".")
    assert [code for _, _, code in outcome.located()] == []
    assert [error["code"] for error in outcome.json()["errors"]] == ["NN901"]


def test_model_class_of_another_file_without_dropout_is_mode_free(nnlint, write):
    """`Net` from model.py has no dropout or batch norm: evaluating it in train mode changes nothing."""
    write({"model.py": MODEL.replace("nn.Dropout(0.5), ", ""), "engine.py": ENGINE.replace("    model.eval()\n", ""),
           "train.py": TRAIN.format(engine="engine")})  # fmt: skip
    assert nnlint("--select", "NN302,NN303", ".").exit_code == 0


SCHEDULED_ENGINE = """\
import torch


def train_one_epoch(model, loader, optimizer, scheduler, criterion):
    model.train()
    running_loss = 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running_loss += loss
        batch = next(iter(loader))
    return running_loss
"""
SCHEDULED_TRAIN = """\
import torch
from torch import nn

from engine import train_one_epoch

model = nn.Sequential(nn.Linear(10, 10), nn.Dropout(), nn.Linear(10, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
criterion = nn.CrossEntropyLoss()
train_loader = torch.utils.data.DataLoader(range(10), shuffle=True)

for epoch in range(90):
    train_one_epoch(model, train_loader, optimizer, scheduler, criterion)
"""


def test_scheduler_stepped_per_batch_in_another_file(nnlint, write):
    write({"engine.py": SCHEDULED_ENGINE, "train.py": SCHEDULED_TRAIN})
    outcome = nnlint("--select", "NN402", "--format", "json", ".")
    assert outcome.located() == [("train.py", 13, "NN402")]
    assert "stepped every batch (engine.py:13, run by `train_one_epoch(...)`)" in outcome.json()["findings"][0]["message"]


def test_every_rule_reports_only_lines_of_the_file_it_lints(nnlint, write):
    """Events of another file reach every rule: none may crash on them or point into the wrong file."""
    write({"engine.py": SCHEDULED_ENGINE, "train.py": SCHEDULED_TRAIN, "model.py": MODEL})
    outcome = nnlint("--select", "ALL", "--format", "json", ".")
    assert outcome.json()["errors"] == []
    lines = {path: len(source.splitlines()) for path, source in [("engine.py", SCHEDULED_ENGINE), ("train.py", SCHEDULED_TRAIN)]}
    for path, line, _ in outcome.located():
        assert line <= lines.get(path, 10**6)
    train_codes = sorted(code for path, _, code in outcome.located() if path == "train.py")
    engine_codes = sorted(code for path, _, code in outcome.located() if path == "engine.py")
    assert "NN402" in train_codes and "NN402" not in engine_codes  # the StepLR is built in train.py
    assert {"NN506", "NN602"} <= set(engine_codes) and not {"NN506", "NN602"} & set(train_codes)


def test_init_function_of_another_module_passed_to_apply(nnlint, write):
    """NN201 judges the init function where it is written, whichever file applies it."""
    write({
        "init_utils.py": (
            "import torch.nn as nn\n\n\n"
            "def weights_init(m):\n"
            "    if isinstance(m, (nn.Conv2d, nn.Linear)):\n"
            "        nn.init.constant_(m.weight, 0.01)\n"
        ),
        "train.py": (
            "import torch.nn as nn\n\nfrom init_utils import weights_init\n\n"
            "model = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2))\n"
            "model.apply(weights_init)\n"
        ),
    })  # fmt: skip
    outcome = nnlint("--select", "NN201", "--format", "json", ".")
    assert outcome.located() == [("init_utils.py", 6, "NN201")]


SOFTMAX_MODEL = MODEL.replace("return self.body(x)", "return self.body(x).softmax(dim=1)")
TRAIN_LINE = 14  # `train_one_epoch(model, train_loader, optimizer, criterion)` in TRAIN


def test_model_and_loss_passed_to_another_files_loss(nnlint, write):
    """The model built in train.py from model.py, its loss built in train.py, the two meet in engine.py: the
    finding is in train.py, at the call that joins them, and names all three places."""
    write({"model.py": SOFTMAX_MODEL, "engine.py": ENGINE, "train.py": TRAIN.format(engine="engine")})
    outcome = nnlint("--select", "NN5", "--format", "json", ".")
    assert outcome.located() == [("train.py", TRAIN_LINE, "NN501")]
    message = outcome.json()["findings"][0]["message"]
    assert message.startswith(
        "`Net.forward` returns `self.body(x).softmax(dim=1)` (model.py:10) into `nn.CrossEntropyLoss` "
        "(engine.py:7, run by `train_one_epoch(...)`)"
    )


def test_loss_passed_to_another_file_with_an_activation_applied_there(nnlint, write):
    """engine.py applies log_softmax itself; train.py passes `nn.NLLLoss()`: a correct pair, no finding."""
    engine = ENGINE.replace("criterion(model(x), y)", "criterion(model(x).log_softmax(1), y)")
    write({"model.py": MODEL, "engine.py": engine,
           "train.py": TRAIN.format(engine="engine").replace("nn.CrossEntropyLoss()", "nn.NLLLoss()")})  # fmt: skip
    assert nnlint("--select", "NN5", ".").exit_code == 0


def test_logits_model_passed_to_another_files_loss_is_clean(nnlint, write):
    _project(write)
    assert nnlint("--select", "NN5", ".").exit_code == 0


def test_models_differing_between_calls_are_not_joined(nnlint, write):
    """Only what every call of the function passes decides: here the loss meets a softmax model in one
    call and logits in the other, each judged at its own call."""
    train = TRAIN.format(engine="engine").replace(
        "    train_one_epoch(model, train_loader, optimizer, criterion)\n",
        "    train_one_epoch(model, train_loader, optimizer, criterion)\n"
        "    train_one_epoch(nn.Linear(10, 2), train_loader, optimizer, criterion)\n",
    )
    write({"model.py": SOFTMAX_MODEL, "engine.py": ENGINE, "train.py": train})
    outcome = nnlint("--select", "NN5", "--format", "json", ".")
    assert outcome.located() == [("train.py", TRAIN_LINE, "NN501")]


def test_model_and_loss_joined_across_files_is_confirmed_by_the_probe(nnlint, write):
    """The runtime check builds `Net` as train.py builds it and finds probabilities at the loss."""
    pytest.importorskip("torch")
    write({"model.py": SOFTMAX_MODEL, "engine.py": ENGINE, "train.py": TRAIN.format(engine="engine")})
    finding = nnlint("--confirm", "--select", "NN501", "--format", "json", ".").json()["findings"][0]
    assert (finding["path"], finding["line"], finding["status"]) == ("train.py", TRAIN_LINE, "confirmed")
    assert finding["evidence"]["model"] == "Net"
