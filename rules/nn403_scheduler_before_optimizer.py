import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.timeline import SCHEDULER_STEP, STEP, events


class SchedulerBeforeOptimizer(Rule):
    """
    ## What it does
    Flags `scheduler.step()` called before `optimizer.step()` in the same
    iteration: in the batch loop, or at the top of the epoch loop before the
    epoch's training (`for epoch ...: scheduler.step(); train(...)`, the
    order PyTorch used before 1.1).

    ## Why is this bad?
    Since PyTorch 1.1 a scheduler's first `step()` moves to the *second*
    value of the schedule. Called before the optimizer steps, the first
    learning rate is skipped: warm-up starts late, a `StepLR` decays one
    epoch early, a `OneCycleLR` ends one step short and raises at the end.
    PyTorch only prints a warning once.

    ## Example
    ```python
    for epoch in range(epochs):
        scheduler.step()
        train(model, loader, optimizer)
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        train(model, loader, optimizer)
        scheduler.step()
    ```

    ## Known problems
    `scheduler.step(epoch)` (an explicit epoch) and steps under a condition
    are not flagged.
    """

    code = "NN403"
    name = "scheduler-before-optimizer"
    severity = "warning"
    summary = "scheduler.step() is called before optimizer.step() in the same iteration"
    triggers = ("backward",)

    bad = [
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)

def train(epoch):
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()

for epoch in range(1, 91):
    scheduler.step()  # <--
    train(epoch)
""",
            message="before",
        ),
        Example(
            """
import torch

optimizer = torch.optim.AdamW(model.parameters())
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.01, total_steps=1000)
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    scheduler.step()  # <--
    optimizer.step()
""",
        ),
    ]
    good = [
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)
for epoch in range(90):
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    scheduler.step()
"""
        ),
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)
for epoch in range(90):
    scheduler.step(epoch)
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
""",
            note="an explicit epoch sets the schedule's position",
        ),
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
for epoch in range(90):
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    plateau.step(validate(model))
""",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for iteration in script.training.iterations:
            found += self._too_early(iteration.events)
            if iteration.epoch_loop is not None:
                found += self._too_early(tuple(events(iteration.epoch_loop.body)))
        for scheduler_node, step in script.reports(found):
            self.report(
                scheduler_node,
                f"`{script.code(scheduler_node)}` runs before `{script.code(step.node)}` (line "
                f"{script.line(step.node)}) in the same iteration: since PyTorch 1.1 the first value of the "
                "schedule is skipped; call scheduler.step() after optimizer.step()",
            )

    @staticmethod
    def _too_early(ordered) -> list:
        first_step = next((event for event in ordered if event.kind == STEP), None)
        if first_step is None:
            return []
        found = []
        for event in ordered:
            if event is first_step:
                break
            if event.kind == SCHEDULER_STEP and not event.guarded and not event.node.args:
                found.append((event.node, first_step))
        return found
