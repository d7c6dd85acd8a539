import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.outputs import SIGMOID, ends, facts


class DoubleSigmoid(Rule):
    """
    ## What it does
    Flags `nn.BCEWithLogitsLoss` / `F.binary_cross_entropy_with_logits`
    given an output that already went through a sigmoid: the model's
    `forward` ends with `torch.sigmoid(...)`, `x.sigmoid()`, an
    `nn.Sigmoid` layer (also as the tail of an `nn.Sequential`), or the
    training code applies the sigmoid before the loss. The model class may
    be in another file of the project.

    ## Why is this bad?
    `BCEWithLogitsLoss` applies the sigmoid itself. On probabilities in
    (0, 1) it computes sigmoid(sigmoid(z)), which lies in (0.5, 0.73):
    a negative example can never be predicted below 0.5, the loss cannot
    reach zero, gradients are small, and the model trains badly without
    any error.

    ## Example
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return torch.sigmoid(self.fc(x))

    loss = nn.BCEWithLogitsLoss()(Net()(x), y)
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return self.fc(x)  # logits

    loss = nn.BCEWithLogitsLoss()(Net()(x), y)
    probabilities = torch.sigmoid(Net()(x))  # only for predictions
    ```

    ## Known problems
    A forward whose return differs by path (sigmoid only when
    `not self.training`) is not judged; neither is a model whose class
    nnlint cannot see (an installed package).

    The confirm pass builds the model the loss receives (from the class
    that builds it in the script) and runs one eval-mode forward on its
    probe input (nnlint.confirm.activations): confirmed when every output
    lies in [0, 1] (within 1e-3; a float32 sigmoid saturates to exactly 0
    or 1), refuted when some output lies outside (logits); the min and
    max are given. Unverifiable when the model cannot be built or its
    output read, or when the sigmoid is written in the training code.
    """

    code = "NN503"
    name = "double-sigmoid"
    severity = "error"
    summary = "A sigmoid output is fed to BCEWithLogitsLoss, which applies sigmoid again"
    triggers = ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits")

    bad = [
        Example(
            """
import torch
import torch.nn as nn

class BinaryClassifier(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.fc1 = nn.Linear(n_features, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        return torch.sigmoid(self.fc2(x))

model = BinaryClassifier(30)
criterion = nn.BCEWithLogitsLoss()
for x, y in train_loader:
    y_pred = model(x)
    loss = criterion(y_pred.squeeze(), y.float())  # <--
""",
            message="applies the sigmoid again",
        ),
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
for x, y in loader:
    out = model(x).view(-1)
    loss = F.binary_cross_entropy_with_logits(out, y)  # <--
""",
            note="an nn.Sequential ending in nn.Sigmoid",
        ),
        Example(
            """
import torch
import torch.nn as nn

loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))
for images, masks in loader:
    logits = unet(images)
    preds = logits.sigmoid()
    loss = loss_fn(preds, masks)  # <--
""",
            note="the sigmoid applied in the loop (a segmentation mask)",
        ),
    ]
    good = [
        Example(
            """
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x):
        return self.fc(x)

model = Net()
criterion = nn.BCEWithLogitsLoss()
for x, y in loader:
    logits = model(x)
    loss = criterion(logits, y)
    predicted = torch.sigmoid(logits) > 0.5
""",
            note="the sigmoid only for predictions",
        ),
        Example(
            """
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x):
        x = self.fc(x)
        if not self.training:
            x = torch.sigmoid(x)
        return x

criterion = nn.BCEWithLogitsLoss()
loss = criterion(Net()(x), y)
""",
            note="sigmoid applied only at inference",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = script.outputs.fed(SIGMOID, "BCEWithLogitsLoss")
        for loss, meeting in script.reports(found):
            fix = "return the logits from forward and apply the sigmoid only for predictions" if meeting.output.model \
                else "pass the logits"  # fmt: skip
            self.report(
                loss,
                f"{ends(script, meeting)}, which applies the sigmoid again (outputs squeezed into (0.5, 0.73)): {fix}",
                facts=facts(meeting),
            )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """One eval forward of the model the loss receives: does its output lie in (0, 1)?"""
        from nnlint.confirm.activations import in_unit_interval, probe_output

        probed, why = probe_output(finding, session, "sigmoid")
        if probed is None:
            return unverifiable(why)
        data = {**probed.data, "min": float(probed.output.min()), "max": float(probed.output.max())}
        said = f"in eval(), {probed.where}{probed.first_of}: all {probed.output.numel()} outputs have {probed.range()}"
        if in_unit_interval(probed):
            return confirmed(f"{said}: probabilities, which BCEWithLogitsLoss squashes again into (0.5, 0.73)", **data)
        return refuted(f"{said}: outside (0, 1), so not sigmoid outputs", **data)
