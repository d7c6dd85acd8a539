import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.timeline import BACKWARD, STEP, ZERO_GRAD


class ZeroGradBetweenBackwardAndStep(Rule):
    """
    ## What it does
    Flags `zero_grad()` called after `loss.backward()` and before the
    `optimizer.step()` that should use those gradients, in one iteration
    of a training loop (also through the functions it calls).

    ## Why is this bad?
    `zero_grad()` erases the gradients `backward()` just computed, so the
    step that follows sees zeros (or `None`) and does nothing, or applies
    only weight decay and momentum. The loss stays flat and no error is
    raised.

    ## Example
    ```python
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    ```

    ## Use instead
    ```python
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ```
    """

    code = "NN405"
    name = "zero-grad-between-backward-and-step"
    severity = "error"
    summary = "zero_grad() between backward() and step() erases the gradients before they are used"
    triggers = ("zero_grad",)

    bad = [
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.zero_grad()  # <--
    optimizer.step()
""",
            message="erases the gradients",
        ),
        Example(
            """
import torch

def update(model, optimizer):
    model.zero_grad()  # <--
    optimizer.step()

opt = torch.optim.Adam(net.parameters())
for batch in loader:
    net(batch).mean().backward()
    update(net, opt)
""",
            note="through a called function; model.zero_grad() clears the optimizer's parameters too",
        ),
    ]
    good = [
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
        Example(
            """
import torch

opt_d = torch.optim.Adam(netD.parameters())
opt_g = torch.optim.Adam(netG.parameters())
for real in loader:
    opt_d.zero_grad()
    loss_d = criterion(netD(real), ones) + criterion(netD(netG(z).detach()), zeros)
    loss_d.backward()
    opt_g.zero_grad()
    opt_d.step()
    loss_g = criterion(netD(netG(z)), ones)
    loss_g.backward()
    opt_g.step()
""",
            note="GAN: the generator's optimizer is zeroed between the discriminator's backward and step",
        ),
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (x, y) in enumerate(loader):
    criterion(model(x), y).backward()
    if (i + 1) % 4 == 0:
        optimizer.step()
        optimizer.zero_grad()
""",
            note="zeroed after the step",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for iteration in script.training.iterations:
            events = iteration.events
            optimizers = {event.subject for event in events if event.kind == STEP}
            for index, event in enumerate(events):
                if event.kind != BACKWARD:
                    continue
                for later_index in range(index + 1, len(events)):
                    later = events[later_index]
                    if later.kind in (BACKWARD, STEP):
                        break
                    if later.kind == ZERO_GRAD and self._erases(later, events[later_index + 1 :], optimizers):
                        found.append((later.node, event))
        for zero_node, backward in script.reports(found):
            self.report(
                zero_node,
                f"`{script.code(zero_node)}` runs after `{script.code(backward.node)}` (line "
                f"{script.line(backward.node)}) and before the optimizer step: it erases the gradients the step "
                "should apply, so the step does nothing; zero the gradients before backward()",
            )

    @staticmethod
    def _erases(zero, after, optimizers) -> bool:
        """The next thing after this zero_grad is a step of the optimizer it clears, with no backward between."""
        for event in after:
            if event.kind == BACKWARD:
                return False
            if event.kind == STEP:
                return zero.subject == event.subject or (zero.subject not in optimizers and len(optimizers) == 1)
        return False
