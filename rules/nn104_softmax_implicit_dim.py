import libcst as cst

from nnlint.rule import Example, Rule

# The callables whose `dim` defaults to None and is then guessed from the input's rank, with the
# position `dim` takes when passed positionally. `torch.softmax`, `Tensor.softmax` and
# `torch.log_softmax` require `dim` (a TypeError without it), so they cannot be wrong silently.
_IMPLICIT_DIM = {
    **{f"torch.nn.functional.{name}": 1 for name in ("softmax", "log_softmax", "softmin")},
    **{f"torch.nn.{name}": 0 for name in ("Softmax", "LogSoftmax", "Softmin")},
}


class SoftmaxImplicitDim(Rule):
    """
    ## What it does
    Flags `F.softmax(x)`, `F.log_softmax(x)`, `F.softmin(x)`, `nn.Softmax()`,
    `nn.LogSoftmax()` and `nn.Softmin()` written without `dim`.

    ## Why is this bad?
    Without `dim`, torch guesses the axis from the input's rank (and warns
    that the implicit choice is deprecated): dim 0 for 0-, 1- and 3-d inputs,
    dim 1 otherwise. For a batch of vectors `(B, C)` that is the class axis,
    but for a sequence batch `(B, T, C)` it is dim 0, the *batch*: each
    sample's probabilities then depend on the other samples in the batch, and
    nothing raises. The same layer silently changes meaning when the input
    gains a dimension. (Recipe: "know which axis you normalise over".)

    ## Example
    ```python
    probs = F.softmax(logits)
    self.act = nn.LogSoftmax()
    ```

    ## Use instead
    ```python
    probs = F.softmax(logits, dim=-1)
    self.act = nn.LogSoftmax(dim=-1)
    ```
    """

    code = "NN104"
    name = "softmax-implicit-dim"
    severity = "warning"
    summary = "softmax/log_softmax without dim= lets torch guess the axis (dim 0, the batch, for 3-d input)"
    triggers = ("softmax", "Softmax", "softmin", "Softmin")

    bad = [
        Example(
            """
import torch.nn.functional as F

def predict(model, x):
    return F.softmax(model(x))  # <--
""",
            message="dim=",
        ),
        Example(
            """
import torch
from torch import nn

class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.softmax = nn.Softmax()  # <--
        self.out = torch.nn.LogSoftmax()  # <--

    def forward(self, q, k):
        scores = torch.bmm(q, k.transpose(1, 2))  # (B, T, T): implicit dim is 0, the batch
        return self.softmax(scores)
""",
            note="a 3-d input is normalised across the batch",
        ),
        Example(
            """
import torch

def post_process(outputs, num_top_queries):
    out_logits = outputs.logits  # (batch, queries, classes)
    scores = torch.nn.functional.softmax(out_logits)[:, :, :-1]  # <--
    scores, labels = scores.max(dim=-1)
    return scores, labels
""",
            note="transformers' RT-DETR post-processing (no focal loss): softmax over the batch; all ones for one image",
        ),
        Example(
            """
from torch.nn.functional import log_softmax, softmin

loss = -(log_softmax(logits) * target).sum()  # <--
weights = softmin(distances)  # <--
""",
        ),
    ]
    good = [
        Example(
            """
import torch
import torch.nn.functional as F
from torch import nn

probs = F.softmax(logits, dim=-1)
logp = F.log_softmax(logits, 1)
act = nn.Softmax(dim=1)
act2 = nn.LogSoftmax(-1)
p = torch.softmax(logits, -1)
q = logits.softmax(-1)
""",
            note="dim given, by keyword or position",
        ),
        Example(
            """
import torch.nn.functional as F
from torch import nn

def head(x, **options):
    return F.softmax(x, **options), nn.Softmax(*args)
""",
            note="dim may come through **kwargs / *args",
        ),
        Example(
            """
import torch

p = torch.softmax(logits)
""",
            note="torch.softmax requires dim: without it, a TypeError, not a silent guess",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.call_name(node)
        position = _IMPLICIT_DIM.get(name or "")
        if position is None:
            return
        positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
        if len(positional) > position or any(arg.star or (arg.keyword and arg.keyword.value == "dim") for arg in node.args):
            return
        short = name.rsplit(".", 1)[1]
        self.report(
            node,
            f"`{short}` without dim= lets torch guess the axis from the input's rank (dim 0, the batch, for a "
            f"3-d input; deprecated): pass dim= explicitly, e.g. dim=-1 for the class axis",
        )
