import libcst as cst

from nnlint.rule import Example, Rule

_FUNCTIONAL_DROPOUTS = {
    f"torch.nn.functional.{name}": position
    for name, position in {
        "dropout": 2, "dropout1d": 2, "dropout2d": 2, "dropout3d": 2,
        "alpha_dropout": 2, "feature_alpha_dropout": 2,
    }.items()
}  # fmt: skip


class FunctionalDropoutAlwaysOn(Rule):
    """
    ## What it does
    Flags `F.dropout` (and `dropout1d/2d/3d`, `alpha_dropout`,
    `feature_alpha_dropout`) called inside a module's `forward` without a
    `training=` argument.

    ## Why is this bad?
    The functional form does not know about `model.eval()`: its `training`
    parameter defaults to `True`, so dropout keeps zeroing activations at
    validation and inference. Metrics come out noisy and worse than the model
    really is, and nothing raises. (Recipe: "dropout must be off at
    inference/test"; `nn.Dropout` follows `eval()`, `F.dropout` does not.)

    ## Example
    ```python
    def forward(self, x):
        return self.fc(F.dropout(x, 0.5))
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return self.fc(F.dropout(x, 0.5, training=self.training))
    ```
    or an `nn.Dropout(0.5)` submodule. Deliberate Monte-Carlo dropout writes
    `training=True` out, and is not flagged.

    ## Runtime confirmation
    `--confirm` puts the model in `eval()` and runs the same input twice:
    different outputs confirm the finding, identical outputs refute it.
    """

    code = "NN301"
    name = "functional-dropout-always-on"
    severity = "error"
    summary = "Functional dropout in forward() without training=self.training stays on in eval mode"
    triggers = ("dropout",)

    bad = [
        Example(
            """
import torch.nn.functional as F
from torch import nn

class Net(nn.Module):
    def forward(self, x):
        x = F.dropout(x, p=0.2)  # <--
        return self.fc(x)
""",
            message="training=self.training",
        ),
        Example(
            """
import torch
from torch.nn.functional import dropout2d as drop

class Block(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.alpha_dropout(self.conv(drop(x, 0.1)), 0.1)  # <--
""",
            note="qualified and aliased imports are one call; both calls on the line are reported",
        ),
        Example(
            """
import torch.nn.functional as F

class Encoder:
    def forward_features(self, x):
        y = F.dropout(  # <--
            x, 0.5)
        return y
""",
            note="a call that spans lines is reported where it starts",
        ),
    ]
    good = [
        Example(
            """
import torch.nn.functional as F

class Net:
    def forward(self, x):
        return F.dropout(x, 0.5, training=self.training)
""",
            note="trap: training=self.training follows eval()",
        ),
        Example(
            """
import torch.nn.functional as F

class MCDropoutNet:
    def forward(self, x):
        return F.dropout(x, 0.5, training=True)
""",
            note="trap: explicit MC dropout, training=True written out",
        ),
        Example(
            """
import torch.nn.functional as F

class Net:
    def forward(self, x):
        return F.dropout(x, 0.5, self.training)
""",
            note="training passed positionally",
        ),
        Example(
            """
import torch.nn.functional as F

def augment(x):
    return F.dropout(x, 0.1)
""",
            note="outside a module's forward: data augmentation or a deliberate choice",
        ),
        Example(
            """
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x)
""",
            note="the module form follows eval()",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        training_position = _FUNCTIONAL_DROPOUTS.get(self.context.call_name(node))
        if training_position is None or not self._in_forward():
            return
        positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
        passes_training = len(positional) > training_position or any(
            arg.star == "**" or (arg.keyword is not None and arg.keyword.value == "training") for arg in node.args
        )
        if not passes_training:
            function = self.context.call_name(node).rsplit(".", 1)[1]
            self.report(
                node,
                f"`{function}` in forward() defaults to training=True and stays on after model.eval(); "
                "pass training=self.training or use an nn.Dropout module",
            )

    def _in_forward(self) -> bool:
        method = self.context.enclosing_method()
        return method is not None and "forward" in method[1].name.value
