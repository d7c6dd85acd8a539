from __future__ import annotations

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, listed, refuted, unverifiable
from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.tree import descendants

# Classes in torch.nn that are not modules: a list of them is not this bug (a list of Parameters is, and
# is reported with ParameterList as the fix).
_NOT_MODULES = {"Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"}
_REGISTERS = ("add_module", "register_module")
_WRAPPERS = ("ModuleList", "ModuleDict", "Sequential", "ParameterList", "ParameterDict")


class UnregisteredSubmodule(Rule):
    """
    ## What it does
    Flags an `nn.Module` class that keeps layers (or `nn.Parameter`s) in a
    plain `list`, `dict` or `tuple` attribute: `self.layers = [nn.Linear(d, d)
    for _ in range(n)]`, `self.heads = {"a": nn.Linear(d, 1)}`, or
    `self.blocks = []` filled with `self.blocks.append(Block())`.

    ## Why is this bad?
    `nn.Module` registers a submodule only when it is assigned to an
    attribute directly or held by `nn.ModuleList`/`nn.ModuleDict`. Layers in
    a plain container are invisible to `parameters()`, `state_dict()`,
    `.to(device)`, `.train()`/`.eval()`: the optimizer never updates them
    (they stay at their random init while the loss still goes down through
    the other layers), checkpoints do not save them, and `model.cuda()`
    leaves them on the CPU. Nothing raises until the device mismatch, if ever.

    ## Example
    ```python
    self.layers = [nn.Linear(64, 64) for _ in range(4)]
    ```

    ## Use instead
    ```python
    self.layers = nn.ModuleList(nn.Linear(64, 64) for _ in range(4))
    ```
    (`nn.ModuleDict` for a dict, `nn.ParameterList` for parameters).

    ## Known problems
    Only layers constructed in the container (or appended to it) in the
    class are seen: a list filled by a helper function, or with layers
    passed in as arguments, is not flagged. A list kept out of the model on
    purpose (a frozen teacher, an EMA copy) holds existing modules, not new
    ones, and is not flagged.

    ## Runtime confirmation
    `--confirm` builds the model and looks in the attribute's list/dict/tuple
    for modules missing from `named_modules()` (and parameters missing from
    `parameters()`): found, confirmed with their count and number of
    parameters; every one registered elsewhere, refuted.
    """

    code = "NN203"
    name = "unregistered-submodule"
    severity = "error"
    summary = "Layers kept in a plain list/dict attribute are not registered: not trained, saved or moved"
    triggers = ("Module",)

    bad = [
        Example(
            """
import torch.nn as nn

class MLP(nn.Module):
    def __init__(self, dim, depth):
        super().__init__()
        self.layers = [nn.Linear(dim, dim) for _ in range(depth)]  # <--
        self.heads = {"cls": nn.Linear(dim, 10), "box": nn.Linear(dim, 4)}  # <--

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return self.heads["cls"](x)
""",
            message="not registered",
        ),
        Example(
            """
import torch
from torch import nn

class Block(nn.Module):
    pass

class Net(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.blocks = []  # <--
        for _ in range(n):
            self.blocks.append(Block())
        self.scales = [nn.Parameter(torch.ones(1)) for _ in range(n)]  # <--
        self.heads = {}  # <--
        for name in ("cls", "box"):
            self.heads[name] = nn.Linear(8, 4)
""",
            note="filled by append or by key; a file's own module class; a list of parameters",
        ),
        Example(
            """
from torch import nn

class OneFormerTransformerModule(nn.Module):
    def __init__(self, in_features, config):
        super().__init__()
        self.input_projections = []  # <--
        for _ in range(self.num_feature_levels):
            if in_features != hidden_dim or config.enforce_input_proj:
                self.input_projections.append(nn.Conv2d(in_features, hidden_dim, kernel_size=1))
            else:
                self.input_projections.append(nn.Sequential())
""",
            note="transformers' OneFormer: the projections, when built, are never trained or moved",
        ),
    ]
    good = [
        Example(
            """
import torch.nn as nn

class MLP(nn.Module):
    def __init__(self, dim, depth):
        super().__init__()
        layers = [nn.Linear(dim, dim) for _ in range(depth)]
        self.layers = nn.ModuleList(layers)
        self.heads = [nn.Linear(dim, 1)]
        self.heads = nn.ModuleList(self.heads)
        self.parts = [nn.Linear(dim, dim), nn.ReLU()]
        self.net = nn.Sequential(*self.parts)
""",
            note="trap: a list later wrapped in nn.ModuleList",
        ),
        Example(
            """
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.channels = [64, 128, 256]
        self.feature_info = [dict(num_chs=64, module="layer1")]
        self.names = ("a", "b")
""",
            note="trap: a list of non-module things",
        ),
        Example(
            """
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.blocks = [self.a, self.b]
        self.teacher = [teacher_model]
""",
            note="trap: modules also registered elsewhere (or kept out of the model on purpose, e.g. a frozen teacher)",
        ),
        Example(
            """
import torch.nn as nn

class PredictionBlock(nn.Module):
    def __init__(self, in_dim, out_dim, activation):
        super().__init__()
        self.layers = [nn.Linear(in_dim, out_dim), activation]
        # Maintain submodule indexing as if part of a Sequential block
        for i, layer in enumerate(self.layers):
            self.add_module(str(i), layer)
""",
            note="trap: each element registered with add_module (transformers' MaskFormer)",
        ),
        Example(
            """
import torch.nn as nn

class Config:
    def __init__(self):
        self.layers = [nn.Linear(4, 4)]
""",
            note="not an nn.Module: nothing to register into",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        index = script_model(self.context).index
        for name in index.module_classes:
            self._check_class(index.classes[name], index.module_classes)

    def _check_class(self, cls: cst.ClassDef, module_classes: frozenset[str]) -> None:
        assigned: dict[str, list[cst.Assign]] = {}
        appended: set[str] = set()
        wrapped: set[str] = set()
        for node in descendants(cls.body):
            if isinstance(node, cst.Assign) and isinstance(target := node.targets[0].target, cst.Subscript):
                attribute = _self_attribute(target.value)  # `self.heads[name] = nn.Linear(...)`
                if attribute and self._kind(node.value, module_classes):
                    appended.add(attribute)
            elif isinstance(node, cst.Assign) and len(node.targets) == 1:
                attribute = _self_attribute(node.targets[0].target)
                if attribute:
                    assigned.setdefault(attribute, []).append(node)
                    if isinstance(node.value, cst.Call) and (dotted_name(node.value.func) or "").endswith(_WRAPPERS):
                        wrapped.add(attribute)
            elif isinstance(node, cst.For) and _registers_each(node):
                wrapped.update(a for n in descendants(node.iter) if (a := _self_attribute(n)))
            elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.args:
                if node.func.attr.value in _REGISTERS or node.func.attr.value.endswith(_WRAPPERS):
                    wrapped.update(a for n in descendants(node) if (a := _self_attribute(n)))
                elif node.func.attr.value in ("append", "extend", "insert", "update"):
                    attribute = _self_attribute(node.func.value)
                    added = node.args[-1].value
                    if attribute and any(self._kind(n, module_classes) for n in [added, *_constructions(added)]):
                        appended.add(attribute)
        for attribute, assignments in assigned.items():
            if attribute in wrapped:
                continue
            for assignment in assignments:
                value = assignment.value
                kinds = {self._kind(n, module_classes) for n in _constructions(value)} - {None}
                if not kinds and attribute in appended and _is_empty_container(value):
                    kinds = {"module"}
                if kinds:
                    fix = "nn.ModuleDict" if isinstance(value, (cst.Dict, cst.DictComp)) else "nn.ModuleList"
                    if kinds == {"parameter"}:
                        fix = fix.replace("Module", "Parameter")
                    self.report(
                        assignment,
                        f"`self.{attribute}` holds {'parameters' if kinds == {'parameter'} else 'layers'} in a plain "
                        f"container, so they are not registered: not in parameters() (never trained), state_dict() "
                        f"or .to(device); use `{fix}`",
                        facts={"attribute": attribute},
                    )

    def _kind(self, node: cst.CSTNode, module_classes: frozenset[str]) -> str | None:
        """"module" / "parameter" for a call constructing one (torch.nn classes, the file's own modules)."""
        if not isinstance(node, cst.Call):
            return None
        name = self.context.call_name(node) or dotted_name(node.func) or ""
        last = name.rsplit(".", 1)[-1]
        if name.startswith("torch.nn.") and name.count(".") == 2 and last[:1].isupper():
            return "parameter" if last == "Parameter" else None if last in _NOT_MODULES else "module"
        return "module" if name in module_classes else None

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Modules (and parameters) held in the attribute's container but missing from the model's own."""
        from nnlint.confirm.structure import instances_at, unregistered_in

        attribute = (finding.facts or {}).get("attribute")
        models = session.models_covering(finding.path, finding.line)
        if not models or not attribute:
            return unverifiable(session.why_uncovered(finding.path, finding.line))
        model = models[0]
        holders = instances_at(model.probe.module, finding.path, finding.line)
        found = [unregistered_in(model.probe.module, holder, attribute) for holder in holders]
        modules = [name for names, _ in found for name in names]
        parameters = sum(count for _, count in found)
        data = {"model": model.name, "unregistered": modules, "parameters": parameters}
        if not holders:
            return unverifiable(f"no instance of the class at line {finding.line} in {model.name}", **data)
        if not modules:
            return refuted(f"everything in `self.{attribute}` of {model.name} is registered", **data)
        return confirmed(
            f"{len(modules)} object(s) in `self.{attribute}` of {model.name} are not registered "
            f"({listed(modules)}): {parameters:,} parameters missing from {model.name}.parameters()",
            **data,
        )


def _registers_each(loop: cst.For) -> bool:
    """`for i, layer in enumerate(self.layers): self.add_module(str(i), layer)`: the list's layers are registered."""
    return any(
        isinstance(n, cst.Call) and (dotted_name(n.func) or "").rsplit(".", 1)[-1] in (*_REGISTERS, "setattr")
        for n in descendants(loop.body)
    )


def _self_attribute(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Attribute) and dotted_name(node.value) == "self":
        return node.attr.value
    return None


def _constructions(value: cst.BaseExpression) -> list[cst.CSTNode]:
    """The elements a container literal or comprehension builds (a dict's values); `[...] * n` too."""
    if isinstance(value, cst.BinaryOperation):
        value = value.left
    if isinstance(value, (cst.List, cst.Tuple)):
        return [e.value for e in value.elements if not isinstance(e, cst.StarredElement)]
    if isinstance(value, cst.Dict):
        return [e.value for e in value.elements if isinstance(e, cst.DictElement)]
    if isinstance(value, cst.ListComp):
        return [value.elt]
    if isinstance(value, cst.DictComp):
        return [value.value]
    if isinstance(value, cst.Call) and dotted_name(value.func) in ("list", "tuple", "dict") and value.args:
        inner = value.args[0].value
        return [inner.elt] if isinstance(inner, cst.GeneratorExp) else _constructions(inner)
    return []


def _is_empty_container(value: cst.BaseExpression) -> bool:
    if isinstance(value, (cst.List, cst.Tuple, cst.Dict)):
        return not value.elements
    return isinstance(value, cst.Call) and dotted_name(value.func) in ("list", "dict") and not value.args
