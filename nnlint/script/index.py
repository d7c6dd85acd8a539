"""One walk over a file that records where its functions, classes and bindings are.

Every other fact of the script model (roles, the timeline of the training
run, data flow) asks this index instead of walking the tree again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import libcst as cst

from nnlint.context import FileContext
from nnlint.names import dotted_name
from nnlint.tree import walk_with_ancestors

Scope = cst.FunctionDef | cst.ClassDef | cst.Module

# Base classes that make a class an nn.Module (the file's own classes deriving from them count too).
_MODULE_BASES = re.compile(
    r"(^|\.)(Module|Sequential|ModuleList|LightningModule|PreTrainedModel|ModelMixin|[A-Z]\w*(Net|Model|Module|Block|Layer))$"
)
_MODULE_BASE_PREFIXES = ("torch.nn.", "pytorch_lightning.", "lightning.", "transformers.", "timm.")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def words(name: str) -> list[str]:
    """The lower-case words of an identifier: `trainLoader_v2` -> ["train", "loader", "v", "2"]."""
    return [word.lower() for word in _WORD.findall(name)]


@dataclass(frozen=True)
class Binding:
    """`name = value` (or a parameter, or a loop target) in a scope: what the name may hold there."""

    name: str  # dotted: "model", "self.model"
    value: cst.BaseExpression | None  # None for parameters and loop targets
    node: cst.CSTNode  # the statement, parameter or loop
    scope: Scope


@dataclass
class FileIndex:
    context: FileContext
    functions: dict[str, list[cst.FunctionDef]] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    # The scope each function, call and binding lives in (its innermost function, or class for `self.x`).
    bindings: dict[tuple[Scope, str], list[Binding]] = field(default_factory=dict)
    calls: list[tuple[cst.Call, cst.FunctionDef | None]] = field(default_factory=list)
    owner_class: dict[cst.FunctionDef, cst.ClassDef] = field(default_factory=dict)
    parent_function: dict[cst.FunctionDef, cst.FunctionDef | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Dispatch on the exact type: isinstance against libcst's abstract bases costs more than the walk.
        read = {
            cst.FunctionDef: self._read_function, cst.ClassDef: self._read_class, cst.Call: self._read_call,
            cst.Assign: self._read_assignment, cst.AnnAssign: self._read_assignment, cst.AugAssign: self._read_assignment,
            cst.For: self._read_loop, cst.CompFor: self._read_loop, cst.WithItem: self._read_with,
        }  # fmt: skip
        for node, ancestors in walk_with_ancestors(self.context.module, []):
            handler = read.get(type(node))
            if handler is not None:
                handler(node, ancestors)

    def _read_class(self, node: cst.ClassDef, ancestors: list[cst.CSTNode]) -> None:
        self.classes.setdefault(node.name.value, node)

    def _read_call(self, node: cst.Call, ancestors: list[cst.CSTNode]) -> None:
        self.calls.append((node, _innermost(ancestors, cst.FunctionDef)))

    def _read_assignment(self, node: cst.Assign | cst.AnnAssign | cst.AugAssign, ancestors: list[cst.CSTNode]) -> None:
        if node.value is not None:
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            for target in targets:
                self._bind_target(target, node.value, node, ancestors)

    def _read_loop(self, node: cst.For | cst.CompFor, ancestors: list[cst.CSTNode]) -> None:
        self._bind_target(node.target, None, node, ancestors)

    def _read_with(self, node: cst.WithItem, ancestors: list[cst.CSTNode]) -> None:
        if node.asname is not None:
            self._bind_target(node.asname.name, node.item, node, ancestors)

    def _read_function(self, function: cst.FunctionDef, ancestors: list[cst.CSTNode]) -> None:
        self.functions.setdefault(function.name.value, []).append(function)
        parent = ancestors[-1] if ancestors else None
        grandparent = ancestors[-2] if len(ancestors) > 1 else None
        if isinstance(parent, cst.IndentedBlock) and isinstance(grandparent, cst.ClassDef):
            self.owner_class[function] = grandparent
        self.parent_function[function] = _innermost(ancestors, cst.FunctionDef)
        params = function.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            self._add(Binding(param.name.value, None, param, function))

    def _bind_target(self, target: cst.BaseExpression, value, node: cst.CSTNode, ancestors) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            # `prediction, hidden = rnn(x)`: each name holds part of the value (what data flow needs).
            for element in target.elements:
                self._bind_target(element.value, value, node, ancestors)
            return
        name = dotted_name(target)
        if name is not None:
            self._add(Binding(name, value, node, self.scope_of(name, ancestors)))

    def _add(self, binding: Binding) -> None:
        self.bindings.setdefault((binding.scope, binding.name), []).append(binding)

    def scope_of(self, name: str, ancestors: list[cst.CSTNode]) -> Scope:
        """Where a name lives: the class for `self.x`, else the innermost function, else the module."""
        if name.startswith("self."):
            found = _innermost(ancestors, cst.ClassDef)
        else:
            found = _innermost(ancestors, cst.FunctionDef)
        return found if found is not None else self.context.module

    def lookup(self, name: str, function: cst.FunctionDef | None) -> list[Binding]:
        """The bindings a read of `name` inside `function` may see: its own scope's, else the enclosing
        functions', else the module's (`self.x` reads the bindings of the method's class)."""
        if name.startswith("self."):
            owner = self.owner_class.get(function) if function is not None else None
            return self.bindings.get((owner, name), []) if owner is not None else []
        scope = function
        while scope is not None:
            found = self.bindings.get((scope, name))
            if found:
                return found
            scope = self.parent_function.get(scope)
        return self.bindings.get((self.context.module, name), [])

    def callee(self, call: cst.Call, caller: cst.FunctionDef | None) -> cst.FunctionDef | None:
        """The function of this file a call runs: `train(...)`, `self.train_epoch(...)` (one definition)."""
        func = call.func
        if isinstance(func, cst.Name):
            candidates = [f for f in self.functions.get(func.value, []) if f not in self.owner_class]
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            owner = self.owner_class.get(caller) if caller is not None else None
            candidates = [f for f in self.functions.get(func.attr.value, []) if self.owner_class.get(f) is owner]
        else:
            return None
        return candidates[0] if len(candidates) == 1 else None

    @cached_property
    def module_classes(self) -> frozenset[str]:
        """Names of this file's classes that are nn.Modules, through the file's own base classes too."""
        found: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, cls in self.classes.items():
                if name not in found and any(self._is_module_base(base.value, found) for base in cls.bases):
                    found.add(name)
                    changed = True
        return frozenset(found)

    def _is_module_base(self, base: cst.BaseExpression, found: set[str]) -> bool:
        written = dotted_name(base)
        if written is None:
            return False
        if written in found:
            return True
        qualified = self.context.qualified_name(base) or written
        if qualified.startswith(_MODULE_BASE_PREFIXES):
            return bool(_MODULE_BASES.search(qualified))
        return written in ("Module", "nn.Module")


def _innermost(ancestors: list[cst.CSTNode], types) -> cst.CSTNode | None:
    return next((node for node in reversed(ancestors) if isinstance(node, types)), None)
