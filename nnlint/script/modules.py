"""What the file's own model classes are made of, as far as the file shows.

NN302 and NN303 warn about a model evaluated or trained in the wrong mode; a model whose layers do
not depend on the mode (no dropout, no batch norm) computes the same either way, so the warning
would be noise. That is decidable statically only for a class of this file built from torch layers
and the file's other classes; anything imported from elsewhere may hold such a layer.
"""

from __future__ import annotations

import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.index import FileIndex
from nnlint.script.roles import MODEL, Roles
from nnlint.tree import descendants

_MODE_DEPENDENT = re.compile(r"Dropout|BatchNorm|dropout|batch_norm|RReLU|rrelu|track_running_stats|self\.training")


def mode_free(index: FileIndex, roles: Roles, subject: str, scope: cst.FunctionDef | None) -> bool:
    """True when `subject` is built from a class of this file that provably has no mode-dependent layer."""
    role = roles.of(subject, scope)
    if role is None or role.role != MODEL or role.binding is None or not isinstance(role.binding.value, cst.Call):
        return False
    built = role.binding.value
    while isinstance(built.func, cst.Attribute) and isinstance(built.func.value, cst.Call):  # Net().to(device)
        built = built.func.value
    name = dotted_name(built.func)
    return name in index.classes and _class_is_mode_free(index, name, set())


def _class_is_mode_free(index: FileIndex, name: str, seen: set[str]) -> bool:
    if name in seen:
        return True
    seen.add(name)
    cls = index.classes[name]
    if _MODE_DEPENDENT.search(index.context.module.code_for_node(cls)):
        return False
    for node in descendants(cls):
        if isinstance(node, cst.Call):
            called = dotted_name(node.func)
            if called is None or called.startswith("self.") or called in ("super",):
                continue
            if called in index.classes:
                if not _class_is_mode_free(index, called, seen):
                    return False
            elif (index.context.qualified_name(node.func) or "").startswith("torch."):
                continue
            elif called[:1].isupper():
                return False  # a layer class from elsewhere: it may hold dropout or batch norm
    return True
