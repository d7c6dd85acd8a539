from __future__ import annotations

import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.tree import descendants, source_code

_BIASED = re.compile(r"torch\.nn\.(Linear|Conv(Transpose)?[123]d)")
_BATCHNORM = re.compile(r"torch\.nn\.(Lazy|Sync)?BatchNorm([123]d)?")
_BIAS_POSITION = {"Linear": 2}  # Conv*/ConvTranspose*: in, out, kernel, stride, padding, dilation|output_padding, groups, bias


class BiasBeforeBatchNorm(Rule):
    """
    ## What it does
    Flags an `nn.Conv*d` / `nn.Linear` left with its default `bias=True` and
    directly followed by an `nn.BatchNorm*`: next to each other in
    `nn.Sequential(...)` or a list literal of layers, or in a `forward` that
    feeds `self.conv(x)` straight into `self.bn(...)`.

    ## Why is this bad?
    BatchNorm subtracts the per-channel mean, which removes any constant the
    layer before it adds: the bias gets zero gradient in training and is pure
    overhead (parameters, memory, a wasted add), and BatchNorm's own `beta`
    already provides the shift. Not a correctness bug; the recipe's "conv
    without bias before BN" (as in torchvision's ResNet).

    ## Example
    ```python
    nn.Sequential(nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU())
    ```

    ## Use instead
    ```python
    nn.Sequential(nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU())
    ```
    """

    code = "NN202"
    name = "bias-before-batchnorm"
    severity = "info"
    summary = "Conv/Linear bias directly before BatchNorm is cancelled by the mean subtraction"
    triggers = ("BatchNorm",)
    default_enabled = False

    bad = [
        Example(
            """
import torch.nn as nn

block = nn.Sequential(
    nn.Conv2d(64, 128, kernel_size=3, padding=1),  # <--
    nn.BatchNorm2d(128),
    nn.ReLU(inplace=True),
)
head = [nn.Linear(512, 256, bias=True), nn.BatchNorm1d(256)]  # <--
""",
            message="bias=False",
        ),
        Example(
            """
import torch.nn as nn

class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3)  # <--
        self.bn = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3)  # <--
        self.bn2 = nn.BatchNorm2d(64)

    def forward(self, x):
        x = self.bn(self.conv(x)).relu()
        x = self.conv2(x)
        x = self.bn2(x)
        return x
""",
            note="nested call, or one statement feeding the next, in forward",
        ),
    ]
    good = [
        Example(
            """
import torch.nn as nn

block = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128))
mlp = nn.Sequential(nn.Linear(512, 256, False), nn.BatchNorm1d(256))
conv_bias = nn.Sequential(nn.Conv2d(64, 128, 3, 1, 1, 1, 1, use_bias), nn.BatchNorm2d(128))
""",
            note="bias=False, by keyword or position (or a value the source cannot tell)",
        ),
        Example(
            """
import torch.nn as nn

block = nn.Sequential(nn.Conv2d(64, 128, 3), nn.ReLU(), nn.BatchNorm2d(128))
""",
            note="an activation between them: the bias is not a constant shift BatchNorm removes",
        ),
        Example(
            """
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3)
        self.bn = nn.BatchNorm2d(32)

    def forward(self, x):
        return self.bn(x) + self.conv(x)
""",
            note="the conv's output does not go into the BatchNorm",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.call_name(node) == "torch.nn.Sequential":
            self._check_layers([arg.value if not arg.star and arg.keyword is None else None for arg in node.args])

    def visit_List(self, node: cst.List) -> None:
        self._check_layers([e.value if isinstance(e, cst.Element) else None for e in node.elements])

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        layers: dict[str, cst.Call] = {}
        for method in node.body.body:
            if isinstance(method, cst.FunctionDef) and method.name.value == "__init__":
                for assign in descendants(method.body):
                    if isinstance(assign, cst.Assign) and isinstance(assign.value, cst.Call):
                        target = assign.targets[0].target
                        if isinstance(target, cst.Attribute) and dotted_name(target.value) == "self":
                            layers[target.attr.value] = assign.value
        for method in node.body.body:
            if isinstance(method, cst.FunctionDef) and method.name.value == "forward":
                self._check_forward(method, layers)

    def _check_layers(self, layers: list) -> None:
        for before, after in zip(layers, layers[1:]):
            if self._has_bias(before) and self._is_batchnorm(after):
                self._report(before)

    def _check_forward(self, forward: cst.FunctionDef, layers: dict[str, cst.Call]) -> None:
        """`self.bn(self.conv(x))`, or `x = self.conv(x)` followed by `x = self.bn(x)`."""

        def layer(call) -> cst.Call | None:
            if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and dotted_name(call.func.value) == "self":
                return layers.get(call.func.attr.value)
            return None

        for node in descendants(forward.body):
            if isinstance(node, cst.Call) and self._is_batchnorm(layer(node)) and node.args:
                inner = layer(node.args[0].value)
                if self._has_bias(inner):
                    self._report(inner)
            if isinstance(node, cst.IndentedBlock):
                for first, second in zip(node.body, node.body[1:]):
                    made, fed = _assignment(first), _assignment(second)
                    if made and fed and self._has_bias(layer(made[1])) and self._is_batchnorm(layer(fed[1])):
                        if fed[1].args and dotted_name(fed[1].args[0].value) == made[0]:
                            self._report(layer(made[1]))

    def _has_bias(self, layer) -> bool:
        if not isinstance(layer, cst.Call):
            return False
        match = _BIASED.fullmatch(self.context.call_name(layer) or "")
        if not match:
            return False
        position = _BIAS_POSITION.get(match.group(1), 7)
        positional = [arg for arg in layer.args if arg.keyword is None]
        if len(positional) > position or any(arg.star for arg in layer.args):
            return False
        bias = next((arg.value for arg in layer.args if arg.keyword and arg.keyword.value == "bias"), None)
        return bias is None or (isinstance(bias, cst.Name) and bias.value == "True")

    def _is_batchnorm(self, layer) -> bool:
        return isinstance(layer, cst.Call) and bool(_BATCHNORM.fullmatch(self.context.call_name(layer) or ""))

    def _report(self, layer: cst.Call) -> None:
        if not any(report.node is layer for report in self.reports):
            self.report(
                layer,
                f"`{source_code(layer.func)}` keeps its default bias right before a BatchNorm, which subtracts "
                "the mean and cancels it: pass bias=False",
            )


def _assignment(statement) -> tuple[str, cst.Call] | None:
    """`x = self.layer(...)`: the name and the call."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.value, cst.Call):
            name = dotted_name(small.targets[0].target)
            return (name, small.value) if name else None
    return None
