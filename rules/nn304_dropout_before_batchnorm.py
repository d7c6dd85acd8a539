from __future__ import annotations

import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.tree import descendants, source_code

_DROPOUT = re.compile(r"torch\.nn\.(?:Feature)?(?:Alpha)?Dropout[123]?d?")
_BATCHNORM = re.compile(r"torch\.nn\.(?:Lazy|Sync)?BatchNorm(?:[123]d)?")
_SEQUENTIAL = "torch.nn.Sequential"
_APPENDS = {"append": 0, "add_module": 1}  # list.append(layer), nn.Sequential.add_module(name, layer)
Layers = list[cst.BaseExpression | None]  # None: a stretch that cannot be read (`*make_block()`)


class DropoutBeforeBatchNorm(Rule):
    """
    ## What it does
    Flags an `nn.Dropout` (any `Dropout*`, `AlphaDropout`) directly followed
    by an `nn.BatchNorm*`: next to each other in `nn.Sequential(...)` (also
    through `OrderedDict(...)` and an unpacked list `*[...]`), in a list of
    layers built with `[...]` / `append` / `add_module`, or in a `forward`
    where the output of `self.drop(x)` goes straight into `self.bn(...)`.

    ## Why is this bad?
    Dropout scales the units it keeps by `1/(1-p)`, so in training the
    activations it passes on have a larger variance than in `eval()`, where
    dropout is the identity. The BatchNorm right after it accumulates its
    running variance on the training-time (dropped) activations and then, at
    inference, normalises the un-dropped ones with it: the statistics no
    longer match ("variance shift", Li et al., *Understanding the Disharmony
    between Dropout and Batch Normalization by Variance Shift*, CVPR 2019).
    The shift compounds through the following layers and costs accuracy at
    test time, with nothing visible in the training curves.

    ## Example
    ```python
    nn.Sequential(
        nn.Linear(dim_in, 200),
        nn.Dropout(p=0.1),
        nn.BatchNorm1d(200),
        nn.ReLU(inplace=True),
    )
    ```

    ## Use instead
    Normalise first and drop out afterwards (or only after the last
    BatchNorm, before the classifier):
    ```python
    nn.Sequential(
        nn.Linear(dim_in, 200),
        nn.BatchNorm1d(200),
        nn.ReLU(inplace=True),
        nn.Dropout(p=0.1),
    )
    ```

    ## Known problems
    Only adjacent layers are compared: a dropout separated from the
    BatchNorm by an activation (`Dropout, ReLU, BatchNorm`) shifts the
    variance too but is not flagged; layers built by a helper function of
    another file are not seen.
    """

    code = "NN304"
    name = "dropout-before-batchnorm"
    severity = "info"
    summary = "Dropout directly before BatchNorm shifts the variance BatchNorm sees between training and eval"
    triggers = ("Dropout",)
    default_enabled = False

    bad = [
        Example(
            """
import torch.nn as nn

class NonLinearClassifier(nn.Module):
    def __init__(self, dim_in, n_label=10, p=0.1):
        super(NonLinearClassifier, self).__init__()
        self.net = nn.Sequential(
            nn.Linear(dim_in, 200),
            nn.Dropout(p=p),
            nn.BatchNorm1d(200),  # <--
            nn.ReLU(inplace=True),
            nn.Linear(200, n_label),
        )
""",
            message="variance shift",
            note="HobbitLong/RepDistiller models/classifier.py",
        ),
        Example(
            """
import torch
from collections import OrderedDict

head = torch.nn.Sequential(OrderedDict([
    ("drop", torch.nn.Dropout(0.2)),
    ("bn", torch.nn.BatchNorm1d(64)),  # <--
]))
mlp = torch.nn.Sequential(*[torch.nn.Linear(8, 8), torch.nn.AlphaDropout(0.1), torch.nn.SyncBatchNorm(8)])  # <--
block = torch.nn.Sequential(
    torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Dropout2d(0.2)),
    torch.nn.BatchNorm2d(8),  # <--
)
""",
            note="OrderedDict, an unpacked list literal, the last layer of a nested Sequential",
        ),
        Example(
            """
import torch.nn as nn

def discriminator_block(in_filters, out_filters, bn=True):
    block = [nn.Conv2d(in_filters, out_filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
    if bn:
        block.append(nn.BatchNorm2d(out_filters, 0.8))  # <--
    return block

layers = []
for width in widths:
    layers.append(nn.Linear(prev, width))
    layers.append(nn.Dropout(p))
    layers.append(nn.BatchNorm1d(width))  # <--
    layers += [nn.Dropout(p), nn.BatchNorm1d(width)]  # <--
    layers.extend([nn.Linear(width, width), nn.AlphaDropout(p)])
    layers.extend([nn.BatchNorm1d(width)])  # <--
mlp = nn.Sequential()
mlp.add_module("drop", nn.Dropout(0.5))
mlp.add_module("bn", nn.BatchNorm1d(64))  # <--
""",
            note="PyTorch-GAN's DCGAN discriminator (and 6 other GANs there); append, +=, extend, add_module",
        ),
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(512, 256)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(256)

    def forward(self, x):
        x = self.drop(F.relu(self.fc(x)))
        x = self.bn(x)  # <--
        return F.relu(self.bn(self.drop(x)))  # <--
""",
            note="in forward: consecutive statements, or nested calls",
        ),
    ]
    good = [
        Example(
            """
import torch.nn as nn

classifier = nn.Sequential(
    nn.Linear(1024, 256),
    nn.BatchNorm1d(256),
    nn.ReLU(),
    nn.Dropout(0.5),
    nn.Linear(256, 10),
)
""",
            note="BatchNorm first, dropout afterwards: the recommended order",
        ),
        Example(
            """
import torch.nn as nn

last_conv = nn.Sequential(nn.Conv2d(304, 256, 3, padding=1, bias=False),
                          nn.BatchNorm2d(256),
                          nn.ReLU(),
                          nn.Dropout(0.5),
                          nn.Conv2d(256, 256, 3, padding=1, bias=False),
                          nn.BatchNorm2d(256))
head = nn.Sequential(nn.Dropout(0.0), nn.BatchNorm1d(10))
""",
            note="a layer between them (deeplab's decoder); a zero dropout is the identity",
        ),
        Example(
            """
import torch.nn as nn

def block(in_filters, out_filters, bn=True):
    layers = [nn.Conv2d(in_filters, out_filters, 3), nn.Dropout2d(0.25)]
    layers.append(nn.LeakyReLU(0.2))
    if bn:
        layers.append(nn.BatchNorm2d(out_filters))
    return layers

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(64)
        self.fc = nn.Linear(64, 64)

    def forward(self, x):
        x = self.bn(x)
        y = self.drop(x)
        z = self.fc(y)
        return self.bn(z) + self.drop(z)
""",
            note="the dropout's output goes elsewhere first",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.call_name(node) == _SEQUENTIAL:
            self._check_sequence(_sequential_layers(node, self.context))

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._check_list_building(node.body)

    def leave_Module(self, node: cst.Module) -> None:
        self._check_list_building(node.body)  # on leaving: the imports are all read by then

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # A method's parents are ClassDef > IndentedBlock (the node itself is not among the ancestors yet).
        cls = self.context.ancestors[-2] if len(self.context.ancestors) >= 2 else None
        if node.name.value == "forward" and isinstance(cls, cst.ClassDef):
            self._check_forward(node, self._attribute_kinds(cls))

    def _kind(self, layer: cst.BaseExpression | None) -> str | None:
        """"dropout" / "batchnorm" for a layer construction; a zero-probability dropout is the identity."""
        if not isinstance(layer, cst.Call):
            return None
        name = self.context.call_name(layer) or ""
        if _BATCHNORM.fullmatch(name):
            return "batchnorm"
        if _DROPOUT.fullmatch(name):
            p = next((arg.value for arg in layer.args if arg.keyword is None or arg.keyword.value == "p"), None)
            zero = isinstance(p, (cst.Integer, cst.Float)) and p.evaluated_value == 0
            return None if zero else "dropout"
        return None

    def _edge(self, layer: cst.BaseExpression | None, last: bool) -> cst.BaseExpression | None:
        """The first (or last) layer of a nested `nn.Sequential`, or the layer itself."""
        while isinstance(layer, cst.Call) and self.context.call_name(layer) == _SEQUENTIAL:
            layers = _sequential_layers(layer, self.context)
            layer = (layers[-1] if last else layers[0]) if layers else None
        return layer

    def _follows(self, before: cst.BaseExpression | None, after: cst.BaseExpression | None) -> bool:
        dropout, batchnorm = self._edge(before, last=True), self._edge(after, last=False)
        return self._kind(dropout) == "dropout" and self._kind(batchnorm) == "batchnorm"

    def _check_sequence(self, layers: Layers) -> None:
        for before, after in zip(layers, layers[1:]):
            if self._follows(before, after):
                self._report(before, after)

    def _check_list_building(self, statements) -> None:
        """`layers = [..., nn.Dropout(p)]` then `layers.append(nn.BatchNorm1d(n))` (also inside an `if`)."""
        last: dict[str, cst.BaseExpression | None] = {}
        for statement in statements:
            if isinstance(statement, cst.If) and statement.orelse is None:
                inner = statement.body.body if isinstance(statement.body, cst.IndentedBlock) else [statement.body]
                self._track(inner, last)
                last.clear()  # whether the branch ran is unknown after it
            elif isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
                self._track([statement], last)
            else:
                last.clear()

    def _track(self, statements, last: dict[str, cst.BaseExpression | None]) -> None:
        """Follow, per list name, the layer put last; check each layer put after it."""
        for line in statements:
            if not isinstance(line, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
                last.clear()
                continue
            for small in line.body:
                added = _layers_added(small)
                if added is None:
                    continue
                name, layers, appended = added
                self._check_sequence(([last.get(name)] if appended else []) + layers)
                last[name] = layers[-1] if layers else last.get(name)

    def _attribute_kinds(self, cls: cst.ClassDef) -> dict[str, str]:
        """`self.drop = nn.Dropout(...)` in `__init__`: attribute name -> "dropout" / "batchnorm"."""
        kinds: dict[str, set] = {}
        for method in cls.body.body:
            if isinstance(method, cst.FunctionDef) and method.name.value == "__init__":
                for node in descendants(method.body):
                    if isinstance(node, cst.Assign) and len(node.targets) == 1:
                        target = node.targets[0].target
                        if isinstance(target, cst.Attribute) and dotted_name(target.value) == "self":
                            kinds.setdefault(target.attr.value, set()).add(self._kind(node.value))
        return {attribute: kind.pop() for attribute, kind in kinds.items() if len(kind) == 1 and None not in kind}

    def _check_forward(self, forward: cst.FunctionDef, kinds: dict[str, str]) -> None:
        """`self.bn(self.drop(x))`, or `y = self.drop(...)` followed by a statement calling `self.bn(y)`."""

        def attribute_call(node, kind) -> bool:
            return (
                isinstance(node, cst.Call)
                and isinstance(node.func, cst.Attribute)
                and dotted_name(node.func.value) == "self"
                and kinds.get(node.func.attr.value) == kind
            )

        for node in descendants(forward.body):
            if attribute_call(node, "batchnorm") and node.args and attribute_call(node.args[0].value, "dropout"):
                self._report_calls(node.args[0].value, node)
            if isinstance(node, cst.IndentedBlock):
                for first, second in zip(node.body, node.body[1:]):
                    dropped = _assigned_call(first)
                    if dropped is None or not attribute_call(dropped[1], "dropout"):
                        continue
                    for call in descendants(second):
                        if attribute_call(call, "batchnorm") and call.args:
                            if dotted_name(call.args[0].value) == dropped[0]:
                                self._report_calls(dropped[1], call)

    def _report(self, dropout: cst.BaseExpression, batchnorm: cst.BaseExpression) -> None:
        dropout, batchnorm = self._edge(dropout, last=True), self._edge(batchnorm, last=False)
        self._report_calls(dropout, batchnorm)

    def _report_calls(self, dropout: cst.Call, batchnorm: cst.Call) -> None:
        # A list built inside an `if` is read with the block around it and on its own: report once.
        if not any(report.node is batchnorm for report in self.reports):
            self.report(batchnorm, _message(source_code(dropout.func), source_code(batchnorm.func)))


def _message(dropout: str, batchnorm: str) -> str:
    return (
        f"`{batchnorm}` directly after `{dropout}`: dropout changes the activations' variance between training "
        "and eval, so BatchNorm's running statistics do not match at inference (variance shift, Li et al. 2019); "
        "put the dropout after the BatchNorm"
    )


def _sequential_layers(call: cst.Call, context) -> Layers:
    """The layers of `nn.Sequential(...)` in order; None marks a stretch that cannot be read (`*make_block()`)."""
    if len(call.args) == 1 and isinstance(call.args[0].value, cst.Call) and not call.args[0].star:
        inner = call.args[0].value
        if (context.call_name(inner) or dotted_name(inner.func) or "").endswith("OrderedDict") and inner.args:
            items = inner.args[0].value
            if isinstance(items, cst.Dict):
                return [element.value if isinstance(element, cst.DictElement) else None for element in items.elements]
            if isinstance(items, (cst.List, cst.Tuple)):
                return [
                    element.value.elements[1].value
                    if isinstance(element.value, cst.Tuple) and len(element.value.elements) == 2
                    else None
                    for element in items.elements
                ]
    layers: Layers = []
    for arg in call.args:
        if arg.star == "*" and isinstance(arg.value, (cst.List, cst.Tuple)):
            layers.extend(_elements(arg.value))
        elif arg.star or arg.keyword is not None:
            layers.append(None)
        else:
            layers.append(arg.value)
    return layers


def _layers_added(small: cst.BaseSmallStatement) -> tuple[str, Layers, bool] | None:
    """`layers = [...]`, `layers += [...]`, `layers.extend([...])`, `layers.append(x)`, `seq.add_module(n, x)`:
    the list's name, the layers put in, and whether they go after the ones it already holds."""
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.value, cst.List):
        name, layers, appended = dotted_name(small.targets[0].target), _elements(small.value), False
    elif isinstance(small, cst.AugAssign) and isinstance(small.operator, cst.AddAssign):
        if not isinstance(small.value, cst.List):
            return None
        name, layers, appended = dotted_name(small.target), _elements(small.value), True
    elif isinstance(small, cst.Expr) and isinstance(call := small.value, cst.Call):
        if not isinstance(call.func, cst.Attribute):
            return None
        method = call.func.attr.value
        name, appended = dotted_name(call.func.value), True
        if method == "extend" and call.args and isinstance(call.args[0].value, cst.List):
            layers = _elements(call.args[0].value)
        elif method in _APPENDS and len(call.args) > _APPENDS[method]:
            layers = [call.args[_APPENDS[method]].value]
        else:
            return None
    else:
        return None
    return (name, layers, appended) if name is not None else None


def _elements(literal: cst.List | cst.Tuple) -> Layers:
    return [None if isinstance(element, cst.StarredElement) else element.value for element in literal.elements]


def _assigned_call(statement: cst.CSTNode) -> tuple[str, cst.Call] | None:
    """`y = f(...)`: the name `y` and the call."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.value, cst.Call):
            name = dotted_name(small.targets[0].target)
            return (name, small.value) if name else None
    return None
