import re

import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.evaluation import EVALUATION_TRIGGERS

# Evaluation code that wants gradients on purpose: saliency maps, adversarial examples, input attribution.
_USES_GRADIENTS = re.compile(r"\.backward\(|autograd\.grad\(|requires_grad|\.grad\b")


class EvalWithoutNoGrad(Rule):
    """
    ## What it does
    Flags a model called for evaluation (after `model.eval()`, in a
    function named like `evaluate` / `validate` / `test` / `predict`, or
    in a loop over a validation or test loader) outside any
    `torch.no_grad()` / `torch.inference_mode()` block or decorator.

    ## Why is this bad?
    `model.eval()` only switches dropout and BatchNorm; autograd still
    records every operation, so each evaluation batch keeps its activations
    alive for a backward pass that never comes. Evaluation runs slower,
    needs several times the memory, and the batch size that fits is
    smaller. Results are the same, which is why this is only information.

    ## Example
    ```python
    model.eval()
    for x, y in val_loader:
        correct += (model(x).argmax(1) == y).sum().item()
    ```

    ## Use instead
    ```python
    model.eval()
    with torch.no_grad():
        for x, y in val_loader:
            correct += (model(x).argmax(1) == y).sum().item()
    ```
    `@torch.no_grad()` or `@torch.inference_mode()` on the evaluation
    function works as well.
    """

    code = "NN703"
    name = "eval-without-no-grad"
    severity = "info"
    default_enabled = False
    summary = "Evaluation calls the model with autograd still recording"
    triggers = EVALUATION_TRIGGERS

    bad = [
        Example(
            """
import torch

def evaluate(model, loader):
    model.eval()
    correct = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()  # <--
    return correct

for epoch in range(10):
    model.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    evaluate(model, val_loader)
""",
            message="no_grad",
        ),
        Example(
            """
import torch
from models import Classifier

model = Classifier()
model.load_state_dict(torch.load("model.pt"))
model.eval()
predictions = [model(batch).argmax(1) for batch in test_loader]  # <--
""",
            note="an inference script",
        ),
    ]
    good = [
        Example(
            """
import torch

@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    return [model(x) for x, _ in loader]

for epoch in range(10):
    model.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    evaluate(model, val_loader)
""",
            note="a no_grad decorator",
        ),
        Example(
            """
import torch

def fgsm_test(model, loader, epsilon):
    model.eval()
    for data, target in loader:
        data.requires_grad = True
        loss = F.nll_loss(model(data), target)
        model.zero_grad()
        loss.backward()
        perturbed = data + epsilon * data.grad.sign()

model.load_state_dict(torch.load("lenet.pt"))
fgsm_test(model, test_loader, 0.1)
""",
            note="trap: adversarial examples need the gradient with respect to the input",
        ),
        Example(
            """
import torch

model.load_state_dict(torch.load("model.pt"))
model.eval()
with torch.inference_mode():
    predictions = [model(batch) for batch in test_loader]
""",
            note="inference_mode",
        ),
        Example(
            """
import torch
import pytorch_lightning as pl

class Classifier(pl.LightningModule):
    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.model(x), y))
""",
            note="Lightning runs validation_step under no_grad itself",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for call in script.evaluation.calls:
            if not (call.root.is_module or call.after_eval):
                continue  # a hook the file never calls (`validation_step`): its caller may disable autograd
            if not call.event.no_grad and not _wants_gradients(script, call.event):
                found.append((call.event.node, call))
        for model_call, call in script.reports(found):
            self.report(
                model_call,
                f"`{script.code(model_call.func)}` is called {call.why} with autograd recording: every evaluation "
                f"batch keeps its graph; wrap the evaluation in `with torch.no_grad():` (or decorate it with "
                f"`@torch.no_grad()`)",
            )


def _wants_gradients(script, event) -> bool:
    """The function around the call takes gradients itself (saliency, adversarial examples)."""
    around = event.function
    return around is not None and bool(_USES_GRADIENTS.search(script.context.module.code_for_node(around)))
