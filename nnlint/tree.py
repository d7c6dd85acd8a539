"""Fast reads of a libcst tree, shared by the engine, the facts modules and the rules.

libcst's own `visit` and `children` rebuild every node they pass (4 to 15
times the cost of reading the dataclass fields); rules that look around a
node use these instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from functools import cache

import libcst as cst

# Fields that only hold whitespace and punctuation: no rule looks inside them,
# and skipping them roughly halves the nodes a walk touches.
_PUNCTUATION_FIELDS = frozenset(
    {
        "lpar", "rpar", "lbracket", "rbracket", "lbrace", "rbrace", "comma", "semicolon", "colon",
        "equal", "dot", "star", "leading_lines", "lines_after_decorators", "header", "footer",
        "newline", "trailing_whitespace",
    }
)  # fmt: skip
_EMPTY_MODULE = cst.Module(body=[])


@cache
def child_fields(node_type: type) -> tuple[str, ...]:
    """The fields of a node type that can hold code (not whitespace or punctuation), in source order."""
    return tuple(
        f.name
        for f in dataclasses.fields(node_type)
        if f.name not in _PUNCTUATION_FIELDS and not f.name.startswith("whitespace")
    )


def _concrete_node_types() -> frozenset[type]:
    found, pending = set(), [cst.CSTNode]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.add(subclass)
            pending.append(subclass)
    return frozenset(found)


# Every node class: a set lookup on the exact type, where isinstance against libcst's abstract base
# classes goes through the ABC machinery on each of the millions of fields a walk reads.
_NODE_TYPES = _concrete_node_types()
_SEQUENCES = (list, tuple)


def child_nodes(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    for name in child_fields(type(node)):
        value = getattr(node, name)
        kind = type(value)
        if kind in _NODE_TYPES:
            yield value
        elif kind in _SEQUENCES:
            for item in value:
                if type(item) in _NODE_TYPES:
                    yield item


def descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node` and every node under it (order unspecified)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(child_nodes(current))


def walk_with_ancestors(
    node: cst.CSTNode, ancestors: list[cst.CSTNode] | None = None
) -> Iterator[tuple[cst.CSTNode, list[cst.CSTNode]]]:
    """Every node under `node` in source order, with the (live) list of nodes enclosing it.

    An explicit stack, not nested generators: `yield from` through a deep tree costs its depth per node."""
    ancestors = [] if ancestors is None else ancestors
    stack: list[tuple[cst.CSTNode, bool]] = [(node, False)]
    while stack:
        current, leaving = stack.pop()
        if leaving:
            ancestors.pop()
            continue
        yield current, ancestors
        ancestors.append(current)
        stack.append((current, True))
        stack.extend((child, False) for child in reversed(list(child_nodes(current))))


def source_code(node: cst.CSTNode) -> str:
    """The code a node was parsed from (as libcst prints it)."""
    return _EMPTY_MODULE.code_for_node(node)


def integer_value(node: cst.BaseExpression | None) -> int | None:
    """The value of an integer literal such as `2` or `-1`; None for anything else."""
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        value = integer_value(node.expression)
        return None if value is None else -value
    return None
