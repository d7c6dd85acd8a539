import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.outputs import LOGITS, ends, facts


class NllOnLogits(Rule):
    """
    ## What it does
    Flags `nn.NLLLoss` / `F.nll_loss` given raw model output: a model
    whose `forward` ends with a `Linear` or convolution layer (a class of
    the project, an `nn.Sequential`, a torchvision classifier), with no
    `log_softmax` between the model and the loss.

    ## Why is this bad?
    `NLLLoss` does not normalise: it returns `-input[y]`, expecting
    log-probabilities. On logits it rewards making the target's logit
    large without bound, the loss goes negative and diverges, and the
    other classes' scores are never pushed down. Nothing raises.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = F.nll_loss(model(x), y)
    ```

    ## Use instead
    ```python
    loss = F.cross_entropy(model(x), y)  # or F.nll_loss(F.log_softmax(model(x), dim=1), y)
    ```

    ## Known problems
    Only a model whose last operation nnlint can see is judged: a model
    of an installed package, or a forward that ends in something else,
    is left alone.

    The confirm pass builds the model the loss receives (from the class
    that builds it in the script) and runs one eval-mode forward on its
    probe input (nnlint.confirm.activations): confirmed when the
    logsumexp over the class dim (dim 1, or the last dim) is off 0 by more
    than 1e-3 for some sample (not log-probabilities; its range is given),
    refuted when it is 0 within 1e-3 (a forward that normalises by hand,
    `x - x.logsumexp(1, keepdim=True)`). Unverifiable when the model cannot
    be built or its output read.
    """

    code = "NN504"
    name = "nll-on-logits"
    severity = "error"
    summary = "NLLLoss on raw model output (logits) without log_softmax"
    triggers = ("NLLLoss", "nll_loss")

    bad = [
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.fc1 = nn.Linear(5408, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return x

def train(model, device, train_loader, optimizer):
    model.train()
    for data, target in train_loader:
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)  # <--
        loss.backward()
        optimizer.step()

model = Net().to(device)
train(model, device, train_loader, optimizer)
""",
            message="log_softmax",
            note="the PyTorch MNIST example with the final log_softmax removed",
        ),
        Example(
            """
import torch.nn as nn

model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
criterion = nn.NLLLoss()
for images, labels in trainloader:
    loss = criterion(model(images), labels)  # <--
""",
        ),
        Example(
            """
import torch.nn as nn
from torchvision import models

model = models.resnet18(pretrained=True)
criterion = nn.NLLLoss()
for inputs, labels in dataloader:
    outputs = model(inputs)
    loss = criterion(outputs, labels)  # <--
""",
            note="a torchvision classifier returns logits",
        ),
    ]
    good = [
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return F.log_softmax(self.fc(x), dim=1)

model = Net()
loss = F.nll_loss(model(x), y)
""",
            note="forward returns log_softmax",
        ),
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 10))
loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)
""",
            note="log_softmax applied between the model and the loss",
        ),
        Example(
            """
import torch.nn as nn
from torchvision import models

model = models.resnet50(pretrained=True)
model.fc = nn.Sequential(nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, 2), nn.LogSoftmax(dim=1))
criterion = nn.NLLLoss()
loss = criterion(model(inputs), labels)
""",
            note="a pretrained model whose head was replaced by one ending in LogSoftmax",
        ),
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

loss = F.nll_loss(model(x), y)
""",
            note="a model whose class is not seen: its output is unknown, not logits",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = [(loss, meeting) for loss, meeting in script.outputs.fed(LOGITS, "NLLLoss") if meeting.model_call]
        for loss, meeting in script.reports(found):
            self.report(
                loss,
                f"{ends(script, meeting).replace(' returns ', ' ends with ', 1)}: raw logits, but NLLLoss expects "
                "log-probabilities (it only negates input[y]); apply F.log_softmax(..., dim=1) first or use "
                "CrossEntropyLoss",
                facts=facts(meeting),
            )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """One eval forward of the model the loss receives: is its output log-probabilities after all?"""
        from nnlint.confirm.activations import dim_name, log_probabilities, probe_output

        probed, why = probe_output(finding, session, "output")
        if probed is None:
            return unverifiable(why)
        dim, measured = log_probabilities(probed)
        data = {**probed.data, **measured}
        said = f"in eval(), {probed.where}{probed.first_of}: {probed.range()}"
        if dim is not None:
            return refuted(
                f"{said}, whose logsumexp along {dim_name(probed, dim)} is 0 within 1e-3: already "
                "log-probabilities",
                class_dim=dim, **data,
            )
        low, high = measured["logsumexp_range"][probed.class_dims()[0]]
        return confirmed(
            f"{said}, whose logsumexp along {dim_name(probed, probed.class_dims()[0])} ranges over "
            f"[{low:.3g}, {high:.3g}], not 0: not log-probabilities",
            **data,
        )
