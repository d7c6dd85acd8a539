"""How long the run trains, and how often a line of it runs: once per batch, once per epoch, or unknown.

An epoch loop is a loop that names epochs (`for epoch in range(args.epochs)`, `while epoch < N`); a batch
loop iterates a loader (`for x, y in train_loader`, `enumerate(tqdm(loader))`, a name the script model
gives the LOADER role, `for batch in data`). `where(node, function)` reads the loops around a node and,
through the file's callers (`train_one_epoch(...)` in the epoch loop), the loops around each call of its
function. `of(contexts)` is the number of epochs a schedule stepped in those places runs over: from
the epoch loop that steps it, else from the one epoch count the whole file agrees on (`Trainer(max_epochs=20)`
for a Lightning module whose steps are not in the file). None whenever the source does not say.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from nnlint.script.constants import Constants, Setting, callee_name
from nnlint.script.index import FileIndex
from nnlint.script.roles import LOADER, Roles
from nnlint.script.timeline import Timeline
from nnlint.tree import descendants, walk_with_ancestors

# Names that hold the number of epochs of the run (not warmup, start or decay epochs).
EPOCH_COUNT_NAMES = frozenset(
    {
        "epochs", "num_epochs", "n_epochs", "nb_epochs", "max_epochs", "total_epochs", "train_epochs",
        "num_train_epochs", "training_epochs", "epoch_num", "num_epoch", "n_epoch", "max_epoch", "epochs_num",
    }
)  # fmt: skip
_RANGE_WRAPPERS = ("tqdm", "enumerate", "iter")
_ITERATOR_NAME = re.compile(r"(?!(?:max|num|n|nb|total)_iter$)\w+_iter")  # `train_iter`, not `max_iter`
_MAX_CALLER_DEPTH = 4
Loop = cst.For | cst.While


@dataclass(frozen=True)
class TrainingLength:
    epochs: int
    origin: str  # e.g. "`range(20)`", "`--epochs` default 20"
    origin_node: cst.CSTNode


@dataclass(frozen=True)
class StepContext:
    """Where a scheduler step (or a hand-written decay) runs: once per batch, once per epoch, or unknown."""

    stepping: str | None  # "per batch", "per epoch" or None
    epoch_loop: Loop | None = None
    batch_loop: cst.For | None = None
    epoch_function: cst.FunctionDef | None = None  # where the epoch loop is (its names are read there)


@dataclass(frozen=True)
class _Level:
    """One function on the way to a node: the node (or the call leading to it) and its ancestors there."""

    function: cst.FunctionDef | None
    node: cst.CSTNode
    ancestors: tuple[cst.CSTNode, ...]

    @property
    def loops(self) -> list[Loop]:
        return [node for node in self.ancestors if isinstance(node, (cst.For, cst.While))]


class RunLength:
    def __init__(self, index: FileIndex, roles: Roles, timeline: Callable[[], Timeline], constants: Constants) -> None:
        self.index, self.roles, self.constants = index, roles, constants
        self._timeline = timeline  # built when the epoch loops are first asked for
        self._callers: dict[cst.FunctionDef, list[tuple[cst.Call, cst.FunctionDef | None]]] = {}
        for call, caller in index.calls:
            callee = index.callee(call, caller)
            if callee is not None:
                self._callers.setdefault(callee, []).append((call, caller))

    # -- loops ---------------------------------------------------------------------------------

    def is_batch_loop(self, loop: Loop, function: cst.FunctionDef | None) -> bool:
        """`for x, y in train_loader`, `enumerate(tqdm(loader))`, `range(len(loader))`, `for batch in data`."""
        if not isinstance(loop, cst.For):
            return False
        target_names, iter_names = names(loop.target), names(loop.iter)
        if any("loader" in name for name in target_names):
            return False  # iterating over the loaders themselves (`for loader in (train, val)`)
        return (
            any("loader" in name or "batches" in name or "per_epoch" in name for name in iter_names)
            or any(_ITERATOR_NAME.fullmatch(name) for name in iter_names)
            or any("batch" in name for name in target_names)
            or self.roles.is_(_iterated(loop.iter), function, LOADER)
        )  # fmt: skip

    def is_epoch_loop(self, loop: Loop, function: cst.FunctionDef | None) -> bool:
        watched = (loop.target, loop.iter) if isinstance(loop, cst.For) else (loop.test,)
        named = any("epoch" in name for part in watched for name in names(part))
        return named and not self.is_batch_loop(loop, function)

    @cached_property
    def epoch_loops(self) -> list[tuple[Loop, cst.FunctionDef | None]]:
        """Every epoch loop of the file, with the function it is in."""
        seen, found = set(), []
        for loop, _ in self._timeline().loops():
            if loop.node not in seen and self.is_epoch_loop(loop.node, loop.function):
                seen.add(loop.node)
                found.append((loop.node, loop.function))
        return found

    # -- how often a node runs -----------------------------------------------------------------

    def where(self, node: cst.CSTNode, function: cst.FunctionDef | None) -> StepContext:
        """How often code at this place runs, if every way the file reaches it agrees.

        A step in a batch loop counts as per batch only when an epoch loop is around it, here or around a
        call of its function (`train_one_epoch(...)`), or the function with the batch loop is named for one
        epoch: a lone loop over a loader may be the whole, iteration-counted, run.
        """
        contexts = {self._classify(chain) for chain in self._chains(node, function, 0)}
        return contexts.pop() if len(contexts) == 1 else StepContext(None)

    def _chains(self, node: cst.CSTNode, function: cst.FunctionDef | None, depth: int) -> list[list[_Level]]:
        """The levels from an entry point down to `node`, one chain for each way of calling its function.
        A function whose own loops already say how often the node runs is not followed up to its callers."""
        level = _Level(function, node, ancestors(function or self.index.context.module, node))
        callers = self._callers.get(function, []) if function is not None else []
        if not callers or depth >= _MAX_CALLER_DEPTH or self._decided(level):
            return [[level]]
        return [[*chain, level] for call, caller in callers for chain in self._chains(call, caller, depth + 1)]

    def _decided(self, level: _Level) -> bool:
        """The loops in the node's own function settle it, unless there are none (what calls the function
        decides) or the innermost batch loop has no epoch loop around it there (the caller's may be)."""
        if not level.loops:
            return level.function is not None and "epoch_end" in level.function.name.value.lower()
        batches = [loop for loop in level.loops if self.is_batch_loop(loop, level.function)]
        if not batches:
            return True
        return self._classify([level]).epoch_loop is not None or self._guarded_by_epoch_end([level], batches[-1], level)

    def _classify(self, chain: list[_Level]) -> StepContext:
        loops = [(loop, level) for level in chain for loop in level.loops]
        batches = [(loop, level) for loop, level in loops if self.is_batch_loop(loop, level.function)]
        if batches:
            batch, level = batches[-1]
            if self._guarded_by_epoch_end(chain, batch, level):
                return StepContext(None)
            outside = loops[: loops.index((batch, level))]
            epochs = [(loop, where) for loop, where in outside if self.is_epoch_loop(loop, where.function)]
            if epochs:
                return StepContext("per batch", epochs[-1][0], batch, epochs[-1][1].function)
            if level.function is not None and "epoch" in level.function.name.value.lower():
                return StepContext("per batch", None, batch)
            return StepContext(None)
        epochs = [(loop, level) for loop, level in loops if self.is_epoch_loop(loop, level.function)]
        if epochs:
            return StepContext("per epoch", epochs[-1][0], None, epochs[-1][1].function)
        function = chain[-1].function
        if not loops and function is not None and "epoch_end" in function.name.value.lower():
            return StepContext("per epoch")
        return StepContext(None)

    @staticmethod
    def _guarded_by_epoch_end(chain: list[_Level], batch: cst.For, level: _Level) -> bool:
        """`if i == len(loader) - 1: scheduler.step()` steps once per epoch, from inside the batch loop."""
        below = chain[chain.index(level) :]
        nodes = [*below[0].ancestors[below[0].ancestors.index(batch) :], *(n for lv in below[1:] for n in lv.ancestors)]
        return any(
            isinstance(node, cst.If) and (calls_len(node.test) or any("epoch" in name for name in names(node.test)))
            for node in nodes
        )

    # -- the training length -------------------------------------------------------------------

    def of(self, contexts: list[StepContext]) -> TrainingLength | None:
        """The number of epochs a schedule stepped in these places runs over.

        From the epoch loop that steps it, when its steps were found; from the file's one epoch count
        otherwise (a Lightning module stepped by `Trainer(max_epochs=20)`). None when unknown or ambiguous.
        """
        if any(context.stepping is None for context in contexts):
            return None
        loops = {(context.epoch_loop, context.epoch_function) for context in contexts if context.epoch_loop}
        if loops:
            return self.loop_length(*loops.pop()) if len(loops) == 1 else None
        return self.epoch_count

    @cached_property
    def epoch_count(self) -> TrainingLength | None:
        """The one number of epochs the whole file agrees on, from its epoch loops and epoch-count names."""
        candidates = [self.loop_length(loop, function) for loop, function in self.epoch_loops]
        for key in sorted(EPOCH_COUNT_NAMES & self.constants.settings.keys()):
            found = self.constants.agreed(key)
            candidates.append(self._length(found[0], found[1]) if found else None)
        if not candidates or None in candidates or len({c.epochs for c in candidates}) != 1:
            return None
        return candidates[0]

    def loop_length(self, loop: Loop, function: cst.FunctionDef | None) -> TrainingLength | None:
        """`range(20)` -> 20; `range(start_epoch, args.epochs)` -> the `--epochs` default; `while epoch < N` -> N."""
        if isinstance(loop, cst.While):
            test = loop.test
            if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
                if isinstance(test.comparisons[0].operator, cst.LessThan):
                    return self._bound(test.comparisons[0].comparator, 0, test, function)
            return None
        iterable = _iterated(loop.iter)
        if not (isinstance(iterable, cst.Call) and callee_name(iterable) in ("range", "trange")):
            return None
        args = [arg.value for arg in iterable.args]
        if len(args) == 1:
            return self._bound(args[0], 0, iterable, function)
        if len(args) != 2:
            return None
        start, stop = args
        if isinstance(stop, cst.BinaryOperation) and isinstance(stop.operator, cst.Add):
            if self.constants.code(stop.left) == self.constants.code(start):  # `range(start_epoch, start_epoch + 200)`
                return self._bound(stop.right, 0, iterable, function)
        # A resumed run (`range(args.start_epoch, args.epochs)`) is as long as the one it resumes.
        first = self.constants.value(start, function) if isinstance(start, (cst.Integer, cst.UnaryOperation)) else 0
        return self._bound(stop, first, iterable, function)

    def _bound(self, stop, start: object, code: cst.CSTNode, function) -> TrainingLength | None:
        """The length of a loop from `start` to `stop`, named by where `stop` got its value (or by the
        loop's own code, `range(20)`, when it is written there)."""
        found = self.constants.evaluate(stop, function)
        if found is None or not isinstance(found[0], int) or not isinstance(start, int):
            return None
        stop_value, setting = found
        return self._length(stop_value - start, setting or Setting(stop, code, frozenset(), function or self.constants.module))

    def _length(self, epochs: object, setting: Setting | None) -> TrainingLength | None:
        if not isinstance(epochs, int) or epochs <= 0 or setting is None:
            return None
        return TrainingLength(epochs, setting.label or f"`{self.constants.code(setting.origin)}`", setting.origin)


def ancestors(scope: cst.CSTNode, node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """The nodes from `scope` (included) down to `node` (excluded), found by walking `scope`."""
    for current, path in walk_with_ancestors(scope, []):
        if current is node:
            return tuple(path)
    return ()


def names(expr: cst.CSTNode) -> list[str]:
    """Lower-cased identifiers and string keys in an expression: `args.lr_step_size` -> ["args", "lr_step_size"]."""
    found = []
    for node in descendants(expr):
        if isinstance(node, cst.Name):
            found.append(node.value.lower())
        elif isinstance(node, cst.SimpleString):
            found.append(node.raw_value.lower())
    return found


def calls_len(expr: cst.CSTNode) -> bool:
    """`len(...)` somewhere in an expression: a count of batches, not epochs."""
    return any(isinstance(node, cst.Call) and callee_name(node) == "len" for node in descendants(expr))


def _iterated(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """`enumerate(tqdm(loader))` -> `loader`."""
    while isinstance(iterable, cst.Call) and callee_name(iterable) in _RANGE_WRAPPERS and iterable.args:
        iterable = iterable.args[0].value
    return iterable
