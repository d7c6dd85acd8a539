"""The training iterations of the run, and the train/eval mode each model is in at each of its calls.

A training iteration is the innermost loop whose body reaches `backward()` and an optimizer `step()`
(through called functions too); the loop around it is its epoch loop. A function the file never calls
that back-propagates and steps without a loop (`train_step(model, batch, optimizer)`) is one iteration
per call. The modes come from following `model.eval()` / `model.train()` through the timeline, loops run
twice so that what the end of one epoch leaves behind reaches the start of the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from nnlint.script.timeline import (
    BACKWARD, CREATE, EVAL, MODEL_CALL, SET_MODE, STEP, TRAIN, Branch, Event, Item, Loop, Root, Timeline, events,
)  # fmt: skip

TRAIN_MODE, EVAL_MODE, UNKNOWN_MODE = "train", "eval", "unknown"
# What a model may be in at a point: (mode, the event that set it; None when it was never set there).
Modes = frozenset[tuple[str, Event | None]]
_CREATED = frozenset({(TRAIN_MODE, None)})
_UNKNOWN = frozenset({(UNKNOWN_MODE, None)})
_MODE_SET_BY = {EVAL: EVAL_MODE, TRAIN: TRAIN_MODE, CREATE: TRAIN_MODE, SET_MODE: UNKNOWN_MODE}


@dataclass(frozen=True)
class Iteration:
    loop: Loop | None  # None: the body of a function run once per call
    root: Root
    events: tuple[Event, ...]  # in order; events in nested loops and in every branch included
    epoch_loop: Loop | None  # the loop that runs this one (per epoch)

    @property
    def node(self) -> cst.CSTNode:
        return self.loop.node if self.loop is not None else self.root.node


class Training:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.iterations: list[Iteration] = []
        for root in timeline.roots:
            self._find_iterations(root.body, root, None)
            if not any(iteration.root is root for iteration in self.iterations) and not root.is_module:
                found = tuple(events(root.body))
                if _trains(found):
                    self.iterations.append(Iteration(None, root, found, None))
        self._observed: dict[cst.CSTNode, set] = {}
        for root in timeline.roots:
            self._run(root.body, {}, _CREATED if root.is_module else _UNKNOWN, record=True)

    def _find_iterations(self, items: list[Item], root: Root, around: Loop | None) -> bool:
        """Record the innermost training loops under `items`; True if there was one."""
        found = False
        for item in items:
            if isinstance(item, Loop):
                if self._find_iterations(item.body, root, item):
                    found = True
                    continue
                loop_events = tuple(events(item.body))
                if _trains(loop_events):
                    self.iterations.append(Iteration(item, root, loop_events, around))
                    found = True
            elif isinstance(item, Branch):
                for arm in item.arms:
                    found |= self._find_iterations(arm, root, around)
        return found

    def iteration_of(self, node: cst.CSTNode) -> Iteration | None:
        """The training iteration an event's node runs in, if any."""
        return next((it for it in self.iterations if any(event.node is node for event in it.events)), None)

    def in_training(self, node: cst.CSTNode) -> bool:
        return self.iteration_of(node) is not None

    def modes(self, node: cst.CSTNode) -> Modes:
        """The modes the model is in when this model call (or backward) runs, over every path to it."""
        return frozenset(self._observed.get(node, ()))

    # -- the mode analysis ------------------------------------------------------------------

    def _run(self, items: list[Item], state: dict, default: Modes, record: bool) -> dict:
        for item in items:
            if isinstance(item, Event):
                if item.kind in (EVAL, TRAIN, CREATE, SET_MODE) and item.subject:
                    state = {**state, item.subject: frozenset({(_MODE_SET_BY[item.kind], item)})}
                elif item.kind in (MODEL_CALL, BACKWARD) and record:
                    self._observed.setdefault(item.node, set()).update(_mode_of(state, item.subject, default))
            elif isinstance(item, Loop):
                once = self._run(item.body, state, default, record=False)
                again = self._run(item.body, _join([state, once], default), default, record)
                state = _join([state, again], default)
            else:
                outcomes = [self._run(arm, state, default, record) for arm in item.arms]
                if not item.exhaustive:
                    outcomes.append(state)
                state = _join(outcomes, default)
        return state


def _mode_of(state: dict, subject: str | None, default: Modes) -> Modes:
    """A submodule is in its parent's mode: `model.encoder(x)` after `model.eval()`."""
    while subject:
        if subject in state:
            return state[subject]
        subject = subject.rpartition(".")[0]
    return default


def _trains(found: tuple[Event, ...]) -> bool:
    kinds = {event.kind for event in found}
    return BACKWARD in kinds and STEP in kinds


def _join(states: list[dict], default: Modes) -> dict:
    keys = {key for state in states for key in state}
    return {key: frozenset().union(*(state.get(key, default) for state in states)) for key in keys}
