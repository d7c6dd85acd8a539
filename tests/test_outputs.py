"""Model-output facts across files (nnlint.script.outputs): the model class in model.py, the loss in train.py."""

from __future__ import annotations

import libcst as cst

from nnlint.context import FileContext
from nnlint.script import script_model
from nnlint.script.outputs import LOG_SOFTMAX, LOGITS, SIGMOID, SOFTMAX
from nnlint.tree import walk_with_ancestors

MODEL = """\
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        x = self.fc(x)
        return F.softmax(x, dim=1)
"""

TRAIN = """\
import torch
from torch import nn

from model import Net

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
for x, y in train_loader:
    optimizer.zero_grad()
    outputs = model(x)
    loss = criterion(outputs, y)
    loss.backward()
    optimizer.step()
"""
LOSS_LINE = 12


def test_softmax_model_in_another_file(nnlint, write):
    write({"model.py": MODEL, "train.py": TRAIN})
    outcome = nnlint("--select", "NN501", "--format", "json", ".")
    assert outcome.located() == [("train.py", LOSS_LINE, "NN501")]
    message = outcome.json()["findings"][0]["message"]
    assert "`Net.forward` returns `F.softmax(x, dim=1)` (model.py:12) into `nn.CrossEntropyLoss` (line 12)" in message


def test_forward_inherited_from_a_base_class_in_a_third_file(nnlint, write):
    base = MODEL.replace("class Net(", "class Base(")
    write({
        "base.py": base,
        "model.py": "from base import Base\n\n\nclass Net(Base):\n    pass\n",
        "train.py": TRAIN,
    })  # fmt: skip
    outcome = nnlint("--select", "NN501", "--format", "json", ".")
    assert outcome.located() == [("train.py", LOSS_LINE, "NN501")]
    assert "(base.py:12)" in outcome.json()["findings"][0]["message"]


def test_logits_model_in_another_file_into_nll(nnlint, write):
    model = MODEL.replace("        return F.softmax(x, dim=1)\n", "        return x\n")
    write({"model.py": model, "train.py": TRAIN.replace("CrossEntropyLoss", "NLLLoss")})
    outcome = nnlint("--select", "NN501,NN504", "--format", "json", ".")
    assert outcome.located() == [("train.py", LOSS_LINE, "NN504")]


def test_log_softmax_model_in_another_file_is_clean(nnlint, write):
    write({"model.py": MODEL.replace("F.softmax", "F.log_softmax"), "train.py": TRAIN.replace("CrossEntropyLoss", "NLLLoss")})
    assert nnlint("--select", "NN501,NN503,NN504,NN507", ".").exit_code == 0


def test_model_file_itself_has_no_finding(nnlint, write):
    write({"model.py": MODEL, "train.py": TRAIN})
    assert nnlint("--select", "NN501", "model.py").exit_code == 0


def _script(source: str):
    module = cst.parse_module(source)
    context = FileContext("x.py", source, module)
    for node, _ in walk_with_ancestors(module):
        if isinstance(node, cst.Import):
            context.imports.add_import(node)
        elif isinstance(node, cst.ImportFrom):
            context.imports.add_import_from(node)
    return script_model(context)


KINDS = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Probabilities(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)
        self.act = nn.Softmax(dim=1)

    def forward(self, x):
        return self.act(self.fc(x))


class Tail(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 1), nn.Sigmoid(), nn.Flatten())

    def forward(self, x):
        return self.net(x).squeeze(1)


class Method(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        out = self.head(x)
        return out

    def head(self, x):
        return self.fc(x).log_softmax(-1)


class Logits(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        x = self.fc(x)
        return x


class Mixed(Logits):
    def forward(self, x):
        x = self.fc(x)
        if not self.training:
            return torch.softmax(x, 1)
        return x


class NotAModel:
    def forward(self, x):
        return torch.sigmoid(x)
"""


def test_output_kind_of_each_class():
    script = _script(KINDS)
    kinds = {name: script.outputs.output_kind(cls) for name, cls in script.index.classes.items()}
    assert {name: output.kind if output else None for name, output in kinds.items()} == {
        "Probabilities": SOFTMAX, "Tail": SIGMOID, "Method": LOG_SOFTMAX, "Logits": LOGITS, "Mixed": None,
        "NotAModel": None,
    }  # fmt: skip


def test_meetings_through_variables_and_helpers():
    script = _script(KINDS + """
model = Probabilities()
criterion = nn.CrossEntropyLoss()

def compute_loss(prediction, target):
    return criterion(prediction, target)

out = model(x)
compute_loss(out, y)
F.nll_loss(torch.log(F.softmax(Logits()(x), 1)), y)
""")
    meetings = [(script.code(m.loss), m.output.kind, script.code(m.built.func)) for m in script.outputs.meetings]
    assert meetings == [
        ("criterion(prediction, target)", SOFTMAX, "Probabilities"),
        ("F.nll_loss(torch.log(F.softmax(Logits()(x), 1)), y)", LOG_SOFTMAX, "Logits"),
    ]
