import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.timeline import BACKWARD, MODEL_CALL, events
from nnlint.script.training import EVAL_MODE


class TrainModeNotRestored(Rule):
    """
    ## What it does
    Flags a `model.eval()` inside the epoch loop (usually for per-epoch
    validation) that is never undone: the next epoch's training iteration
    calls the model while it may still be in eval mode, because no
    `model.train()` runs between the two, here or in a called function.

    ## Why is this bad?
    From the second epoch on the model trains with dropout off and
    BatchNorm using frozen running statistics instead of batch statistics.
    The first epoch looks normal, then training quietly changes regime:
    more overfitting, worse convergence, and no error anywhere.

    ## Example
    ```python
    for epoch in range(epochs):
        for x, y in train_loader:
            ...
        model.eval()
        validate(model, val_loader)
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            ...
        model.eval()
        validate(model, val_loader)
    ```
    """

    code = "NN303"
    name = "train-mode-not-restored"
    severity = "warning"
    summary = "model.eval() in the epoch loop is never undone, so later epochs train in eval mode"
    triggers = (".eval(", "train(False)", "for epoch")  # an epoch loop whose eval() is in another file

    bad = [
        Example(
            """
import torch

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(20):
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()  # <--
    with torch.no_grad():
        val_loss = sum(criterion(model(x), y).item() for x, y in val_loader)
""",
            message="never undone",
        ),
        Example(
            """
import torch

def validate(net, loader):
    net.eval()  # <--
    with torch.no_grad():
        return [net(x) for x, _ in loader]

def train_epoch(net, loader, opt):
    for x, y in loader:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

def main():
    net = models.resnet18()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    for epoch in range(90):
        train_epoch(net, train_loader, opt)
        validate(net, val_loader)
""",
            note="through called functions; train() once before the loop is not enough",
        ),
    ]
    good = [
        Example(
            """
import torch

def train_one_epoch(model, loader, optimizer, loss_scaler, set_training_mode=True):
    model.train(set_training_mode)
    for samples, targets in loader:
        optimizer.zero_grad()
        loss = criterion(model(samples), targets)
        loss_scaler(loss, optimizer, parameters=model.parameters())

def evaluate(loader, model):
    model.eval()
    with torch.no_grad():
        return [model(images) for images, _ in loader]

for epoch in range(300):
    train_one_epoch(model, train_loader, optimizer, loss_scaler)
    evaluate(val_loader, model)
""",
            note="DeiT: `model.train(set_training_mode)` sets the mode from a flag each epoch (not known to be eval)",
        ),
        Example(
            """
import torch

def train_epoch(net, loader, opt):
    net.train()
    for x, y in loader:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

for epoch in range(90):
    train_epoch(net, train_loader, opt)
    net.eval()
    evaluate(net, val_loader)
""",
            note="trap: model.train() at the top of each epoch",
        ),
        Example(
            """
import torch

for epoch in range(90):
    for x, y in train_loader:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    evaluate(net, val_loader)
    net.train()
""",
            note="a validation block that restores train()",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for iteration in script.training.iterations:
            if iteration.epoch_loop is None:
                continue
            after_training = _after(events(iteration.epoch_loop.body), iteration.events[-1])
            scope = iteration.root.node if isinstance(iteration.root.node, cst.FunctionDef) else None
            for event in _training_forwards(iteration):
                if script.mode_free(event.subject, scope):
                    continue
                for mode, setter in script.training.modes(event.node):
                    if mode == EVAL_MODE and setter is not None and id(setter.node) in after_training:
                        found.append((setter.site, setter, event))
        for _, setter, training_call in script.reports(found):
            subject = script.code(setter.node.func.value)
            self.report(
                setter.site,
                f"{script.quote(setter)} is never undone: the next epoch trains `{script.code(training_call.node)}` "
                f"({script.at(training_call.node)}) with dropout off and BatchNorm statistics frozen; call "
                f"{subject}.train() at the top of each epoch",
            )


def _training_forwards(iteration):
    """Model calls that feed the loss: before the last backward, always run, with autograd on."""
    kinds = [event.kind for event in iteration.events]
    last_backward = len(kinds) - 1 - kinds[::-1].index(BACKWARD)
    return [e for e in iteration.events[:last_backward] if e.kind == MODEL_CALL and not e.guarded and not e.no_grad]


def _after(ordered, last_of_iteration) -> set[int]:
    """Events of the epoch that run after its training loop: they reach the next epoch's training by
    wrapping around (an eval() set before the loop, e.g. for a frozen backbone, is deliberate)."""
    ids = [id(event.node) for event in ordered]
    end = ids.index(id(last_of_iteration.node)) if id(last_of_iteration.node) in ids else len(ids)
    return set(ids[end + 1 :])
