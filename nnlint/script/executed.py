"""The training iterations that run when the file itself is executed, as opposed to library code.

A library module's `train_one_epoch` is run (and seeded, and configured) by another file; rules about
how a *script* sets up its run (seeding, cuDNN flags) must only judge the file that runs. An iteration
runs when the file is executed if it is in module-level code (the `__main__` guard and the functions
it calls included) or, in a file with a `__main__` guard, in a function the executed code names
(a worker handed to `mp.spawn`, `fire.Fire(main)`, `trainer.train()`).
"""

from __future__ import annotations

import libcst as cst

from nnlint.script.index import FileIndex
from nnlint.script.timeline import is_main_guard
from nnlint.script.training import Iteration, Training
from nnlint.tree import child_nodes


def executed_iterations(index: FileIndex, training: Training) -> list[Iteration]:
    module = index.context.module
    if not any(isinstance(statement, cst.If) and is_main_guard(statement.test) for statement in module.body):
        return [it for it in training.iterations if it.root.is_module]
    executed = _executed_functions(index)
    return [it for it in training.iterations if it.root.is_module or it.root.node in executed]


def _executed_functions(index: FileIndex) -> set[cst.FunctionDef]:
    """The file's functions that module-level code reaches by naming them (calls, callbacks, methods)."""
    executed: set[cst.FunctionDef] = set()
    pending: list[cst.CSTNode] = list(index.context.module.body)
    while pending:
        for name in _names_outside_definitions(pending.pop()):
            for function in index.functions.get(name.value, ()):
                if function not in executed:
                    executed.add(function)
                    pending.extend(function.body.body)
    return executed


def _names_outside_definitions(node: cst.CSTNode):
    """Names under `node`, not descending into nested `def`/`class` bodies (they run only when named)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            continue
        if isinstance(current, cst.Name):
            yield current
        stack.extend(child_nodes(current))
