"""Where the run uses a model to measure or predict rather than to train: its evaluation calls.

A call of a model outside every training iteration is evaluation when the code says so: the model was
put in eval mode on every path to the call; or the call runs inside a function named like evaluate /
validate / test / predict / infer (the function itself or one the run passed through to get there),
inside a loop over a validation or test loader, or under `torch.no_grad()` / `inference_mode()` inside
a loop over some loader. `no_grad` alone is not enough: a shape check on random input or a GAN drawing
samples also run without gradients. A file that neither trains nor loads weights has no evaluation
calls (`def test(): net = ResNet18(); net(x)` checks shapes of random weights), nor have unit-test
files (`test_*.py`): their `test_` functions test code."""

from __future__ import annotations

import os
from dataclasses import dataclass

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.index import FileIndex, words
from nnlint.script.roles import LOADER, Roles
from nnlint.script.timeline import MODEL_CALL, Event, Loop, Root, Timeline
from nnlint.script.training import EVAL_MODE, Training
from nnlint.tree import descendants

_EVAL_FUNCTION_WORDS = frozenset(
    {"eval", "evaluate", "evaluation", "validate", "validation", "val", "valid", "test", "testing", "predict",
     "prediction", "infer", "inference"}
)  # fmt: skip
_LOADS = frozenset({"load_state_dict", "from_pretrained", "load_from_checkpoint", "load_checkpoint"})
# A file has evaluation calls only if it trains or loads weights: the triggers of rules that read them
# ("for epoch": an epoch loop whose training and evaluation are functions of another file).
EVALUATION_TRIGGERS = ("backward", "for epoch", *_LOADS, "torch.load", "hub.load")
_EVAL_DATA_WORDS = frozenset({"val", "valid", "validation", "test", "testing", "eval", "dev", "holdout"})


@dataclass(frozen=True)
class EvaluationCall:
    event: Event  # the model call
    root: Root
    why: str  # what makes it evaluation, for messages: "in `validate()`", "in the loop over `val_loader`"
    after_eval: bool  # the model was put in eval mode on every path here: this code owns the evaluation


class Evaluation:
    def __init__(self, index: FileIndex, roles: Roles, timeline: Timeline, training: Training) -> None:
        self.index = index
        self.roles = roles
        self.training = training
        self.calls: list[EvaluationCall] = []
        self._comprehensions: dict[cst.CSTNode, list] = {}
        if _is_unit_test_file(index.context.path) or not (training.iterations or self._loads_weights()):
            return
        for root in timeline.roots:
            self._visit(root.body, root, (), training)

    def _visit(self, items, root: Root, loops: tuple[Loop, ...], training: Training) -> None:
        for item in items:
            if isinstance(item, Loop):
                self._visit(item.body, root, (*loops, item), training)
            elif isinstance(item, Event):
                if item.kind == MODEL_CALL and not training.in_training(item.node):
                    after_eval = self._after_eval(item)
                    why = after_eval or self._why(item, root, loops)
                    if why is not None:
                        self.calls.append(EvaluationCall(item, root, why, after_eval is not None))
            else:
                for arm in item.arms:
                    self._visit(arm, root, loops, training)

    def _after_eval(self, event: Event) -> str | None:
        modes = self.training.modes(event.node)
        if modes and all(mode == EVAL_MODE and setter is not None for mode, setter in modes):
            places = sorted({self.index.context.at(setter.node) for _, setter in modes})
            return "after `eval()` (" + ", ".join(places) + ")"
        return None

    def _why(self, event: Event, root: Root, loops: tuple[Loop, ...]) -> str | None:
        for function in event.functions:
            found = set(words(function.name.value))
            if found & _EVAL_FUNCTION_WORDS and "train" not in found:
                return f"in `{function.name.value}()`"
        iterated = self._iterated_around(event, loops)
        for name, _, _ in iterated:
            if set(words(name.rpartition(".")[2])) & _EVAL_DATA_WORDS:
                return f"in the loop over `{name}`"
        if event.no_grad:
            for name, iterable, function in iterated:
                if self.roles.is_(iterable, function, LOADER):
                    return f"under no_grad in the loop over `{name}`"
        return None

    def _iterated_around(self, event: Event, loops: tuple[Loop, ...]) -> list[tuple[str, cst.BaseExpression, object]]:
        """What the loops and comprehensions around the call iterate, innermost first: (name, expression,
        function it is written in); `sum(model(x) for x, _ in val_loader)` evaluates as a loop does."""
        found = [
            (comp_for.iter, event.function) for comp_for in self._comprehensions_around(event.node, event.function)
        ]
        named = [(dotted_name(_iterated(iterable)), _iterated(iterable), function) for iterable, function in found]
        # A loop's name is the one the entry point knows (`val_loader`, passed as `loader`).
        named += [(loop.iterates, _iterated(loop.node.iter), loop.function) for loop in reversed(loops) if isinstance(loop.node, cst.For)]
        return [(name, iterable, function) for name, iterable, function in named if name]

    def _comprehensions_around(self, node: cst.CSTNode, function) -> list[cst.CompFor]:
        scope = function or self.index.context.module
        if scope not in self._comprehensions:
            self._comprehensions[scope] = [
                (comp, {id(inner) for inner in descendants(comp)})
                for comp in descendants(scope) if isinstance(comp, (cst.ListComp, cst.GeneratorExp, cst.SetComp, cst.DictComp))
            ]  # fmt: skip
        return [comp.for_in for comp, inside in reversed(self._comprehensions[scope]) if id(node) in inside]

    def _loads_weights(self) -> bool:
        for call, _ in self.index.calls:
            qualified = self.index.context.call_name(call) or dotted_name(call.func) or ""
            if qualified.rpartition(".")[2] in _LOADS or qualified in ("torch.load", "torch.hub.load"):
                return True
        return False



def _iterated(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """`enumerate(tqdm(loader))` -> `loader`."""
    while isinstance(iterable, cst.Call) and iterable.args:
        iterable = iterable.args[0].value
    return iterable


def _is_unit_test_file(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
