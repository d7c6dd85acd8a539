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

_MODE_DEPENDENT = re.compile(
    r"Dropout|BatchNorm|dropout|batch_norm|RReLU|rrelu|track_running_stats|self\.training|Transformer|MultiheadAttention"
)


def mode_free(index: FileIndex, roles: Roles, subject: str, scope: cst.FunctionDef | None) -> bool:
    """True when `subject` (or the model it is a part of: `model.encoder`) is built from torch layers or
    classes of this file that provably have no mode-dependent layer."""
    while subject:
        role = roles.of(subject, scope)
        if role is not None and role.role == MODEL and role.binding is not None and isinstance(role.binding.value, cst.Call):
            built = role.binding.value
            while isinstance(built.func, cst.Attribute) and isinstance(built.func.value, cst.Call):  # Net().to(device)
                built = built.func.value
            return _built_mode_free(index, built, set())
        subject = subject.rpartition(".")[0]
    return False


def _built_mode_free(index: FileIndex, built: cst.Call, seen: set[str]) -> bool:
    """`Net(...)` of a mode-free class of the file, or `nn.Sequential(nn.Linear(...), nn.ReLU())`."""
    name = dotted_name(built.func)
    if name in index.classes:
        return _class_is_mode_free(index, name, seen)
    if not (index.context.qualified_name(built.func) or "").startswith("torch.nn."):
        return False
    if _MODE_DEPENDENT.search(index.context.module.code_for_node(built)):
        return False
    layers = [node for node in descendants(built) if isinstance(node, cst.Call) and node is not built and _is_class_call(node)]
    return all(_built_mode_free(index, layer, seen) for layer in layers)


def _is_class_call(call: cst.Call) -> bool:
    return (dotted_name(call.func) or "").rpartition(".")[2][:1].isupper()


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
