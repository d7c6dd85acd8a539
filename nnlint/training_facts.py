"""Facts about a training script that the learning-rate rules share.

NN401 (the ImageNet schedule copied into a run of another length) and NN402
(an epoch-based scheduler stepped every batch) both need to know how long the
script trains, which loop runs over epochs and which over batches, and which
variable holds which scheduler with which arguments. `training_facts()`
computes them once per file, on demand, when a rule asks at the end of the
traversal: only files that mention a scheduler pay for the extra walk.

Everything here is a reading of the source, never an execution of it; when
the source does not say (a length read from a YAML file, a scheduler built in
another module) the answer is None, and the rules stay silent.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Union

import libcst as cst

from nnlint.context import FileContext
from nnlint.names import dotted_name
from nnlint.tree import walk_with_ancestors

Number = Union[int, float]
Scope = Union[cst.FunctionDef, cst.ClassDef, cst.Module]

_SCHEDULER_MODULE = "torch.optim.lr_scheduler."
# Positional parameters after the optimizer, and defaults, of the schedulers whose
# arguments the rules read (torch.optim.lr_scheduler signatures).
_PARAMETERS = {
    "StepLR": ("step_size", "gamma"),
    "MultiStepLR": ("milestones", "gamma"),
    "ExponentialLR": ("gamma",),
    "CosineAnnealingLR": ("T_max", "eta_min"),
    "LambdaLR": ("lr_lambda",),
}
_DEFAULTS = {"StepLR": {"gamma": 0.1}, "MultiStepLR": {"gamma": 0.1}}

# Names that hold the number of epochs of the run (not warmup, start or decay epochs).
EPOCH_COUNT_NAMES = frozenset(
    {
        "epochs", "num_epochs", "n_epochs", "nb_epochs", "max_epochs", "total_epochs", "train_epochs",
        "num_train_epochs", "training_epochs", "epoch_num", "num_epoch", "n_epoch", "max_epoch", "epochs_num",
    }
)  # fmt: skip
# Words in a name that count optimizer steps rather than epochs (`step_size` is
# StepLR's own parameter name and says nothing, so a lone "step" is not here).
_STEP_WORDS = frozenset({"steps", "iter", "iters", "iteration", "iterations", "batches", "updates", "total"})
_ARGUMENT_DECLARATIONS = ("add_argument", "option")  # argparse, click
_RANGE_WRAPPERS = ("tqdm", "enumerate", "iter")
_WORD = re.compile(r"[a-z]+")
# `train_iter`, `data_iter` (d2l's name for a DataLoader), not `max_iter`, `num_iter` (counts).
_ITERATOR_NAME = re.compile(r"(?!(?:max|num|n|nb|total)_iter$)\w+_iter")
_ARITHMETIC = {
    cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
    cst.Divide: operator.truediv, cst.FloorDivide: operator.floordiv, cst.Power: operator.pow,
}  # fmt: skip
_LARGEST_EXPONENT = 1000
_CONVERSIONS = {"int": int, "round": round}


# How code reads a value: (form, name, where). `epochs` in function f: (NAME, "epochs", f);
# `args.epochs`: (ATTRIBUTE, "epochs", None); `cfg["epochs"]`: (ITEM, "epochs", "cfg").
NAME, ATTRIBUTE, ITEM = "name", "attribute", "item"
Read = tuple[str, str, object]
_ANY_ATTRIBUTE = (ATTRIBUTE, None)


@dataclass(frozen=True)
class Binding:
    """A place where the file gives a name a value: `epochs = 20`, `add_argument("--epochs", default=20)`,
    `{"epochs": 20}`, `Trainer(max_epochs=20)`, `def train(epochs=20)`.

    `answers` holds the (form, where) of the reads it answers: a local `epoch = 0` in one function says
    nothing about `epoch` in another, nor about `cfg["epoch"]`; any attribute `.epochs` is taken to be
    the one option, field or keyword of that name (the file's other bindings must agree).
    """

    value: cst.BaseExpression
    origin: cst.CSTNode
    answers: frozenset[tuple[str, object]]
    label: str | None = None  # how to name it in a message, when its code would not read well


@dataclass(frozen=True)
class TrainingLength:
    epochs: int
    origin: str  # e.g. "`range(20)`", "`--epochs` default 20"
    origin_node: cst.CSTNode


@dataclass(frozen=True)
class StepContext:
    """Where a scheduler step (or a hand-written decay) runs: once per batch, once per epoch, or unknown."""

    stepping: str | None  # "per batch", "per epoch" or None
    epoch_loop: cst.For | cst.While | None = None
    batch_loop: cst.For | None = None


@dataclass(frozen=True)
class SchedulerStep:
    call: cst.Call  # `scheduler.step(...)`
    where: StepContext


@dataclass
class Scheduler:
    kind: str  # "StepLR", ...
    call: cst.Call
    arguments: dict[str, cst.BaseExpression]  # by torch parameter name; the optimizer left out
    variable: str | None  # "scheduler", "self.scheduler"; None when built inline (e.g. returned)
    scope: Scope
    # The variable is bound to something else too in its scope (`if ...: s = StepLR(...) else: s = OneCycleLR(...)`).
    rebound: bool = False
    steps: list[SchedulerStep] = field(default_factory=list)
    # Lightning's `{"scheduler": s, "interval": "step"}` steps it every optimizer step, by the author's choice.
    interval: str | None = None


@dataclass(frozen=True)
class PeriodicDecay:
    """`gamma ** (counter // period)`: the ImageNet decay written by hand or in a LambdaLR lambda."""

    node: cst.BinaryOperation
    gamma: Number
    period: int
    period_written: cst.BaseExpression  # `30`, `args.lr_step`
    counter: str  # the code of the counter, e.g. "epoch"


def _names(expr: cst.CSTNode) -> list[str]:
    """Lower-cased identifiers and string keys in an expression: `args.lr_step_size` -> ["args", "lr_step_size"]."""
    found = []
    for node, _ in walk_with_ancestors(expr, []):
        if isinstance(node, cst.Name):
            found.append(node.value.lower())
        elif isinstance(node, cst.SimpleString):
            found.append(node.raw_value.lower())
    return found


def _calls_len(expr: cst.CSTNode) -> bool:
    return any(
        isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "len"
        for node, _ in walk_with_ancestors(expr, [])
    )


def _callee_name(call: cst.Call) -> str | None:
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


def _assigned_to(value: cst.CSTNode, ancestors: list[cst.CSTNode]) -> str | None:
    """`cfg` when `value` is the whole right-hand side of `cfg = value`, found from its ancestors."""
    if len(ancestors) < 2:
        return None
    statement = ancestors[-2] if ancestors[-1] is value else ancestors[-1]
    if isinstance(statement, cst.Assign) and statement.value is value and len(statement.targets) == 1:
        return dotted_name(statement.targets[0].target)
    if isinstance(statement, cst.AnnAssign) and statement.value is value:
        return dotted_name(statement.target)
    return None


def _innermost(ancestors: list[cst.CSTNode], types) -> cst.CSTNode | None:
    return next((node for node in reversed(ancestors) if isinstance(node, types)), None)


def _in_test(ancestors: list[cst.CSTNode]) -> bool:
    """Inside a `test_...` function: a unit test steps a scheduler for whatever length it checks; it is not
    a training run."""
    return any(isinstance(node, cst.FunctionDef) and node.name.value.startswith("test") for node in ancestors)


def _dict_entry(dictionary: cst.CSTNode, key: str) -> cst.BaseExpression | None:
    """The value under a string key of a dict literal: `{"interval": "step"}` -> `"step"`."""
    for element in getattr(dictionary, "elements", ()):
        if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
            if element.key.raw_value == key:
                return element.value
    return None


class TrainingFacts:
    """What one file says about its training run. Build with `training_facts()`."""

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self.module = context.module
        self.bindings: dict[str, list[Binding]] = {}
        self.functions: dict[str, list[cst.FunctionDef]] = {}
        self.schedulers: list[Scheduler] = []
        self.decays: list[tuple[PeriodicDecay, list[cst.CSTNode]]] = []  # hand-written, outside any lambda
        self.epoch_loops: list[cst.For | cst.While] = []
        self._calls: list[tuple[cst.Call, list[cst.CSTNode]]] = []
        self._assigned: dict[tuple[cst.CSTNode, str], int] = {}  # (scope, variable) -> how many assignments
        self._batch_loops: set[cst.For] = set()
        self._name_scopes: dict[cst.Name, cst.CSTNode] = {}  # the function (or module) each name is read in
        self._intervals: dict[object, str] = {}  # a scheduler call or (scope, variable) -> Lightning interval
        self._read(self.module)
        for scheduler in self.schedulers:
            scheduler.rebound = self._assigned.get((scheduler.scope, scheduler.variable), 0) > 1
            scheduler.steps = self._steps_of(scheduler)
            scheduler.interval = self._intervals.get(scheduler.call) or self._intervals.get(
                (scheduler.scope, scheduler.variable)
            )

    # -- reading the file -------------------------------------------------------------------

    def _read(self, module: cst.Module) -> None:
        powers = []
        for node, ancestors in walk_with_ancestors(module, []):
            if isinstance(node, cst.Call):
                self._calls.append((node, list(ancestors)))
                self._read_call(node, ancestors)
            elif isinstance(node, (cst.Assign, cst.AnnAssign)):
                self._read_assignment(node, ancestors)
            elif isinstance(node, cst.FunctionDef):
                self.functions.setdefault(node.name.value, []).append(node)
            elif isinstance(node, cst.Name):
                self._name_scopes[node] = _innermost(ancestors, cst.FunctionDef) or module
            elif isinstance(node, cst.Param) and node.default is not None:
                function = ancestors[-2] if len(ancestors) > 1 else None  # FunctionDef > Parameters > Param
                if isinstance(function, cst.FunctionDef):
                    self._bind(node.name.value, Binding(node.default, node, frozenset({(NAME, function)})))
            elif isinstance(node, cst.DictElement) and isinstance(node.key, cst.SimpleString):
                container = _assigned_to(ancestors[-1], ancestors[:-1])
                answers = frozenset({(ITEM, container)} if container else ())
                self._bind(node.key.raw_value, Binding(node.value, node, answers))
                if node.key.raw_value == "interval" and isinstance(node.value, cst.SimpleString):
                    self._read_lightning_interval(ancestors[-1], node.value.raw_value, ancestors)
            elif isinstance(node, (cst.For, cst.While)):
                self._read_loop(node)
            elif isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Power):
                if not any(isinstance(ancestor, cst.Lambda) for ancestor in ancestors) and not _in_test(ancestors):
                    powers.append((node, list(ancestors)))
        # Decays are read last: their gamma and period may be names bound further down.
        for node, ancestors in powers:
            decay = self.periodic_decay(node)
            if decay is not None:
                self.decays.append((decay, ancestors))

    def _bind(self, key: str, binding: Binding) -> None:
        self.bindings.setdefault(key, []).append(binding)

    def _read_call(self, call: cst.Call, ancestors: list[cst.CSTNode]) -> None:
        # `Config(epochs=20).epochs`, `Trainer(max_epochs=20)`; `cfg = dict(epochs=20)` also gives `cfg["epochs"]`.
        answers = {_ANY_ATTRIBUTE}
        container = _assigned_to(call, ancestors) if _callee_name(call) == "dict" else None
        if container is not None:
            answers.add((ITEM, container))
        for arg in call.args:
            if arg.keyword is not None:
                self._bind(arg.keyword.value, Binding(arg.value, arg, frozenset(answers)))
        if _callee_name(call) in _ARGUMENT_DECLARATIONS:
            self._read_argument_declaration(call)
        qualified = self.context.call_name(call) or ""
        if qualified.startswith(_SCHEDULER_MODULE):
            self._read_scheduler(call, qualified[len(_SCHEDULER_MODULE) :], ancestors)

    def _read_argument_declaration(self, call: cst.Call) -> None:
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
        default = self.code(keywords["default"])
        label = f"`{long_options[0]}` default {default}"
        self._bind(name, Binding(keywords["default"], call, frozenset({_ANY_ATTRIBUTE}), label))

    def _read_lightning_interval(self, config: cst.CSTNode, interval: str, ancestors: list[cst.CSTNode]) -> None:
        """`{"scheduler": StepLR(...), "interval": "step"}` in `configure_optimizers`."""
        scheduler = _dict_entry(config, "scheduler")
        if isinstance(scheduler, cst.Call):
            self._intervals[scheduler] = interval
        elif scheduler is not None and dotted_name(scheduler) is not None:
            variable = dotted_name(scheduler)
            self._intervals[(self._scope(variable, ancestors), variable)] = interval

    def _read_scheduler(self, call: cst.Call, kind: str, ancestors: list[cst.CSTNode]) -> None:
        if _in_test(ancestors):
            return
        parameters = _PARAMETERS.get(kind, ())
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star][1:]
        arguments = dict(zip(parameters, positional))
        keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
        arguments.update((name, value) for name, value in keywords.items() if name != "optimizer")
        statement = ancestors[-1] if ancestors else None
        variable = None
        if isinstance(statement, cst.Assign) and statement.value is call and len(statement.targets) == 1:
            variable = dotted_name(statement.targets[0].target)
        elif isinstance(statement, cst.AnnAssign) and statement.value is call:
            variable = dotted_name(statement.target)
        self.schedulers.append(Scheduler(kind, call, arguments, variable, self._scope(variable, ancestors)))

    def _read_assignment(self, node: cst.Assign | cst.AnnAssign, ancestors: list[cst.CSTNode]) -> None:
        if node.value is None:
            return
        targets = [target.target for target in node.targets] if isinstance(node, cst.Assign) else [node.target]
        owner = _innermost(ancestors, (cst.ClassDef, cst.FunctionDef)) or self.module
        for target in targets:
            variable = dotted_name(target)
            if variable is not None:
                scope_key = (self._scope(variable, ancestors), variable)
                self._assigned[scope_key] = self._assigned.get(scope_key, 0) + 1
            if isinstance(target, cst.Name):
                # A class field (`epochs: int = 20` in a dataclass) is read as `cfg.epochs`.
                answers = _ANY_ATTRIBUTE if isinstance(owner, cst.ClassDef) else (NAME, owner)
                self._bind(target.value, Binding(node.value, node, frozenset({answers})))
            elif isinstance(target, cst.Attribute):
                self._bind(target.attr.value, Binding(node.value, node, frozenset({_ANY_ATTRIBUTE})))
            elif isinstance(target, cst.Subscript) and _item_key(target) is not None:
                answers = frozenset({(ITEM, dotted_name(target.value))})
                self._bind(_item_key(target), Binding(node.value, node, answers))

    def _read_loop(self, loop: cst.For | cst.While) -> None:
        if isinstance(loop, cst.For) and self._iterates_batches(loop):
            self._batch_loops.add(loop)
            return
        watched = (loop.target, loop.iter) if isinstance(loop, cst.For) else (loop.test,)
        if any("epoch" in name for part in watched for name in _names(part)):
            self.epoch_loops.append(loop)

    @staticmethod
    def _iterates_batches(loop: cst.For) -> bool:
        """`for x, y in train_loader`, `enumerate(tqdm(loader))`, `range(len(loader))`, `for batch in data`."""
        target_names, iter_names = _names(loop.target), _names(loop.iter)
        if any("loader" in name for name in target_names):
            return False  # iterating over the loaders themselves (`for loader in (train, val)`)
        return (
            any("loader" in name or "batches" in name or "per_epoch" in name for name in iter_names)
            or any(_ITERATOR_NAME.fullmatch(name) for name in iter_names)
            or any("batch" in name for name in target_names)
        )  # fmt: skip

    @staticmethod
    def _scope(variable: str | None, ancestors: list[cst.CSTNode]) -> Scope:
        """Where a variable lives: its class for `self.x`, else its function, else the module."""
        if variable is not None and variable.startswith("self."):
            found = _innermost(ancestors, cst.ClassDef)
        else:
            found = _innermost(ancestors, cst.FunctionDef)
        return found if found is not None else ancestors[0]

    # -- values ------------------------------------------------------------------------------

    def value(self, expr: cst.BaseExpression) -> Number | list | None:
        """The number (or list of numbers) an expression stands for, or None if the file does not say."""
        found = self._evaluate(expr, frozenset())
        return None if found is None else found[0]

    def _evaluate(self, expr: cst.BaseExpression, seen: frozenset) -> tuple[object, Binding | None] | None:
        """(value, the one binding it came from, if one) — the binding names the origin in messages."""
        if isinstance(expr, (cst.Integer, cst.Float)):
            return expr.evaluated_value, None
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            inner = self._evaluate(expr.expression, seen)
            return None if inner is None or not isinstance(inner[0], (int, float)) else (-inner[0], inner[1])
        if isinstance(expr, (cst.List, cst.Tuple)):
            items = [self._evaluate(element.value, seen) for element in expr.elements]
            return None if None in items else ([item[0] for item in items], None)
        if isinstance(expr, cst.BinaryOperation) and type(expr.operator) in _ARITHMETIC:
            left, right = self._evaluate(expr.left, seen), self._evaluate(expr.right, seen)
            if left is None or right is None or not all(isinstance(side[0], (int, float)) for side in (left, right)):
                return None
            if isinstance(expr.operator, cst.Power) and abs(right[0]) > _LARGEST_EXPONENT:
                return None  # `10 ** 10 ** 9` in a hostile file must not hang the linter
            try:
                result = _ARITHMETIC[type(expr.operator)](left[0], right[0])
            except (ArithmeticError, ValueError):
                return None
            return result, left[1] or right[1]
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in _CONVERSIONS:
            inner = self._evaluate(expr.args[0].value, seen) if len(expr.args) == 1 else None
            if inner is None or not isinstance(inner[0], (int, float)):
                return None
            try:
                return _CONVERSIONS[expr.func.value](inner[0]), inner[1]
            except (ArithmeticError, ValueError):  # int(float("inf"))
                return None
        read = self._read_of(expr)
        if read is None or read in seen:
            return None
        return self._lookup(read[1], read, seen | {read})

    def _read_of(self, expr: cst.BaseExpression) -> Read | None:
        if isinstance(expr, cst.Name):
            return NAME, expr.value, self._name_scopes.get(expr, self.module)
        if isinstance(expr, cst.Attribute):
            return ATTRIBUTE, expr.attr.value, None
        if isinstance(expr, cst.Subscript) and _item_key(expr) is not None:
            return ITEM, _item_key(expr), dotted_name(expr.value)
        return None

    def _bindings_for(self, key: str, read: Read | None) -> list[Binding]:
        """The bindings that answer `read` (all bindings of `key` when None); a name not bound in its
        function is looked up among the module's globals."""
        bindings = self.bindings.get(key, [])
        if read is None:
            return bindings
        form, _, where = read
        found = [binding for binding in bindings if (form, where) in binding.answers]
        if not found and form == NAME:
            found = [binding for binding in bindings if (NAME, self.module) in binding.answers]
        return found

    def _lookup(self, key: str, read: Read | None, seen: frozenset) -> tuple[object, Binding] | None:
        """The value every binding answering `read` agrees on; None if any disagrees or is unknown."""
        values = []
        for binding in self._bindings_for(key, read):
            if self._read_of(binding.value) in seen:
                continue  # `train(epochs=args.epochs)` while reading `args.epochs`: an alias, not a value
            found = self._evaluate(binding.value, seen)
            if found is None:
                return None
            values.append((found[0], found[1] or binding))
        if not values or any(value != values[0][0] for value, _ in values):
            return None
        return values[0]

    def looks_like_epochs(self, expr: cst.BaseExpression, length: TrainingLength | None) -> bool:
        """Does a scheduler period (step_size, milestones, T_max) count epochs rather than optimizer steps?

        Said by its name (`args.epochs`, not `total_steps` or `epochs * len(loader)`) or by its size: no run
        decays after 30 optimizer steps, so a period of at most 100 (or of at most the epoch count) is epochs.
        """
        words = {word for name in _names(expr) for word in _WORD.findall(name)}
        if _calls_len(expr) or words & _STEP_WORDS:
            return False
        value = self.value(expr)
        numbers = value if isinstance(value, list) else [value]
        if value is not None and all(isinstance(number, (int, float)) for number in numbers):
            limit = max(100, length.epochs if length else 0)
            return bool(numbers) and all(0 < number <= limit for number in numbers)
        return any("epoch" in word for word in words)

    def periodic_decay(self, expr: cst.CSTNode) -> PeriodicDecay | None:
        """`0.1 ** (epoch // 30)` -> PeriodicDecay(gamma=0.1, period=30)."""
        if not (isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Power)):
            return None
        exponent = expr.right
        if not (isinstance(exponent, cst.BinaryOperation) and isinstance(exponent.operator, cst.FloorDivide)):
            return None
        gamma, period = self.value(expr.left), self.value(exponent.right)
        if not (isinstance(gamma, (int, float)) and 0 < gamma < 1 and isinstance(period, int) and period > 0):
            return None
        return PeriodicDecay(expr, gamma, period, exponent.right, self.code(exponent.left))

    def arguments(self, scheduler: Scheduler) -> dict[str, object]:
        """The scheduler's arguments the file gives numbers for, and torch's defaults for those it
        does not write: what the runtime check rebuilds the scheduler from. An argument written
        without a number (`args.gamma`) is absent, never replaced by the default."""
        defaults = _DEFAULTS.get(scheduler.kind, {})
        resolved = {name: value for name, value in defaults.items() if name not in scheduler.arguments}
        for name, expr in scheduler.arguments.items():
            value = self.value(expr)
            if value is not None:
                resolved[name] = value
        return resolved

    def describe(self, scheduler: Scheduler, *names: str) -> str:
        """`StepLR(step_size=30, gamma=0.1)`: the named arguments, as numbers where the file says which."""
        resolved = self.arguments(scheduler)
        shown = [
            f"{name}={resolved[name] if name in resolved else self.code(scheduler.arguments[name])}"
            for name in names
            if name in resolved or name in scheduler.arguments
        ]
        return f"{scheduler.kind}({', '.join(shown)})"

    def lambda_decay(self, scheduler: Scheduler) -> PeriodicDecay | None:
        """The `gamma ** (epoch // period)` a LambdaLR's lambda computes, written inline or bound to a name."""
        function = scheduler.arguments.get("lr_lambda")
        if function is not None and not isinstance(function, cst.Lambda):
            read = self._read_of(function)
            bindings = self._bindings_for(read[1], read) if read else []
            function = bindings[0].value if len(bindings) == 1 else None
        if not isinstance(function, cst.Lambda):
            return None
        decays = [self.periodic_decay(node) for node, _ in walk_with_ancestors(function.body, [])]
        found = [decay for decay in decays if decay is not None]
        return found[0] if len(found) == 1 else None

    # -- loops and stepping ------------------------------------------------------------------

    def where(self, ancestors: list[cst.CSTNode]) -> StepContext:
        """How often code at this place runs: inside the batch loop of an epoch, once per epoch, or unknown.

        A step in a batch loop counts as per batch only when an epoch loop is around it, here or around a
        call of its function (`train_one_epoch(...)`), or the function is named for one epoch: a lone loop
        over a loader may be the whole, iteration-counted, run.
        """
        function = _innermost(ancestors, cst.FunctionDef)
        start = ancestors.index(function) + 1 if function is not None else 0
        inside = ancestors[start:]
        loops = [node for node in inside if isinstance(node, (cst.For, cst.While))]
        batch = next((loop for loop in reversed(loops) if loop in self._batch_loops), None)
        epoch = next((loop for loop in reversed(loops) if loop in self.epoch_loops), None)
        if batch is not None:
            if self._guarded_by_epoch_end(inside[inside.index(batch) :]):
                return StepContext(None)
            if epoch is not None and loops.index(epoch) < loops.index(batch):
                return StepContext("per batch", epoch, batch)
            caller = self._caller_context(function)
            if caller.epoch_loop is not None or (function is not None and "epoch" in function.name.value.lower()):
                return StepContext("per batch", caller.epoch_loop, batch)
            return StepContext(None)
        if epoch is not None:
            return StepContext("per epoch", epoch)
        if loops or function is None:
            return StepContext(None)
        if "epoch_end" in function.name.value.lower():
            return StepContext("per epoch")
        return self._caller_context(function)

    def _caller_context(self, function: cst.FunctionDef | None) -> StepContext:
        """Where a function is called from (one level up), if all its calls in the file agree."""
        if function is None:
            return StepContext(None)
        contexts = set()
        for call, ancestors in self._calls:
            if self._callee(call) is function:
                loops = [node for node in ancestors if isinstance(node, (cst.For, cst.While))]
                batch = next((loop for loop in reversed(loops) if loop in self._batch_loops), None)
                epoch = next((loop for loop in reversed(loops) if loop in self.epoch_loops), None)
                if batch is not None and epoch is not None and loops.index(epoch) < loops.index(batch):
                    contexts.add(StepContext("per batch", epoch, batch))
                elif epoch is not None and batch is None:
                    contexts.add(StepContext("per epoch", epoch))
                else:
                    contexts.add(StepContext(None))
        return contexts.pop() if len(contexts) == 1 else StepContext(None)

    @staticmethod
    def _guarded_by_epoch_end(nodes: list[cst.CSTNode]) -> bool:
        """`if i == len(loader) - 1: scheduler.step()` steps once per epoch, from inside the batch loop."""
        return any(
            isinstance(node, cst.If) and (_calls_len(node.test) or any("epoch" in name for name in _names(node.test)))
            for node in nodes
        )

    def _callee(self, call: cst.Call) -> cst.FunctionDef | None:
        """The function of this file a call runs: `train_one_epoch(...)`, `self.train_epoch(...)`."""
        func = call.func
        if isinstance(func, cst.Attribute) and not (isinstance(func.value, cst.Name) and func.value.value == "self"):
            return None
        candidates = self.functions.get(_callee_name(call) or "", [])
        return candidates[0] if len(candidates) == 1 else None

    def _steps_of(self, scheduler: Scheduler) -> list[SchedulerStep]:
        """`scheduler.step(...)` calls on this scheduler's variable in its scope, and in the functions of
        this file it is passed to (`train_one_epoch(model, loader, optimizer, scheduler)`)."""
        if scheduler.variable is None:
            return []
        holders = [(scheduler.variable, scheduler.scope)]
        for call, ancestors in self._calls:
            if self._scope(scheduler.variable, ancestors) is scheduler.scope:
                holders.extend(self._parameters_receiving(call, scheduler.variable))
        steps = []
        for call, ancestors in self._calls:
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "step"):
                continue
            variable = dotted_name(func.value)
            if any(variable == name and self._scope(name, ancestors) is scope for name, scope in holders):
                steps.append(SchedulerStep(call, self.where(ancestors)))
        return steps

    def _parameters_receiving(self, call: cst.Call, variable: str) -> list[tuple[str, cst.FunctionDef]]:
        """(parameter name, function) for each argument of `call` that passes `variable`."""
        callee = self._callee(call)
        if callee is None:
            return []
        parameters = [*callee.params.posonly_params, *callee.params.params]
        if isinstance(call.func, cst.Attribute):
            parameters = parameters[1:]  # self
        received = []
        positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
        for arg in call.args:
            if dotted_name(arg.value) != variable or arg.star:
                continue
            if arg.keyword is not None:
                received.append((arg.keyword.value, callee))
            elif positional.index(arg) < len(parameters):
                received.append((parameters[positional.index(arg)].name.value, callee))
        return received

    # -- the training length -----------------------------------------------------------------

    def training_length(self, contexts: list[StepContext]) -> TrainingLength | None:
        """The number of epochs the schedule runs over.

        From the epoch loop that steps it, when its steps were found; from the file's one epoch count
        otherwise (a Lightning module stepped by `Trainer(max_epochs=20)`). None when unknown or ambiguous.
        """
        if any(context.stepping is None for context in contexts):
            return None
        loops = {context.epoch_loop for context in contexts}
        if loops - {None}:
            return self._loop_length(loops.pop()) if len(loops) == 1 else None
        return self._epoch_count()

    def _epoch_count(self) -> TrainingLength | None:
        """The one number of epochs the whole file agrees on, from its epoch loops and epoch-count names."""
        candidates = [self._loop_length(loop) for loop in self.epoch_loops]
        for key in sorted(EPOCH_COUNT_NAMES & self.bindings.keys()):
            found = self._lookup(key, None, frozenset())
            candidates.append(self._length(found[0], found[1]) if found else None)
        if not candidates or None in candidates or len({c.epochs for c in candidates}) != 1:
            return None
        return candidates[0]

    def _loop_length(self, loop: cst.For | cst.While) -> TrainingLength | None:
        """`range(20)` -> 20; `range(start_epoch, args.epochs)` -> the `--epochs` default; `while epoch < N` -> N."""
        if isinstance(loop, cst.While):
            test = loop.test
            if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
                if isinstance(test.comparisons[0].operator, cst.LessThan):
                    return self._bound(test.comparisons[0].comparator, 0, test)
            return None
        iterable = loop.iter
        while isinstance(iterable, cst.Call) and _callee_name(iterable) in _RANGE_WRAPPERS and iterable.args:
            iterable = iterable.args[0].value
        if not (isinstance(iterable, cst.Call) and _callee_name(iterable) in ("range", "trange")):
            return None
        args = [arg.value for arg in iterable.args]
        if len(args) == 1:
            return self._bound(args[0], 0, iterable)
        if len(args) != 2:
            return None
        start, stop = args
        if isinstance(stop, cst.BinaryOperation) and isinstance(stop.operator, cst.Add):
            if self.code(stop.left) == self.code(start):  # `range(start_epoch, start_epoch + 200)`
                return self._bound(stop.right, 0, iterable)
        # A resumed run (`range(args.start_epoch, args.epochs)`) is as long as the one it resumes.
        first = self.value(start) if isinstance(start, (cst.Integer, cst.UnaryOperation)) else 0
        return self._bound(stop, first, iterable)

    def _bound(self, stop: cst.BaseExpression, start: object, written: cst.CSTNode) -> TrainingLength | None:
        """The length of a loop from `start` to `stop`, named by where `stop` got its value (or by the
        loop's own code, `range(20)`, when it is written there)."""
        found = self._evaluate(stop, frozenset())
        if found is None or not isinstance(found[0], int) or not isinstance(start, int):
            return None
        stop_value, binding = found
        return self._length(stop_value - start, binding or Binding(stop, written, frozenset()))

    def _length(self, epochs: object, binding: Binding | None) -> TrainingLength | None:
        if not isinstance(epochs, int) or epochs <= 0 or binding is None:
            return None
        return TrainingLength(epochs, binding.label or f"`{self.code(binding.origin)}`", binding.origin)

    # -- for messages ------------------------------------------------------------------------

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip().rstrip(",").strip()

    def line(self, node: cst.CSTNode) -> int:
        return self.context.position(node).start.line


def training_facts(context: FileContext) -> TrainingFacts:
    """The facts for the file being linted, computed by whichever rule asks first."""
    return context.shared(TrainingFacts, lambda: TrainingFacts(context))
