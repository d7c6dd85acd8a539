"""The file's learning-rate schedules: torch schedulers with their arguments and where each is stepped,
and decays written by hand (`lr = base_lr * 0.1 ** (epoch // 30)`).

A scheduler is a `torch.optim.lr_scheduler` construction of this file. Its steps are the timeline's
SCHEDULER_STEP events whose receiver, named as the entry point knows it (the timeline renames a
function's parameters to its caller's arguments), is bound to that construction: a scheduler built at
module level and stepped in `def train(epoch)`, one passed to `train_one_epoch(..., scheduler)`, one on
`self`. Where each step runs (per batch, per epoch) is `RunLength.where`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.constants import Constants, Number, Scope, callee_name
from nnlint.script.index import FileIndex
from nnlint.script.length import RunLength, StepContext, TrainingLength, ancestors, calls_len, names
from nnlint.script.timeline import SCHEDULER_STEP, Timeline, events
from nnlint.tree import descendants

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
# Words in a name that count optimizer steps rather than epochs (`step_size` is
# StepLR's own parameter name and says nothing, so a lone "step" is not here).
_STEP_WORDS = frozenset({"steps", "iter", "iters", "iteration", "iterations", "batches", "updates", "total"})
_WORD = re.compile(r"[a-z]+")
_NAMES_LR = re.compile(r"lr|learning_rate", re.IGNORECASE)


@dataclass(frozen=True)
class SchedulerStep:
    call: cst.Call  # `scheduler.step(...)`
    where: StepContext
    entry: cst.Call | None = None  # the call of the linted file that led to it, when it is in another file

    @property
    def site(self) -> cst.CSTNode:
        """Where in the linted file to report this step."""
        return self.entry or self.call


@dataclass
class Scheduler:
    kind: str  # "StepLR", ...
    call: cst.Call
    arguments: dict[str, cst.BaseExpression]  # by torch parameter name; the optimizer left out
    variable: str | None  # "scheduler", "self.scheduler"; None when built inline (e.g. returned)
    function: cst.FunctionDef | None  # where it is built (its arguments' names are read there)
    # The variable is bound to something else too in its scope (`if ...: s = StepLR(...) else: s = OneCycleLR(...)`).
    rebound: bool = False
    steps: list[SchedulerStep] = field(default_factory=list)
    # Lightning's `{"scheduler": s, "interval": "step"}` steps it every optimizer step, by the author's choice.
    interval: str | None = None


@dataclass(frozen=True)
class PeriodicDecay:
    """`gamma ** (counter // period)`, the step decay written by hand or in a LambdaLR lambda; `gamma ** counter`
    (period 1) where a bare exponent is asked for."""

    node: cst.BinaryOperation
    gamma: Number
    period: int
    period_written: cst.BaseExpression  # `30`, `args.lr_step`; the counter itself for a bare exponent
    counter: str  # the code of the counter, e.g. "epoch"
    function: cst.FunctionDef | None  # where it is computed
    floored: bool = False  # inside `max(..., min_lr)`: the LR never falls below the floor
    for_lr: bool = False  # assigned to an LR (`lr = ...`, `group["lr"] = ...`) or returned by an LR function


class Schedules:
    def __init__(
        self, index: FileIndex, timeline: Callable[[], Timeline], constants: Constants, length: RunLength
    ) -> None:
        self.index, self.constants, self.length = index, constants, length
        self._timeline = timeline  # built only for a file with a scheduler
        self.module = index.context.module
        self.schedulers: list[Scheduler] = []
        for call, function in index.calls:
            qualified = index.context.call_name(call) or ""
            if qualified.startswith(_SCHEDULER_MODULE) and not self._in_test(function):
                self.schedulers.append(self._scheduler(call, qualified[len(_SCHEDULER_MODULE) :], function))
        if not self.schedulers:
            return
        by_call = {scheduler.call: scheduler for scheduler in self.schedulers}
        self._read_bindings(by_call)
        self._read_lightning_intervals(by_call)
        self._read_steps(by_call)

    # -- reading the file -------------------------------------------------------------------

    def _in_test(self, function: cst.FunctionDef | None) -> bool:
        """Inside a `test_...` function: a unit test steps a scheduler for whatever length it checks; it is not
        a training run."""
        while function is not None:
            if function.name.value.startswith("test"):
                return True
            function = self.index.parent_function.get(function)
        return False

    @staticmethod
    def _scheduler(call: cst.Call, kind: str, function: cst.FunctionDef | None) -> Scheduler:
        parameters = _PARAMETERS.get(kind, ())
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star][1:]
        arguments = dict(zip(parameters, positional))
        keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
        arguments.update((name, value) for name, value in keywords.items() if name != "optimizer")
        return Scheduler(kind, call, arguments, None, function)

    def _read_bindings(self, by_call: dict[cst.Call, Scheduler]) -> None:
        """The variable each scheduler is assigned to, and whether that variable is assigned anything else."""
        for (scope, name), bindings in self.index.bindings.items():
            assigned = [binding for binding in bindings if _assigns(binding.node, name)]
            for binding in assigned:
                scheduler = by_call.get(binding.value)
                if scheduler is not None:
                    scheduler.variable, scheduler.rebound = name, len(assigned) > 1

    def _read_lightning_intervals(self, by_call: dict[cst.Call, Scheduler]) -> None:
        """`{"scheduler": StepLR(...), "interval": "step"}` in `configure_optimizers`."""
        for dictionary, function in self.constants.dicts:
            interval, held = _dict_entry(dictionary, "interval"), _dict_entry(dictionary, "scheduler")
            if isinstance(interval, cst.SimpleString) and held is not None:
                for scheduler in self._held(held, function, by_call):
                    scheduler.interval = interval.raw_value

    def _held(self, expr: cst.BaseExpression | str, function, by_call: dict[cst.Call, Scheduler]) -> list[Scheduler]:
        """The schedulers an expression (or dotted name) in `function` may hold: a construction, or a name
        bound to one."""
        if isinstance(expr, cst.Call):
            return [by_call[expr]] if expr in by_call else []
        name = expr if isinstance(expr, str) else dotted_name(expr)
        bindings = self.index.lookup(name, function) if name else []
        return [by_call[binding.value] for binding in bindings if binding.value in by_call]

    def _read_steps(self, by_call: dict[cst.Call, Scheduler]) -> None:
        """Each SCHEDULER_STEP of the timeline, given to the schedulers its receiver is bound to where the
        name the timeline gives it lives (the entry point, or the function whose local it is)."""
        wheres: dict[cst.Call, StepContext] = {}
        for root in self._timeline().roots:
            entry = root.node if isinstance(root.node, cst.FunctionDef) else None
            for event in events(root.body):
                if event.kind != SCHEDULER_STEP or event.subject is None:
                    continue
                owner, _, local = event.subject.rpartition(".<locals>.")
                functions = self.index.functions.get(owner.rpartition(".")[2], []) if owner else [entry]
                if len(functions) != 1:
                    continue
                for scheduler in self._held(local, functions[0], by_call):
                    self._add_step(scheduler, event.node, event.function, wheres, event.entry)
        # Steps the timeline does not run (in a lambda: `add_event_handler(..., lambda e: scheduler.step())`)
        # still step the scheduler, somewhere `where` may not know.
        for call, function in self.index.calls:
            if isinstance(call.func, cst.Attribute) and call.func.attr.value == "step" and call not in wheres:
                for scheduler in self._held(call.func.value, function, by_call):
                    self._add_step(scheduler, call, function, wheres)

    def _add_step(self, scheduler: Scheduler, call: cst.Call, function, wheres: dict, entry=None) -> None:
        if all(step.call is not call for step in scheduler.steps):
            if call not in wheres:
                wheres[call] = self.length.where(call, function)
            scheduler.steps.append(SchedulerStep(call, wheres[call], entry))

    @cached_property
    def decays(self) -> list[PeriodicDecay]:
        """Decays written by hand, outside any lambda (a LambdaLR's is read with its scheduler) and any test."""
        found = []
        for node, function in self.constants.powers:
            decay = self.periodic_decay(node, function, bare=True) if not self._in_test(function) else None
            if decay is not None:
                around = ancestors(function or self.module, node)
                floored = any(_is_max(outer) for outer in around)
                found.append(dataclasses.replace(decay, floored=floored, for_lr=self._computes_lr(around, function)))
        return found

    def _computes_lr(self, around: tuple[cst.CSTNode, ...], function: cst.FunctionDef | None) -> bool:
        """Under `lr = ...`, `param_group["lr"] = ...`, or `return ...` in `adjust_learning_rate`."""
        for node in reversed(around):
            if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
                targets = [target.target for target in node.targets] if isinstance(node, cst.Assign) else [node.target]
                return any(_NAMES_LR.search(self.constants.code(target)) for target in targets)
            if isinstance(node, cst.Return):
                return function is not None and bool(_NAMES_LR.search(function.name.value))
        return False

    # -- values ------------------------------------------------------------------------------

    def periodic_decay(self, expr: cst.CSTNode, function, bare: bool = False) -> PeriodicDecay | None:
        """`0.1 ** (epoch // 30)` -> PeriodicDecay(gamma=0.1, period=30); with `bare`, `0.95 ** epoch` too."""
        if not (isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Power)):
            return None
        exponent = expr.right
        if isinstance(exponent, cst.BinaryOperation) and isinstance(exponent.operator, cst.FloorDivide):
            counter, period_written = exponent.left, exponent.right
            period = self.constants.value(period_written, function)
        elif bare and isinstance(exponent, (cst.Name, cst.Attribute)) and self.constants.value(exponent, function) is None:
            counter, period_written, period = exponent, exponent, 1
        else:
            return None
        gamma = self.constants.value(expr.left, function)
        if not (isinstance(gamma, (int, float)) and 0 < gamma < 1 and isinstance(period, int) and period > 0):
            return None
        return PeriodicDecay(expr, gamma, period, period_written, self.constants.code(counter), function)

    def lambda_decay(self, scheduler: Scheduler, bare: bool = False) -> PeriodicDecay | None:
        """The `gamma ** (epoch // period)` a LambdaLR's lambda computes, written inline or bound to a name."""
        function, scope = scheduler.arguments.get("lr_lambda"), scheduler.function
        if function is not None and not isinstance(function, cst.Lambda):
            read = self.constants.read_of(function, scope or self.module)
            settings = self.constants.answering(read[1], read) if read else []
            function, scope = (settings[0].value, _function(settings[0].scope)) if len(settings) == 1 else (None, None)
        if not isinstance(function, cst.Lambda):
            return None
        floored = {node for call in descendants(function.body) if _is_max(call) for node in descendants(call)}
        decays = [self.periodic_decay(node, scope, bare) for node in descendants(function.body)]
        found = [dataclasses.replace(decay, floored=decay.node in floored) for decay in decays if decay is not None]
        return found[0] if len(found) == 1 else None

    def arguments(self, scheduler: Scheduler) -> dict[str, object]:
        """The scheduler's arguments the file gives numbers for, and torch's defaults for those it
        does not write: what the runtime check rebuilds the scheduler from. An argument written
        without a number (`args.gamma`) is absent, never replaced by the default."""
        defaults = _DEFAULTS.get(scheduler.kind, {})
        resolved = {name: value for name, value in defaults.items() if name not in scheduler.arguments}
        for name, expr in scheduler.arguments.items():
            value = self.constants.value(expr, scheduler.function)
            if value is not None:
                resolved[name] = value
        return resolved

    def describe(self, scheduler: Scheduler, *names: str) -> str:
        """`StepLR(step_size=30, gamma=0.1)`: the named arguments, as numbers where the file says which."""
        resolved = self.arguments(scheduler)
        shown = [
            f"{name}={resolved[name] if name in resolved else self.constants.code(scheduler.arguments[name])}"
            for name in names
            if name in resolved or name in scheduler.arguments
        ]
        return f"{scheduler.kind}({', '.join(shown)})"

    def looks_like_epochs(self, expr: cst.BaseExpression, function, length: TrainingLength | None) -> bool:
        """Does a scheduler period (step_size, milestones, T_max) count epochs rather than optimizer steps?

        Said by its name (`args.epochs`, not `total_steps` or `epochs * len(loader)`) or by its size: no run
        decays after 30 optimizer steps, so a period of at most 100 (or of at most the epoch count) is epochs.
        """
        words = {word for name in names(expr) for word in _WORD.findall(name)}
        if calls_len(expr) or words & _STEP_WORDS:
            return False
        value = self.constants.value(expr, function)
        numbers = value if isinstance(value, list) else [value]
        if value is not None and all(isinstance(number, (int, float)) for number in numbers):
            limit = max(100, length.epochs if length else 0)
            return bool(numbers) and all(0 < number <= limit for number in numbers)
        return any("epoch" in word for word in words)


def _assigns(statement: cst.CSTNode, name: str) -> bool:
    """`name = ...` written as such (not one element of `a, b = ...`), with a value."""
    if isinstance(statement, cst.Assign):
        return any(dotted_name(target.target) == name for target in statement.targets)
    return isinstance(statement, cst.AnnAssign) and statement.value is not None and dotted_name(statement.target) == name


def _dict_entry(dictionary: cst.Dict, key: str) -> cst.BaseExpression | None:
    """The value under a string key of a dict literal: `{"interval": "step"}` -> `"step"`."""
    for element in dictionary.elements:
        if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
            if element.key.raw_value == key:
                return element.value
    return None


def _is_max(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Call) and callee_name(node) == "max"


def _function(scope: Scope) -> cst.FunctionDef | None:
    return scope if isinstance(scope, cst.FunctionDef) else None
