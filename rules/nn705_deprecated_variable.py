from __future__ import annotations

import libcst as cst

from nnlint.rule import Example, Rule
from nnlint.tree import source_code

_VARIABLE = frozenset({"torch.autograd.Variable", "torch.autograd.variable.Variable"})


class DeprecatedVariable(Rule):
    """
    ## What it does
    Flags calls of `torch.autograd.Variable(...)`, however it is imported
    (`from torch.autograd import Variable`, `import torch.autograd as
    autograd; autograd.Variable(x)`, `torch.autograd.Variable(x)`).

    ## Why is this bad?
    Since PyTorch 0.4 tensors carry autograd themselves and `Variable` is a
    deprecated shim. On a plain tensor it does nothing, so it hides where
    `requires_grad` is really set; on a tensor that is part of a graph it
    silently returns a *detached* copy, cutting the gradient there; and its
    `volatile=True` argument has no effect any more, so code that relied on it
    to skip the graph at evaluation now builds one (and keeps its memory).

    ## Example
    ```python
    from torch.autograd import Variable

    for images, labels in loader:
        images, labels = Variable(images.cuda()), Variable(labels.cuda())
        alpha = Variable(torch.rand(n, 1), requires_grad=True)
        test_x = Variable(test_x, volatile=True)
    ```

    ## Use instead
    ```python
    for images, labels in loader:
        images, labels = images.cuda(), labels.cuda()
        alpha = torch.rand(n, 1, requires_grad=True)   # or x.detach().requires_grad_()
        with torch.no_grad():
            ...  # evaluate on test_x
    ```

    ## Known problems
    A star import (`from torch.autograd import *`) is not followed.
    """

    code = "NN705"
    name = "deprecated-variable"
    severity = "info"
    summary = "torch.autograd.Variable is a deprecated shim since PyTorch 0.4: use the tensor itself"
    triggers = ("Variable",)
    default_enabled = False

    bad = [
        Example(
            """
import torch
from torch.autograd import Variable

for images, labels in train_loader:
    images = Variable(images.cuda())  # <--
    labels = torch.autograd.Variable(labels.cuda())  # <--
""",
            message="use the tensor itself",
            note="the pre-0.4 training loop (pytorch-tutorial, PyTorch-GAN)",
        ),
        Example(
            """
import torch.autograd as autograd

def gradient_penalty(D, real, fake):
    alpha = torch.rand(real.size(0), 1, 1, 1)
    interpolates = autograd.Variable(alpha * real + (1 - alpha) * fake, requires_grad=True)  # <--
    return D(interpolates)
""",
            message="requires_grad_()",
            note="WGAN-GP through a module alias; requires_grad=True has a modern spelling",
        ),
        Example(
            """
from torch.autograd import Variable as V

test_x = V(torch.from_numpy(test_x).float(), volatile=True)  # <--
""",
            message="torch.no_grad()",
            note="volatile=True silently does nothing now: evaluation builds a graph",
        ),
        Example(
            """
from torch.autograd.variable import Variable

class EncoderRNN(nn.Module):
    def init_hidden(self):
        return Variable(torch.zeros(1, 1, self.hidden_size))  # <--
""",
        ),
    ]
    good = [
        Example(
            """
import tensorflow as tf

weights = {"out": tf.Variable(tf.zeros([n_classes]))}
""",
            note="TensorFlow's Variable is another thing altogether",
        ),
        Example(
            """
from torch.autograd import Variable

def to_tensor(x):
    if isinstance(x, Variable):
        return x.data
    return x
""",
            note="a type check reads the class; only calls are flagged",
        ),
        Example(
            """
import torch

x = torch.rand(4, 3, requires_grad=True)
y = x.detach().requires_grad_()
""",
            note="the modern spelling",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.call_name(node) not in _VARIABLE:
            return
        keywords = {arg.keyword.value: arg.value for arg in node.args if arg.keyword is not None}
        wrapped = source_code(node.args[0].value) if node.args and node.args[0].keyword is None else ""
        advice = f"use the tensor itself (`{wrapped}`)" if 0 < len(wrapped) <= 40 else "use the tensor itself"
        if _is_true(keywords.get("requires_grad")):
            tensor = wrapped if 0 < len(wrapped) <= 40 else "x"
            advice = (
                f"write `{tensor}.requires_grad_()` (`.detach().requires_grad_()` if it has a graph) "
                "or create it with `requires_grad=True` (`torch.tensor(..., requires_grad=True)`)"
            )
        if _is_true(keywords.get("volatile")):
            advice = "`volatile=True` has no effect any more: run the evaluation under `with torch.no_grad():`"
        self.report(
            node,
            "`Variable(...)` is a deprecated shim since PyTorch 0.4, where tensors took over autograd: "
            f"on a plain tensor it does nothing, on one with a graph it silently detaches it; {advice}",
        )


def _is_true(value: cst.BaseExpression | None) -> bool:
    return isinstance(value, cst.Name) and value.value == "True"
