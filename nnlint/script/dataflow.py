"""Where a tensor's value comes from within a function: a model's output, data, or a value cut off the graph.

`origins(expr, function)` follows names back through every assignment to them in the function (and
the module, for scripts), through arithmetic, losses, torch functions and tensor methods, and stops at:
- a call of a model (`model(x)`, `self.net(x)`): LIVE, gradients reach its parameters;
- `.detach()`, `.data`, `.item()`, `.numpy()`, `.tolist()`, or a re-wrap (`torch.tensor(out)`): CUT;
- literals and loop targets over data (`for x, y in loader`): DATA;
- parameters and names the file does not bind: OPAQUE (they say nothing either way);
- calls of anything else (a helper that may run a model): UNKNOWN.
It never decides on its own; rules read the set (NN508 wants CUT without LIVE or UNKNOWN).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.index import FileIndex
from nnlint.script.roles import CRITERION, LOADER, MODEL, Roles

LIVE, CUT, DATA, OPAQUE, UNKNOWN = "live", "cut", "data", "opaque", "unknown"
_CUT_METHODS = {"detach": ".detach()", "item": ".item()", "numpy": ".numpy()", "tolist": ".tolist()"}
_REWRAPS = frozenset(
    {"torch.tensor", "torch.Tensor", "torch.FloatTensor", "torch.DoubleTensor", "torch.LongTensor",
     "torch.cuda.FloatTensor", "torch.from_numpy", "numpy.array", "numpy.asarray", "float", "int"}
)  # fmt: skip
# Calls whose result carries the graph of their arguments: torch's functions and tensor methods, losses.
_PROPAGATING_PREFIXES = ("torch.", "math.")


@dataclass(frozen=True)
class Origin:
    kind: str
    node: cst.CSTNode
    how: str = ""  # for CUT: what cut it (".detach()", "torch.tensor(...) re-wrap")


class DataFlow:
    def __init__(self, index: FileIndex, roles: Roles) -> None:
        self.index = index
        self.roles = roles
        self.context = index.context

    def origins(self, expr: cst.BaseExpression, function: cst.FunctionDef | None) -> set[Origin]:
        found: set[Origin] = set()
        self._trace(expr, function, found, set())
        return found

    def _trace(self, expr: cst.CSTNode, function, found: set[Origin], seen: set) -> None:
        if isinstance(expr, (cst.Integer, cst.Float, cst.SimpleString, cst.FormattedString)):
            found.add(Origin(DATA, expr))
        elif isinstance(expr, cst.Name) and expr.value in ("True", "False", "None"):
            found.add(Origin(DATA, expr))
        elif isinstance(expr, cst.Name):
            self._trace_name(expr.value, expr, function, found, seen)
        elif isinstance(expr, cst.Attribute):
            if expr.attr.value == "data":
                self._cut(expr.value, expr, ".data", function, found, seen)
            elif dotted_name(expr) is not None and dotted_name(expr).startswith("self."):
                self._trace_name(dotted_name(expr), expr, function, found, seen)
            else:
                self._trace(expr.value, function, found, seen)
        elif isinstance(expr, cst.Call):
            self._trace_call(expr, function, found, seen)
        elif isinstance(expr, cst.Subscript):
            self._trace(expr.value, function, found, seen)
        elif isinstance(expr, cst.BinaryOperation):
            self._trace(expr.left, function, found, seen)
            self._trace(expr.right, function, found, seen)
        elif isinstance(expr, cst.UnaryOperation):
            self._trace(expr.expression, function, found, seen)
        elif isinstance(expr, (cst.Tuple, cst.List)):
            for element in expr.elements:
                self._trace(element.value, function, found, seen)
        elif isinstance(expr, cst.IfExp):
            self._trace(expr.body, function, found, seen)
            self._trace(expr.orelse, function, found, seen)
        else:
            found.add(Origin(UNKNOWN, expr))

    def _trace_name(self, name: str, node: cst.CSTNode, function, found: set[Origin], seen: set) -> None:
        if (name, function) in seen:
            return
        seen.add((name, function))
        bindings = self.index.lookup(name, function)
        if not bindings:
            found.add(Origin(OPAQUE, node))
        for binding in bindings:
            if binding.value is not None:
                self._trace(binding.value, function, found, seen)
            elif isinstance(binding.node, cst.For) and self._iterates_data(binding.node, function):
                found.add(Origin(DATA, binding.node))
            else:
                found.add(Origin(OPAQUE, binding.node))

    def _trace_call(self, call: cst.Call, function, found: set[Origin], seen: set) -> None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in _CUT_METHODS:
            self._cut(func.value, call, _CUT_METHODS[func.attr.value], function, found, seen)
            return
        qualified = self.context.call_name(call) or ""
        if (qualified in _REWRAPS or qualified == "torch.autograd.Variable" and _passes_data(call)) and call.args:
            self._cut(call.args[0].value, call, f"{dotted_name(func)}(...) re-wrap", function, found, seen)
            return
        if qualified == "torch.autograd.Variable":  # a no-op wrapper: the graph goes through it
            self._trace_arguments(call, function, found, seen)
            return
        role = self.roles.of(func, function) if dotted_name(func) else None
        if role is not None and role.role == MODEL:
            found.add(Origin(LIVE, call))
            return
        if isinstance(func, cst.Attribute) and not qualified:
            # A tensor method (`out.mean()`, `loss.float()`, `logits.view(-1)`) keeps the receiver's graph.
            self._trace(func.value, function, found, seen)
            self._trace_arguments(call, function, found, seen)
            return
        if qualified.startswith(_PROPAGATING_PREFIXES) or (role is not None and role.role == CRITERION):
            self._trace_arguments(call, function, found, seen)
            return
        found.add(Origin(UNKNOWN, call))
        self._trace_arguments(call, function, found, seen)

    def _cut(self, value, node, how: str, function, found: set[Origin], seen: set) -> None:
        """A cut matters only when what it cuts comes from a model: `y.detach()` of data is still data."""
        inner: set[Origin] = set()
        self._trace(value, function, inner, set(seen))
        found.add(Origin(CUT, node, how) if any(o.kind in (LIVE, CUT) for o in inner) else Origin(DATA, node))

    def _trace_arguments(self, call: cst.Call, function, found: set[Origin], seen: set) -> None:
        for arg in call.args:
            self._trace(arg.value, function, found, seen)

    def _iterates_data(self, loop: cst.For, function) -> bool:
        """`for x, y in loader`, `enumerate(loader)`, `tqdm(loader)`: the targets are data."""
        iterable = loop.iter
        while isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("enumerate", "tqdm", "tqdm.tqdm", "zip"):
            if not iterable.args:
                return False
            iterable = iterable.args[0].value
        return self.roles.is_(iterable, function, LOADER) if dotted_name(iterable) else False


def _passes_data(call: cst.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0].value, cst.Attribute) and call.args[0].value.attr.value == "data"

