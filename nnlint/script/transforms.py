"""What an image transform pipeline does to its images, read from the file (NN604, NN605).

- `assigned_values(script, name, function, at)`: the values `name = value` statements above a read give
  the name (a pipeline, a `mean` list, a weights enum), through the index's scopes;
- `converts(call, step)`: a torchvision step that turns images into float tensors in [0, 1];
- `judge(script, expr, function, at)`: whether a pipeline (inline, through a variable, a dict of pipelines
  indexed by split, `Compose`/`RandomApply` nesting) normalises: NORMALISED, UNKNOWN (a `Lambda`, another
  library's step, a parameter the caller fills), or the converting calls of a pipeline that never does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import libcst as cst

from nnlint.names import dotted_name
from nnlint.tree import source_code

if TYPE_CHECKING:
    from nnlint.script import Script

NORMALISED, UNKNOWN = "normalised", "unknown"
NORMALIZE = re.compile(r"normali[sz]e", re.IGNORECASE)
_MAX_DEPTH = 4


def assigned_values(script: Script, name: str, function, at: cst.CSTNode) -> list[cst.BaseExpression]:
    """Every value a plain `name = value` gives `name` on or above the line of `at` (all of them: a name
    bound twice is a choice between pipelines). Not parameters, loop targets or tuple unpacking."""
    if not name:
        return []
    bindings = [
        b for b in script.index.lookup(name, function)
        if isinstance(b.node, cst.Assign) and any(dotted_name(t.target) == name for t in b.node.targets)
    ]  # fmt: skip
    if not bindings:
        return []
    line = script.line(at)
    return [b.value for b in bindings if script.line(b.node) <= line]


def is_parameter(script: Script, name: str, function) -> bool:
    """`def get_loaders(train_transforms=None)`: the caller decides what the name holds."""
    return function is not None and any(
        isinstance(b.node, cst.Param) and b.scope is function for b in script.index.lookup(name, function)
    )


def converts(call: cst.Call, step: str) -> bool:
    """ToTensor, ConvertImageDtype, or v2's ToDtype(..., scale=True): images become floats in [0, 1]."""
    if step in ("ToTensor", "ConvertImageDtype"):
        return True
    return step == "ToDtype" and any(
        arg.keyword and arg.keyword.value == "scale" and source_code(arg.value) == "True" for arg in call.args
    )


def judge(script: Script, expr: cst.BaseExpression, function, at: cst.CSTNode, depth: int = 0) -> str | list[cst.Call]:
    """NORMALISED, UNKNOWN, or the calls that convert to [0, 1] tensors in a pipeline that never normalises
    (an empty list: it does not convert)."""
    if depth > _MAX_DEPTH:
        return UNKNOWN
    if isinstance(expr, cst.Subscript):  # `data_transforms["train"]`, `data_transforms[x]`
        options = _dict_values(script, expr, function, at)
        if options is None:
            return UNKNOWN
        return _combine([judge(script, option, function, at, depth + 1) for option in options])
    if isinstance(expr, (cst.Name, cst.Attribute)):
        if isinstance(expr, cst.Name) and is_parameter(script, expr.value, function):
            return UNKNOWN
        values = assigned_values(script, dotted_name(expr) or "", function, at)
        if not values:
            return UNKNOWN
        return _combine([judge(script, value, function, at, depth + 1) for value in values])
    if not isinstance(expr, cst.Call):
        return UNKNOWN
    qualified = script.context.call_name(expr) or ""
    step = qualified.rsplit(".", 1)[-1]
    if NORMALIZE.search(qualified or dotted_name(expr.func) or ""):
        return NORMALISED
    if not qualified.startswith("torchvision.transforms.") or step == "Lambda":
        return UNKNOWN
    if converts(expr, step):
        return [expr]
    if step in ("Compose", "RandomApply", "RandomChoice", "RandomOrder") and expr.args:
        steps = expr.args[0].value
        if not isinstance(steps, (cst.List, cst.Tuple)):
            return UNKNOWN
        verdicts = [judge(script, element.value, function, at, depth + 1) for element in steps.elements]
        return _combine(verdicts, every=True)
    return []


def _dict_values(script: Script, subscript: cst.Subscript, function, at) -> list[cst.BaseExpression] | None:
    """The pipelines a subscript may pick from a dict literal bound in this file (all of them for `d[x]`)."""
    bound = assigned_values(script, dotted_name(subscript.value) or "", function, at)
    if len(bound) != 1 or not isinstance(bound[0], cst.Dict):
        return None
    index = subscript.slice[0].slice if len(subscript.slice) == 1 else None
    key = index.value if isinstance(index, cst.Index) else None
    elements = [element for element in bound[0].elements if isinstance(element, cst.DictElement)]
    if isinstance(key, cst.SimpleString):
        chosen = [
            element.value
            for element in elements
            if isinstance(element.key, cst.SimpleString) and element.key.evaluated_value == key.evaluated_value
        ]
        return chosen or None
    return [element.value for element in elements]


def _combine(verdicts: list, every: bool = False) -> str | list[cst.Call]:
    """Steps of one pipeline (`every`): normalised if any step is. Alternatives (a name bound twice, a dict
    of pipelines): raw ones are reported even beside normalised ones. Anything unknown: not judged."""
    if every and NORMALISED in verdicts:
        return NORMALISED
    if UNKNOWN in verdicts:
        return UNKNOWN
    if every or all(verdict != NORMALISED for verdict in verdicts):
        return [call for verdict in verdicts for call in verdict]
    return [call for verdict in verdicts if verdict != NORMALISED for call in verdict] or NORMALISED
