import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.outputs import SOFTMAX, ends, facts


class SoftmaxIntoCrossEntropy(Rule):
    """
    ## What it does
    Flags `nn.CrossEntropyLoss` / `F.cross_entropy` / `nn.NLLLoss` /
    `F.nll_loss` given a model output that is already a softmax: the
    model's `forward` ends with `F.softmax(...)`, `x.softmax(1)`, an
    `nn.Softmax` layer (also as the tail of an `nn.Sequential`), or the
    training code applies `torch.softmax` to the output before the loss.
    The model class may be in another file of the project.

    ## Why is this bad?
    `CrossEntropyLoss` applies `log_softmax` to its input itself. On
    probabilities it normalises a second time: the inputs all lie in
    [0, 1], so the loss can never get much below log(C) - 1, its
    gradients are squashed, and training stalls or converges to a worse
    model, silently. `NLLLoss` expects log-probabilities: on
    probabilities it minimises -p[y], a different and badly scaled
    objective.

    ## Example
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return F.softmax(self.fc(x), dim=1)

    loss = nn.CrossEntropyLoss()(Net()(x), y)
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return self.fc(x)  # logits

    loss = nn.CrossEntropyLoss()(Net()(x), y)
    probabilities = Net()(x).softmax(dim=1)  # only for predictions
    ```

    ## Known problems
    A forward whose return differs by path (softmax only when
    `not self.training`) is not judged; neither is a model whose class
    nnlint cannot see (an installed package).

    The confirm pass builds the model the loss receives (from the class
    that builds it in the script) and runs one eval-mode forward on its
    probe input (nnlint.confirm.activations): confirmed when every output
    is >= 0 and sums to 1 within 1e-3 along the class dim (dim 1, or the
    last dim), refuted when it does not (logits: the min, max and largest
    |sum - 1| are given); unverifiable when the model cannot be built or
    its output read, or when the softmax is written in the training code.
    """

    code = "NN501"
    name = "softmax-into-cross-entropy"
    severity = "error"
    summary = "A softmax output is fed to CrossEntropyLoss/NLLLoss, which normalises again"
    triggers = ("CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss")

    bad = [
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.softmax(x, dim=1)

model = Net()
criterion = nn.CrossEntropyLoss()
for images, labels in train_loader:
    optimizer.zero_grad()
    outputs = model(images)
    loss = criterion(outputs, labels)  # <--
    loss.backward()
    optimizer.step()
""",
            message="applies log_softmax again",
        ),
        Example(
            """
import torch
from torch import nn

class Classifier(nn.Module):
    def __init__(self, n_in, n_classes):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_in, 64),
            nn.ReLU(),
            nn.Linear(64, n_classes),
            nn.Softmax(dim=1),
        )

    def forward(self, x):
        return self.layers(x)

def train(net, loader, loss_fn, opt):
    for x, y in loader:
        opt.zero_grad()
        loss = loss_fn(net(x), y)  # <--
        loss.backward()
        opt.step()

net = Classifier(20, 3)
train(net, loader, nn.CrossEntropyLoss(), torch.optim.Adam(net.parameters()))
""",
            note="an nn.Softmax tail of an nn.Sequential; model and loss reach the loop as parameters",
        ),
        Example(
            """
import torch
import torch.nn.functional as F

for x, y in loader:
    logits = model(x)
    probs = torch.softmax(logits, dim=-1)
    loss = F.cross_entropy(probs, y)  # <--
""",
            note="softmax applied in the training loop, then cross-entropy",
        ),
        Example(
            """
import torch.nn as nn

class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(100, 64, batch_first=True)
        self.fc = nn.Linear(64, 5)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        out, _ = self.lstm(x)
        out = self.fc(out[:, -1, :])
        return self.softmax(out)

model = LSTMClassifier()
loss_function = nn.NLLLoss()
loss = loss_function(model(x), y)  # <--
""",
            message="NLLLoss",
            note="NLLLoss on probabilities: it expects log-probabilities",
        ),
        Example(
            """
import torch
import torch.nn as nn

scores = classifier(features)
softmax_layer = nn.Softmax(dim=1)
probs = softmax_layer(scores)
loss_func = nn.NLLLoss()
loss = loss_func(probs, target)  # <--
""",
            note="forum snippet: an nn.Softmax layer (not LogSoftmax) before NLLLoss",
        ),
        Example(
            """
import torch
import torch.nn.functional as F
import pytorch_lightning as pl

class LitClassifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(28 * 28, 10)

    def forward(self, x):
        return torch.softmax(self.l1(x.view(x.size(0), -1)), dim=1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x)
        loss = F.cross_entropy(y_hat, y)  # <--
        return loss
""",
            note="a LightningModule calling itself in training_step",
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
        x = self.fc(x)
        if not self.training:
            return F.softmax(x, dim=1)
        return x

model = Net()
criterion = nn.CrossEntropyLoss()
for x, y in loader:
    loss = criterion(model(x), y)
""",
            note="trap: softmax used only at inference, not in the training loss",
        ),
        Example(
            """
import torch
import torch.nn as nn

model = Net()
criterion = nn.CrossEntropyLoss()
for x, y in loader:
    logits = model(x)
    loss = criterion(logits, y)
    probs = torch.softmax(logits, dim=1)
    accuracy = (probs.argmax(1) == y).float().mean()
""",
            note="trap: softmax used only for predictions, the loss gets the logits",
        ),
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
criterion = nn.CrossEntropyLoss()
loss = criterion(model(x), y)
""",
            note="trap: log_softmax output into CrossEntropyLoss (log_softmax is idempotent, so this is correct)",
        ),
        Example(
            """
import torch.nn.functional as F

student_logits = student(x)
with torch.no_grad():
    teacher_probs = F.softmax(teacher(x) / T, dim=1)
loss = F.cross_entropy(student_logits, teacher_probs)
""",
            note="softmax of the teacher as soft targets, not as the prediction",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = script.outputs.fed(SOFTMAX, "CrossEntropyLoss", "NLLLoss")
        for loss, meeting in script.reports(found):
            fix = "return the logits from forward and apply softmax only for predictions" if meeting.output.model \
                else "pass the logits"  # fmt: skip
            if meeting.loss_name == "NLLLoss":
                why = "which expects log-probabilities, not probabilities"
                fix = "return F.log_softmax(...) from forward instead" if meeting.output.model else "use log_softmax instead"
            else:
                why = "which applies log_softmax again (softmax twice: the loss saturates and gradients vanish)"
            self.report(loss, f"{ends(script, meeting)}, {why}: {fix}", facts=facts(meeting))

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """One eval forward of the model the loss receives: is its output a distribution over the classes?"""
        from nnlint.confirm.activations import dim_name, probabilities, probe_output

        probed, why = probe_output(finding, session, "softmax")
        if probed is None:
            return unverifiable(why)
        dim, loss_dim_error, measured = probabilities(probed)
        data = {**probed.data, **measured}
        said = f"in eval(), {probed.where}{probed.first_of}: {probed.range()}"
        if dim is not None:
            return confirmed(
                f"{said}, summing to 1 along {dim_name(probed, dim)} within {measured['max_sum_error'][dim]:.1e}: "
                f"probabilities, which {finding.facts.get('loss') or 'the loss'} normalises again",
                class_dim=dim, **data,
            )
        return refuted(
            f"{said}, and the sums along {dim_name(probed, probed.class_dims()[0])} are off 1 by up to "
            f"{loss_dim_error:.3g}: not probabilities",
            **data,
        )
