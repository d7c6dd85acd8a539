import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.outputs import SIGMOID, ends, facts


class SigmoidThenBce(Rule):
    """
    ## What it does
    Flags `nn.BCELoss` / `F.binary_cross_entropy` given an output that a
    sigmoid produced: the model's `forward` ends with `torch.sigmoid(...)`
    or an `nn.Sigmoid` layer, or the training code applies the sigmoid
    right before the loss.

    ## Why is this bad?
    Computing `log(sigmoid(z))` in two steps loses precision: for large
    |z| the sigmoid rounds to exactly 0 or 1, BCELoss clamps the log at
    -100, and the gradient vanishes on the examples that are most wrong.
    `BCEWithLogitsLoss` fuses both steps with the log-sum-exp trick and is
    stable (it is also the only form autocast allows).

    ## Example
    ```python
    loss = nn.BCELoss()(torch.sigmoid(model(x)), y)
    ```

    ## Use instead
    ```python
    loss = nn.BCEWithLogitsLoss()(model(x), y)
    ```
    and move the sigmoid out of `forward` into prediction code.
    """

    code = "NN507"
    name = "sigmoid-then-bce"
    severity = "warning"
    summary = "BCELoss on a sigmoid output: numerically unstable, use BCEWithLogitsLoss on logits"
    triggers = ("BCELoss", "binary_cross_entropy")

    bad = [
        Example(
            """
import torch
import torch.nn as nn

class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(784, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x)

netD = Discriminator()
criterion = nn.BCELoss()
for real, _ in dataloader:
    output = netD(real).view(-1)
    errD_real = criterion(output, torch.ones_like(output))  # <--
""",
            message="BCEWithLogitsLoss",
            note="the DCGAN-style discriminator ending in nn.Sigmoid",
        ),
        Example(
            """
import torch
import torch.nn.functional as F

for x, y in loader:
    logits = model(x)
    loss = F.binary_cross_entropy(torch.sigmoid(logits), y)  # <--
""",
        ),
        Example(
            """
import torch

m = torch.nn.Sigmoid()
output = m(model(batch))
loss = torch.nn.BCELoss()
loss_val = loss(output, target)  # <--
""",
            note="course-notes snippet: an nn.Sigmoid module applied before BCELoss",
        ),
    ]
    good = [
        Example(
            """
import torch.nn as nn

criterion = nn.BCEWithLogitsLoss()
for x, y in loader:
    loss = criterion(model(x), y)
""",
            note="the fused loss on logits",
        ),
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

class Autoencoder(nn.Module):
    def forward(self, x):
        return self.decoder(self.encoder(x))

model = Autoencoder()
loss = F.binary_cross_entropy(model(x), x)
""",
            note="a model whose last activation is not seen",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = script.outputs.fed(SIGMOID, "BCELoss")
        for loss, meeting in script.reports(found):
            fix = "return the logits from forward and use nn.BCEWithLogitsLoss" if meeting.output.model \
                else "drop the sigmoid and use BCEWithLogitsLoss"  # fmt: skip
            self.report(
                loss,
                f"{ends(script, meeting)}: sigmoid then log in two steps saturates (gradients vanish for confident "
                f"mistakes); {fix}, which fuses them stably",
                facts=facts(meeting),
            )
