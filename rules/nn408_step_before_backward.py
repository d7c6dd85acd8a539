import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.timeline import BACKWARD, STEP


class StepBeforeBackward(Rule):
    """
    ## What it does
    Flags an `optimizer.step()` that runs, unconditionally, before the
    iteration's `loss.backward()`: the step of a training loop (or of the
    functions it calls) comes first in the iteration.

    ## Why is this bad?
    The step applies the gradients present when it runs: none in the first
    iteration, and afterwards those of the previous batch, or zeros when
    `zero_grad()` ran just before. The model trains one batch late, or not
    at all, without any error.

    ## Example
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        optimizer.step()
        loss = criterion(model(x), y)
        loss.backward()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Known problems
    A step under a condition (`if i % k == 0: optimizer.step()`, delayed
    gradient accumulation) is not flagged, nor `step(closure)` (LBFGS), whose
    closure back-propagates.
    """

    code = "NN408"
    name = "step-before-backward"
    severity = "error"
    summary = "optimizer.step() runs before loss.backward() in the same iteration"
    triggers = ("backward",)

    bad = [
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    optimizer.step()  # <--
    loss = criterion(model(x), y)
    loss.backward()
""",
            message="before",
        ),
        Example(
            """
import torch

def train(model, loader, opt):
    model.train()
    for batch in loader:
        opt.step()  # <--
        opt.zero_grad()
        model(batch).loss.backward()
""",
        ),
    ]
    good = [
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
            note="trap: a closure passed to step(closure) (LBFGS)",
        ),
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (x, y) in enumerate(loader):
    if i > 0 and i % accumulate == 0:
        optimizer.step()
        optimizer.zero_grad()
    criterion(model(x), y).backward()
""",
            note="delayed accumulation: the guarded step applies the previous iterations' gradients",
        ),
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
"""
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for iteration in script.training.iterations:
            first_backward = next(i for i, event in enumerate(iteration.events) if event.kind == BACKWARD)
            for event in iteration.events[:first_backward]:
                if event.kind == STEP and not event.guarded and not event.closure:
                    found.append((event.node, iteration.events[first_backward]))
        for step_node, backward in script.reports(found):
            self.report(
                step_node,
                f"`{script.code(step_node)}` runs before `{script.code(backward.node)}` (line "
                f"{script.line(backward.node)}) in each iteration: it applies the previous batch's gradients, or "
                "none; call step() after backward()",
            )
