"""What the parent reads from the project's sources before probing (torch-free, never imports them):
which files define models, and the constant arguments the code builds them with.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

NAME_ARGUMENT = "$name"  # the key of an argument that is a name, not a constant
_MODULE_BASES = ("Module",)  # nn.Module, torch.nn.Module, LightningModule, a local base ...


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError, OSError, RecursionError):
        return None  # the static pass reports it (NN901)


def _base_name(base: ast.expr) -> str:
    return base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""


def model_classes(trees: dict[Path, ast.Module]) -> dict[Path, int]:
    """By file, how many classes derive, through the project's own classes, from a `...Module` base
    (files with none left out)."""
    bases = {
        node.name: [_base_name(base) for base in node.bases]
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }

    def is_model(name: str, seen: frozenset = frozenset()) -> bool:
        if name.endswith(_MODULE_BASES):
            return True
        return name in bases and name not in seen and any(is_model(b, seen | {name}) for b in bases[name])

    counts = {
        path: sum(isinstance(node, ast.ClassDef) and is_model(node.name) for node in ast.walk(tree))
        for path, tree in trees.items()
    }
    return {path: count for path, count in counts.items() if count}


def constructor_calls(trees: dict[Path, ast.Module], display: dict[Path, str]) -> dict[str, list[dict[str, Any]]]:
    """`Name(constant or name args...)` calls anywhere in the project, by callee name: how the code builds its models."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not _base_name(node.func)[:1].isupper():
                continue
            try:
                args = [_argument(arg) for arg in node.args]
                kwargs = {kw.arg: _argument(kw.value) for kw in node.keywords if kw.arg is not None}
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
            if len(kwargs) != len(node.keywords) or not (args or kwargs) or not _is_json(args, kwargs):
                continue  # **kwargs, nothing to learn, or a set/bytes the child cannot receive
            where = f"{display[path]}:{node.lineno}"
            calls.setdefault(_base_name(node.func), []).append({"args": args, "kwargs": kwargs, "where": where})
    return calls


def _argument(node: ast.expr) -> Any:
    """A constant, or a bare name as `{NAME_ARGUMENT: "BasicBlock"}`: `ResNet(BasicBlock, [2, 2, 2, 2])`
    passes a class the probe process looks up in the model's module (nnlint.confirm.models)."""
    if isinstance(node, ast.Name):
        return {NAME_ARGUMENT: node.id}
    return ast.literal_eval(node)


def _is_json(*values: Any) -> bool:
    try:
        json.dumps(values)
    except (TypeError, ValueError):
        return False
    return True


def read_project(files: list[Path], display: dict[Path, str]) -> tuple[dict[Path, int], dict[str, list[dict[str, Any]]]]:
    """(model classes by file, as `model_classes`; the constructor calls, as `constructor_calls`)."""
    trees = {path: tree for path in files if (tree := _parse(path)) is not None}
    return model_classes(trees), constructor_calls(trees, display)
