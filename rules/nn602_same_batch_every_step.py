import re

import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.index import words
from nnlint.script.timeline import NEXT_BATCH

# A deliberate overfit-one-batch check says so in its names.
_DELIBERATE = re.compile(r"overfit|one_batch|single_batch|sanity|debug|fixed_batch", re.IGNORECASE)


class SameBatchEveryStep(Rule):
    """
    ## What it does
    Flags `next(iter(loader))` inside a training loop (the loop that calls
    `backward()` and `optimizer.step()`, or a function it calls).

    ## Why is this bad?
    `iter(loader)` starts a fresh pass over the loader every time, so
    `next(...)` returns its first batch every time: without shuffling the
    model trains on one batch forever, with shuffling each step pays for
    starting a new epoch (worker start-up, sampler reset). The loss looks
    great and the model learns almost nothing.

    ## Example
    ```python
    for step in range(num_steps):
        x, y = next(iter(train_loader))
        ...
    ```

    ## Use instead
    ```python
    batches = iter(train_loader)
    for step in range(num_steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(train_loader)
            x, y = next(batches)
    ```
    Overfitting one batch on purpose (the recipe's sanity check) is fine:
    name it so (`overfit_batch`, `sanity_check`) and it is not flagged.
    """

    code = "NN602"
    name = "same-batch-every-step"
    severity = "error"
    summary = "next(iter(loader)) in the training loop restarts the loader and returns its first batch every step"
    triggers = ("next(iter(",)

    bad = [
        Example(
            """
import torch

for step in range(10000):
    images, labels = next(iter(train_loader))  # <--
    optimizer.zero_grad()
    criterion(model(images), labels).backward()
    optimizer.step()
""",
            message="first batch",
        ),
        Example(
            """
import torch

def get_batch(loader):
    return next(iter(loader))  # <--

def main():
    for it in range(max_iters):
        x, y = get_batch(train_loader)
        loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
""",
            note="through a helper called every step",
        ),
    ]
    good = [
        Example(
            """
import torch

batches = iter(train_loader)
for step in range(10000):
    images, labels = next(batches)
    optimizer.zero_grad()
    criterion(model(images), labels).backward()
    optimizer.step()
"""
        ),
        Example(
            """
import torch

def overfit_one_batch(model, loader, optimizer):
    for step in range(200):
        x, y = next(iter(loader))
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
""",
            note="trap: a deliberate overfit-one-batch check (named so)",
        ),
        Example(
            """
import torch

sample_images, _ = next(iter(val_loader))
for x, y in train_loader:
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    optimizer.step()
""",
            note="outside the loop: one fixed batch for visualisation",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for iteration in script.training.iterations:
            for event in iteration.events:
                if event.kind == NEXT_BATCH and not event.guarded and not _evaluation_loader(event.subject) \
                        and not _deliberate(event, iteration):
                    found.append((event.node, iteration))
        for call, iteration in script.reports(found):
            self.report(
                call,
                f"`{script.code(call)}` runs in every iteration of the training loop at line "
                f"{script.line(iteration.node)}: iter() restarts the loader, so every step gets its first batch; "
                "create the iterator once, outside the loop, and call next() on it",
            )


def _deliberate(event, iteration) -> bool:
    """The loop, or the function taking the batch, is named as an overfit-one-batch check."""
    loop_function = iteration.loop.function if iteration.loop is not None else iteration.root.node
    functions = (event.function, loop_function)
    return any(isinstance(f, cst.FunctionDef) and _DELIBERATE.search(f.name.value) for f in functions)


def _evaluation_loader(name: str | None) -> bool:
    """`next(iter(val_loader))` in the loop samples a fixed batch to show, not to train on."""
    return bool(name) and bool({"val", "valid", "validation", "test", "eval"} & set(words(name.rsplit(".", 1)[-1])))
