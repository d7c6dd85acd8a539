import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.timeline import BACKWARD, STEP, ZERO_GRAD


class MissingZeroGrad(Rule):
    """
    ## What it does
    Flags a training loop that calls `backward()` and an optimizer's
    `step()` in every iteration but never clears the gradients
    (`optimizer.zero_grad()`, `model.zero_grad()`, `p.grad = None`), here
    or in the functions the loop calls.

    ## Why is this bad?
    `backward()` adds to `.grad`; it does not overwrite it. Without a reset
    every step applies the sum of all gradients so far, so the effective
    learning rate grows with each batch and the updates point where the
    first batches pointed. Training diverges or stalls, and nothing raises.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```
    Gradient accumulation is fine: zero the gradients where you step
    (`if (i + 1) % k == 0: optimizer.step(); optimizer.zero_grad()`).

    ## Known problems
    A step function the file does not call itself (one iteration per call
    from elsewhere) is not judged: its caller may zero the gradients.
    """

    code = "NN404"
    name = "missing-zero-grad"
    severity = "error"
    summary = "A training loop calls backward() and step() but never zeroes the gradients"
    triggers = ("backward", "scaler(")  # timm's loss_scaler(loss, optimizer) back-propagates too

    bad = [
        Example(
            """
def train_one_epoch(model, loader, optimizer, loss_scaler):
    for samples, targets in loader:
        loss = criterion(model(samples), targets)
        loss_scaler(loss, optimizer, clip_grad=1.0, parameters=model.parameters())  # <--
""",
            note="timm's NativeScaler back-propagates and steps in one call (DeiT, MAE, ConvNeXt)",
        ),
        Example(
            """
import torch

model = torch.nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    optimizer.step()  # <--
""",
            message="never zeroes the gradients",
        ),
        Example(
            """
import torch

def train_one_epoch(model, loader, optimizer, criterion):
    for images, labels in loader:
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()  # <--

def main():
    net = Net()
    opt = torch.optim.Adam(net.parameters())
    for epoch in range(10):
        train_one_epoch(net, train_loader, opt, torch.nn.CrossEntropyLoss())
""",
            note="the loop is in a function called per epoch",
        ),
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
optimizer.zero_grad()
for epoch in range(100):
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()  # <--
""",
            note="zeroed once, before the loop: the gradients still pile up",
        ),
    ]
    good = [
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (x, y) in enumerate(loader):
    loss = criterion(model(x), y) / accumulation_steps
    loss.backward()
    if (i + 1) % accumulation_steps == 0:
        optimizer.step()
        optimizer.zero_grad()
""",
            note="trap: gradient accumulation with an explicit modulo step that zeroes",
        ),
        Example(
            """
import torch

def step(model, batch, optimizer):
    for p in model.parameters():
        p.grad = None
    model(batch).sum().backward()
    optimizer.step()

for batch in loader:
    step(net, batch, torch.optim.SGD(net.parameters(), lr=0.1))
""",
            note="p.grad = None in a called function",
        ),
        Example(
            """
import torch

optimizer = torch.optim.Adam(model.parameters())
for x, y in loader:
    model.zero_grad(set_to_none=True)
    criterion(model(x), y).backward()
    scaler.step(optimizer)
""",
            note="model.zero_grad() clears the same gradients",
        ),
        Example(
            """
import torch

def train_step(model, batch, optimizer):
    loss = model(batch).mean()
    loss.backward()
    optimizer.step()
""",
            note="a step function run from elsewhere: its caller may zero",
        ),
        Example(
            """
import torch

optimizer = torch.optim.LBFGS(model.parameters())
for x, y in loader:
    def closure():
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        return loss
    optimizer.step(closure)
""",
            note="LBFGS: the closure zeroes and back-propagates",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for iteration in script.training.iterations:
            if iteration.loop is None or any(event.kind == ZERO_GRAD for event in iteration.events):
                continue
            backward = next(event for event in iteration.events if event.kind == BACKWARD)
            step = next(event for event in iteration.events if event.kind == STEP)
            found.append((step.node, backward, iteration))
        for step_node, backward, iteration in script.reports(found):
            self.report(
                step_node,
                f"the loop at line {script.line(iteration.loop.node)} back-propagates "
                f"(`{script.code(backward.node)}`, line {script.line(backward.node)}) and steps but never zeroes "
                "the gradients: backward() adds to .grad, so every step applies the sum of all gradients so far; "
                "call optimizer.zero_grad() before backward() in each iteration",
            )
