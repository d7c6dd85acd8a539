"""The numbers a script gives its names and settings, read from the source, never by running it.

A setting is any place that gives a name a value: `epochs = 20`, `parser.add_argument("--epochs",
default=20)` (its dest), `{"epochs": 20}`, `cfg["epochs"] = 20`, `dict(epochs=20)`,
`Trainer(max_epochs=20)`, `def train(epochs=20)`, a dataclass field `epochs: int = 20`.
`Constants.value(expr, function)` folds an expression read in `function` to a number (or a list of
numbers) when every setting it may read agrees, and to None when the source does not say (a value
read from a YAML file, an argument with no default, two settings that disagree).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Union

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.index import FileIndex
from nnlint.tree import child_nodes

Number = Union[int, float]
Scope = Union[cst.FunctionDef, cst.Module]

# How code reads a value: (form, name, where). `epochs` in function f: (NAME, "epochs", f);
# `args.epochs`: (ATTRIBUTE, "epochs", None); `cfg["epochs"]`: (ITEM, "epochs", "cfg").
NAME, ATTRIBUTE, ITEM = "name", "attribute", "item"
Read = tuple[str, str, object]
_ANY_ATTRIBUTE = (ATTRIBUTE, None)
_ARGUMENT_DECLARATIONS = ("add_argument", "option")  # argparse, click
_ARITHMETIC = {
    cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
    cst.Divide: operator.truediv, cst.FloorDivide: operator.floordiv, cst.Power: operator.pow,
}  # fmt: skip
_LARGEST_EXPONENT = 1000
_CONVERSIONS = {"int": int, "round": round}


@dataclass(frozen=True)
class Setting:
    """A place where the file gives a name a value.

    `answers` holds the (form, where) of the reads it answers: a local `epoch = 0` in one function says
    nothing about `epoch` in another, nor about `cfg["epoch"]`; any attribute `.epochs` is taken to be
    the one option, field or keyword of that name (the file's other settings must agree).
    """

    value: cst.BaseExpression
    origin: cst.CSTNode
    answers: frozenset[tuple[str, object]]
    scope: Scope  # where the names in `value` are read
    label: str | None = None  # how to name it in a message, when its code would not read well


def written(module: cst.Module, node: cst.CSTNode) -> str:
    """The code of a node on one line, without the comma an argument or dict entry carries."""
    return " ".join(module.code_for_node(node).split()).rstrip(",").strip()


class Constants:
    def __init__(self, index: FileIndex) -> None:
        self.index = index
        self.context = index.context
        self.module = index.context.module
        self.settings: dict[str, list[Setting]] = {}
        self.dicts: list[tuple[cst.Dict, cst.FunctionDef | None]] = []  # dict literals, where they are built
        # `x ** y` outside lambdas, where they are computed: the decays written by hand that `schedules` reads.
        self.powers: list[tuple[cst.BinaryOperation, cst.FunctionDef | None]] = []
        containers = self._read(self.module)
        for functions in index.functions.values():
            for function in functions:
                for param in [*function.params.posonly_params, *function.params.params, *function.params.kwonly_params]:
                    if param.default is not None:
                        self._bind(param.name.value, Setting(param.default, param, frozenset({(NAME, function)}), function))
        for call, function in index.calls:
            self._read_call(call, function or self.module, containers.get(call))

    # -- reading the file -------------------------------------------------------------------

    def _read(self, module: cst.Module) -> dict[cst.CSTNode, str]:
        """One walk, knowing each node's function (None at module level) and owner (the innermost function
        or class: a class body's assignments are fields). Returns the name each dict literal or `dict(...)`
        call is assigned to."""
        containers: dict[cst.CSTNode, str] = {}  # a dict literal or `dict(...)` call -> the name assigned it
        stack: list[tuple[cst.CSTNode, cst.FunctionDef | None, cst.CSTNode | None]] = [(module, None, None)]
        while stack:
            node, function, owner = stack.pop()
            kind = type(node)
            if kind is cst.Assign or kind is cst.AnnAssign:
                if node.value is not None:
                    self._read_assignment(node, function or module, owner, containers)
            elif kind is cst.Dict:
                self.dicts.append((node, function))
                self._read_dict(node, function or module, containers.get(node))
            elif kind is cst.BinaryOperation and type(node.operator) is cst.Power:
                self.powers.append((node, function))
            elif kind is cst.Lambda:
                continue
            elif kind is cst.FunctionDef:
                function = owner = node
            elif kind is cst.ClassDef:
                owner = node
            stack.extend((child, function, owner) for child in child_nodes(node))
        return containers

    def _bind(self, key: str, setting: Setting) -> None:
        self.settings.setdefault(key, []).append(setting)

    def _read_assignment(self, node: cst.Assign | cst.AnnAssign, scope: Scope, owner, containers: dict) -> None:
        targets = [target.target for target in node.targets] if isinstance(node, cst.Assign) else [node.target]
        for target in targets:
            if isinstance(target, cst.Name):
                # A class field (`epochs: int = 20` in a dataclass) is read as `cfg.epochs`.
                answers = _ANY_ATTRIBUTE if isinstance(owner, cst.ClassDef) else (NAME, scope)
                self._bind(target.value, Setting(node.value, node, frozenset({answers}), scope))
            elif isinstance(target, cst.Attribute):
                self._bind(target.attr.value, Setting(node.value, node, frozenset({_ANY_ATTRIBUTE}), scope))
            elif isinstance(target, cst.Subscript) and _item_key(target) is not None:
                answers = frozenset({(ITEM, dotted_name(target.value))})
                self._bind(_item_key(target), Setting(node.value, node, answers, scope))
            if len(targets) == 1 and dotted_name(target) is not None:
                containers[node.value] = dotted_name(target)

    def _read_dict(self, dictionary: cst.Dict, scope: Scope, container: str | None) -> None:
        answers = frozenset({(ITEM, container)} if container else ())
        for element in dictionary.elements:
            if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
                self._bind(element.key.raw_value, Setting(element.value, element, answers, scope))

    def _read_call(self, call: cst.Call, scope: Scope, container: str | None) -> None:
        # `Config(epochs=20).epochs`, `Trainer(max_epochs=20)`; `cfg = dict(epochs=20)` also gives `cfg["epochs"]`.
        answers = {_ANY_ATTRIBUTE}
        if container is not None and callee_name(call) == "dict":
            answers.add((ITEM, container))
        for arg in call.args:
            if arg.keyword is not None:
                self._bind(arg.keyword.value, Setting(arg.value, arg, frozenset(answers), scope))
        if callee_name(call) in _ARGUMENT_DECLARATIONS:
            self._read_argument_declaration(call, scope)

    def _read_argument_declaration(self, call: cst.Call, scope: Scope) -> None:
        """`parser.add_argument("--lr-step-size", default=30)` binds `lr_step_size` (its argparse dest) to 30."""
        options = [
            arg.value.raw_value
            for arg in call.args
            if arg.keyword is None and isinstance(arg.value, cst.SimpleString) and arg.value.raw_value.startswith("-")
        ]
        keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
        long_options = [option for option in options if option.startswith("--")] or options
        if "default" not in keywords or not long_options:
            return
        dest = keywords.get("dest")
        name = dest.raw_value if isinstance(dest, cst.SimpleString) else long_options[0].lstrip("-").replace("-", "_")
        label = f"`{long_options[0]}` default {self.code(keywords['default'])}"
        self._bind(name, Setting(keywords["default"], call, frozenset({_ANY_ATTRIBUTE}), scope, label))

    # -- values ------------------------------------------------------------------------------

    def value(self, expr: cst.BaseExpression, function: cst.FunctionDef | None) -> Number | list | None:
        """The number (or list of numbers) an expression read in `function` stands for, or None."""
        found = self.evaluate(expr, function)
        return None if found is None else found[0]

    def evaluate(self, expr: cst.BaseExpression, function: cst.FunctionDef | None) -> tuple[object, Setting | None] | None:
        """(value, the one setting it came from, if one): the setting names the origin in messages."""
        return self._evaluate(expr, function or self.module, frozenset())

    def agreed(self, key: str) -> tuple[object, Setting] | None:
        """The value every setting of `key` in the file agrees on (`epochs` anywhere, in any form)."""
        return self._lookup(key, None, frozenset())

    def _evaluate(self, expr: cst.BaseExpression, scope: Scope, seen: frozenset) -> tuple[object, Setting | None] | None:
        if isinstance(expr, (cst.Integer, cst.Float)):
            return expr.evaluated_value, None
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            inner = self._evaluate(expr.expression, scope, seen)
            return None if inner is None or not isinstance(inner[0], (int, float)) else (-inner[0], inner[1])
        if isinstance(expr, (cst.List, cst.Tuple)):
            items = [self._evaluate(element.value, scope, seen) for element in expr.elements]
            return None if None in items else ([item[0] for item in items], None)
        if isinstance(expr, cst.BinaryOperation) and type(expr.operator) in _ARITHMETIC:
            return self._arithmetic(expr, scope, seen)
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in _CONVERSIONS:
            inner = self._evaluate(expr.args[0].value, scope, seen) if len(expr.args) == 1 else None
            if inner is None or not isinstance(inner[0], (int, float)):
                return None
            try:
                return _CONVERSIONS[expr.func.value](inner[0]), inner[1]
            except (ArithmeticError, ValueError):  # int(float("inf"))
                return None
        read = self.read_of(expr, scope)
        if read is None or read in seen:
            return None
        return self._lookup(read[1], read, seen | {read})

    def _arithmetic(self, expr: cst.BinaryOperation, scope: Scope, seen: frozenset):
        left, right = self._evaluate(expr.left, scope, seen), self._evaluate(expr.right, scope, seen)
        if left is None or right is None or not all(isinstance(side[0], (int, float)) for side in (left, right)):
            return None
        if isinstance(expr.operator, cst.Power) and abs(right[0]) > _LARGEST_EXPONENT:
            return None  # `10 ** 10 ** 9` in a hostile file must not hang the linter
        try:
            result = _ARITHMETIC[type(expr.operator)](left[0], right[0])
        except (ArithmeticError, ValueError):
            return None
        return result, left[1] or right[1]

    def read_of(self, expr: cst.BaseExpression, scope: Scope) -> Read | None:
        """How an expression read in `scope` reads a setting: `epochs`, `args.epochs`, `cfg["epochs"]`."""
        if isinstance(expr, cst.Name):
            return NAME, expr.value, scope
        if isinstance(expr, cst.Attribute):
            return ATTRIBUTE, expr.attr.value, None
        if isinstance(expr, cst.Subscript) and _item_key(expr) is not None:
            return ITEM, _item_key(expr), dotted_name(expr.value)
        return None

    def answering(self, key: str, read: Read | None) -> list[Setting]:
        """The settings that answer `read` (all settings of `key` when None); a name its function does not
        bind at all (no parameter, loop variable or assignment of that name) is read from the globals."""
        settings = self.settings.get(key, [])
        if read is None:
            return settings
        form, _, where = read
        found = [setting for setting in settings if (form, where) in setting.answers]
        if not found and form == NAME and where is not self.module and not self.index.bindings.get((where, key)):
            found = [setting for setting in settings if (NAME, self.module) in setting.answers]
        return found

    def _lookup(self, key: str, read: Read | None, seen: frozenset) -> tuple[object, Setting] | None:
        """The value every setting answering `read` agrees on; None if any disagrees or is unknown."""
        values = []
        for setting in self.answering(key, read):
            if self.read_of(setting.value, setting.scope) in seen:
                continue  # `train(epochs=args.epochs)` while reading `args.epochs`: an alias, not a value
            found = self._evaluate(setting.value, setting.scope, seen)
            if found is None:
                return None
            values.append((found[0], found[1] or setting))
        if not values or any(value != values[0][0] for value, _ in values):
            return None
        return values[0]

    def code(self, node: cst.CSTNode) -> str:
        return written(self.module, node)


def callee_name(call: cst.Call) -> str | None:
    """`f` for `f(...)`, `obj.f(...)`; the last name of the function called."""
    if isinstance(call.func, cst.Name):
        return call.func.value
    if isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    return None


def _item_key(expr: cst.Subscript) -> str | None:
    """"epochs" for `cfg["epochs"]`."""
    if len(expr.slice) == 1:
        index = expr.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            return index.value.raw_value
    return None
