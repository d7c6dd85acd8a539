import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.dataflow import CUT, LIVE, UNKNOWN
from nnlint.script.timeline import BACKWARD, events, loss_expression


class GraphBrokenBeforeLoss(Rule):
    """
    ## What it does
    Flags `backward()` on a loss whose every path back to a model was cut
    off the autograd graph: the model output went through `.detach()`,
    `.data`, `.item()`, `.numpy()`, `.tolist()`, or was re-wrapped with
    `torch.tensor(...)` (often with `requires_grad=True` added to silence
    "element 0 of tensors does not require grad").

    ## Why is this bad?
    The loss no longer depends on the parameters: `backward()` gives them no
    gradient (or `None`), `optimizer.step()` changes nothing, and the loss
    curve stays flat while everything runs.

    ## Example
    ```python
    output = model(x)
    loss = criterion(output.detach(), y)
    loss = torch.tensor(loss.item(), requires_grad=True)
    loss.backward()
    ```

    ## Use instead
    ```python
    output = model(x)
    loss = criterion(output, y)
    loss.backward()
    ```
    Detach only what must not be trained through: the generator's output in
    a discriminator loss, targets, a teacher's outputs.

    ## Known problems
    The loss is followed within one function; a loss computed by a helper
    the file does not define is not judged.

    ## Runtime confirmation
    `--confirm` cannot run a training loop, so it runs the step you name:
    `training-step = "pkg.module:function"` in `[tool.nnlint.confirm]`, a
    function taking no arguments that returns `(model, loss)`, the model
    being trained and the loss of one batch computed as the training step
    computes it, before `backward()`. It is imported as model factories are
    (definitions only), called once with the configured seed, then
    `loss.backward()` runs: **confirmed** when none of the model's parameter
    tensors gets a non-zero gradient (or the loss does not even require
    grad), with the step, the loss value and the number of parameter
    tensors; **refuted** when some do (how many); **unverifiable** when no
    step is configured (the evidence says what to add) or it raises. One
    configured step judges every NN508 finding of the project.
    """

    code = "NN508"
    name = "graph-broken-before-loss"
    severity = "error"
    summary = "backward() on a loss computed from a model output cut off the graph (.detach(), .item(), .data, ...)"
    triggers = ("backward",)

    bad = [
        Example(
            """
import torch

for data, target in train_loader:
    optimizer.zero_grad()
    output = model(data)
    loss = criterion(output.detach(), target)
    loss.backward()  # <--
    optimizer.step()
""",
            message=".detach()",
        ),
        Example(
            """
import torch

def train_step(model, x, y, optimizer):
    pred = model(x)
    loss = torch.tensor(((pred - y) ** 2).mean().item(), requires_grad=True)
    optimizer.zero_grad()
    loss.backward()  # <--
    optimizer.step()
""",
            note="the forum fix for 'element 0 of tensors does not require grad'",
        ),
        Example(
            """
import numpy as np
import torch

for x, y in loader:
    probs = net(x).data
    loss = loss_fn(probs, y)
    loss.backward()  # <--
""",
        ),
    ]
    good = [
        Example(
            """
import torch

for real, _ in loader:
    fake = netG(noise)
    loss_d = criterion(netD(real), ones) + criterion(netD(fake.detach()), zeros)
    loss_d.backward()
    opt_d.step()
    loss_g = criterion(netD(fake), ones)
    loss_g.backward()
    opt_g.step()
""",
            note="trap: GAN code detaches the generator output for the discriminator loss only",
        ),
        Example(
            """
import torch

for x, y in loader:
    with torch.no_grad():
        soft = teacher(x).detach()
    loss = kd_loss(student(x), soft) + criterion(student(x), y.detach())
    loss.backward()
    optimizer.step()
""",
            note="trap: targets and teacher outputs detached on purpose",
        ),
        Example(
            """
import torch

for x, y in loader:
    out = model(x)
    loss = criterion(out, y)
    loss.backward()
    optimizer.step()
    running += loss.item()
    preds = out.detach().argmax(1)
"""
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for root in script.timeline.roots:
            for event in events(root.body):
                loss = loss_expression(event.node) if event.kind == BACKWARD else None
                if loss is None:
                    continue
                origins = script.flow.origins(loss, event.function)
                kinds = {origin.kind for origin in origins}
                if CUT in kinds and not kinds & {LIVE, UNKNOWN}:
                    cut = min((o for o in origins if o.kind == CUT), key=lambda o: script.line(o.node))
                    found.append((event.node, cut))
        for backward, cut in script.reports(found):
            self.report(
                backward,
                f"`{script.code(backward)}` runs on a loss cut off the graph by {cut.how} (`{script.code(cut.node)}`, "
                f"line {script.line(cut.node)}): no gradient reaches the model and optimizer.step() changes nothing; "
                "compute the loss from the model output itself",
            )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """One backward on the configured training step: does any parameter of its model get a gradient?"""
        from nnlint.confirm.training_step import gradient_reach

        return gradient_reach(session)

