import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, listed, refuted, unverifiable
from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.evaluation import EVALUATION_TRIGGERS
from nnlint.script.timeline import CREATE
from nnlint.script.training import TRAIN_MODE


class EvalWithoutEvalMode(Rule):
    """
    ## What it does
    Flags a model called for evaluation — in a function named like
    `evaluate` / `validate` / `test` / `predict`, in a loop over a
    validation or test loader, or under `torch.no_grad()` in a loop over a
    loader after training — while the model is still in train mode on
    every path that reaches the call: no `model.eval()` runs before it.

    ## Why is this bad?
    In train mode dropout still zeroes activations at random and BatchNorm
    normalises with the statistics of the evaluation batch (and updates its
    running averages with evaluation data). The reported accuracy is lower
    and noisier than the model's, depends on the batch size, and changes
    from run to run; predictions on a single example can be garbage.
    `torch.no_grad()` does not switch the mode: it only stops autograd.

    ## Example
    ```python
    def validate(model, loader):
        with torch.no_grad():
            for x, y in loader:
                correct += (model(x).argmax(1) == y).sum()
    ```

    ## Use instead
    ```python
    def validate(model, loader):
        model.eval()
        with torch.no_grad():
            for x, y in loader:
                correct += (model(x).argmax(1) == y).sum()
        model.train()
    ```

    ## Known problems
    A model whose layers behave the same in both modes (no dropout, no
    batch norm) is unaffected; the rule stays silent for the file's own
    classes it can see are such, and the confirm pass refutes the rest.
    An evaluation function the file never calls is not judged: its caller
    may have called `eval()`.
    """

    code = "NN302"
    name = "eval-without-eval-mode"
    severity = "warning"
    summary = "A model is evaluated while still in train mode (no model.eval() before it)"
    triggers = EVALUATION_TRIGGERS

    bad = [
        Example(
            """
import torch

model = Net()
optimizer = torch.optim.Adam(model.parameters())
for epoch in range(10):
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        for x, y in val_loader:
            val_loss = criterion(model(x), y)  # <--
""",
            message="train mode",
        ),
        Example(
            """
import torch

def test(net, loader):
    correct = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (net(images).argmax(1) == labels).sum().item()  # <--
    return correct

def main():
    net = models.resnet18(num_classes=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for epoch in range(30):
        net.train()
        for images, labels in train_loader:
            opt.zero_grad()
            F.cross_entropy(net(images), labels).backward()
            opt.step()
        print(test(net, test_loader))
""",
            note="train() at the top of the epoch is still in effect in the called test()",
        ),
        Example(
            """
import torch
from models import MyNet

model = MyNet()
model.load_state_dict(torch.load("best.pt"))
predictions = []
for batch in test_loader:
    predictions.append(model(batch).argmax(1))  # <--
""",
            note="an inference script: a loaded model is in train mode until eval()",
        ),
    ]
    good = [
        Example(
            """
import torch

def validate(model, loader):
    model.eval()
    with torch.no_grad():
        return [model(x) for x, _ in loader]

for epoch in range(10):
    model.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    validate(model, val_loader)
""",
            note="eval() in the validation function",
        ),
        Example(
            """
import torch
import torch.nn as nn

class LinearProbe(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        return self.fc(x)

model = LinearProbe()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in train_loader:
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    optimizer.step()
with torch.no_grad():
    for x, y in test_loader:
        accuracy = (model(x).argmax(1) == y).float().mean()
""",
            note="trap: a model with no mode-dependent layer computes the same in train mode",
        ),
        Example(
            """
import torch
import torch.nn as nn
from opacus.layers import DPLSTM

class CharClassifier(nn.Module):
    def __init__(self, vocab, hidden, classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.lstm = DPLSTM(hidden, hidden, num_layers=1)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(self.lstm(self.embedding(x))[0][:, -1])

model = CharClassifier(128, 64, 18)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in train_loader:
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    optimizer.step()
with torch.no_grad():
    accuracy = [(model(x).argmax(1) == y).float().mean() for x, y in test_loader]
""",
            note="trap: an LSTM (here Opacus' DPLSTM) without a dropout argument does not depend on the mode",
        ),
        Example(
            """
import torch

model = Net()
with torch.no_grad():
    out = model(torch.randn(2, 3, 32, 32))
print(out.shape)
""",
            note="a shape check under no_grad is not evaluation",
        ),
        Example(
            """
import torch

def evaluate(model, loader):
    with torch.no_grad():
        return [model(x) for x, _ in loader]
""",
            note="an evaluation function nothing in the file calls: its caller may call eval()",
        ),
        Example(
            """
import torch

for epoch in range(10):
    for phase in ["train", "val"]:
        model.train() if phase == "train" else model.eval()
        for inputs, labels in loaders[phase]:
            optimizer.zero_grad()
            with torch.set_grad_enabled(phase == "train"):
                loss = criterion(model(inputs), labels)
                if phase == "train":
                    loss.backward()
                    optimizer.step()
""",
            note="one loop for both phases: the call is the training forward",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for call in script.evaluation.calls:
            modes = script.training.modes(call.event.node)
            if not modes or any(mode != TRAIN_MODE for mode, _ in modes):
                continue
            scope = call.root.node if isinstance(call.root.node, cst.FunctionDef) else None
            if not script.mode_free(call.event.subject, scope):
                found.append((call.event.site, call, modes))
        for site, call, modes in script.reports(found):
            subject = script.code(call.event.node.func)
            scope = call.root.node if isinstance(call.root.node, cst.FunctionDef) else None
            built = script.roles.built_by(call.event.subject, scope)
            self.report(
                site,
                f"`{subject}` is called {call.why}{script.elsewhere(call.event.node, call.event.entry)} while still in train mode "
                f"({_since(script, modes)}): dropout stays "
                f"on and BatchNorm normalises with this batch; call {subject}.eval() before evaluating "
                f"(and {subject}.train() after)",
                facts={"model": subject, "built_by": dotted_name(built.func) if built is not None else None},
            )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Build the model the script evaluates: does its output depend on train/eval mode, and through what?"""
        from nnlint.confirm.modes import mode_dependent_layers, train_eval_difference

        record, why = session.model_named(finding.facts.get("built_by"))
        if record is None:
            return unverifiable(why)
        layers = mode_dependent_layers(record.probe.module)
        data = {"model": record.name, "layers": layers}
        if layers:
            return confirmed(f"{record.name} holds mode-dependent layers: {listed(layers)}", **data)
        difference = train_eval_difference(session, record)
        if difference > 0:
            return confirmed(
                f"{record.name} has no dropout or batch norm, but its output on {record.probe.describe_input()} differs "
                f"by up to {difference:.3g} between train() and eval() (its code reads self.training)",
                difference=difference, **data,
            )
        return refuted(
            f"{record.name} has no mode-dependent layer and gives the same output in train() and eval() on "
            f"{record.probe.describe_input()}",
            **data,
        )


def _since(script, modes) -> str:
    """Where the train mode comes from, for the message: the `train()` call, or the model's creation."""
    setters = {setter.node: setter.kind for _, setter in modes if setter is not None}
    if not setters:
        return "a new module starts in train mode"
    verb = "created" if all(kind == CREATE for kind in setters.values()) else "set"
    return f"{verb} at " + ", ".join(script.at(node) for node in sorted(setters, key=script.line))
