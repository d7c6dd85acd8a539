"""Which object a name holds where it is read, and which of a name's assignments that read sees.

Rules that compare objects across a file ask the same questions: is the model frozen here the one the
training loop calls (NN305), which assignment of `loss` does this `+=` add (NN506), which DataLoader
does this loop iterate (NN601). The index knows every binding of a name; this module picks the ones
that matter at a given statement:
- `reaching(bindings, at)`: the bindings a read at `at` sees (notebooks re-bind `model` and
  `train_loader`; an `if args.arch == ...` chain binds one name in each arm);
- `origins(path, function, at)`: the binding that built the object a dotted name holds, followed through
  wrappers (`model.to(device)`, `DDP(model)`), a helper's parameter at each of its call sites, what a
  factory returns (`model, size = build()`), `model = None` placeholders, loops over `X.children()` and
  `self.x` inside a class of the file; with the path of the part named (`model.layer4` -> "layer4");
- `sources(expr, function, at)`: the calls whose result an expression may be (a loop's iterable);
- `live_source(expr, function, at)`: where a value still attached to a model's autograd graph was built.
"""

from __future__ import annotations

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.dataflow import LIVE, DataFlow
from nnlint.script.index import Binding, FileIndex
from nnlint.script.roles import argument_for
from nnlint.tree import descendants, walk_with_ancestors

Origin = tuple[Binding, str]  # the binding that built an object, and the path of a part of it ("" = all)

_MAX_DEPTH = 6  # names, parameters and returns followed back by `origins`
_MAX_SOURCE_DEPTH = 4  # ... by `sources`
_MAX_LIVE_DEPTH = 12  # ... by `live_source`
_WRAPPER_METHODS = ("to", "cuda", "cpu", "float", "half", "double", "bfloat16", "train", "requires_grad_")
_WRAPPER_CALLS = ("DataParallel", "DistributedDataParallel", "DDP", "compile")
# Values that leave the graph: what they return is a number, or off the graph (counts, indices, masks).
_CUT_METHODS = {
    "item", "detach", "numpy", "tolist", "detach_",
    "argmax", "argmin", "eq", "ne", "gt", "lt", "ge", "le", "long", "int", "bool", "sign", "round", "floor",
}  # fmt: skip
_CUT_FUNCTIONS = {"float", "int", "round"}
# The statements, calls and binders `ancestors` is asked about (not every expression: it stays small).
_ANCESTOR_KEYS = (cst.SimpleStatementLine, cst.BaseSmallStatement, cst.Call, cst.Param, cst.For, cst.WithItem)


class Objects:
    def __init__(self, index: FileIndex, flow: DataFlow) -> None:
        self.index = index
        self.flow = flow
        self.context = index.context
        self._parents: dict[int, list[cst.CSTNode]] | None = None
        self._callers: dict[cst.FunctionDef, list[tuple[cst.Call, cst.FunctionDef | None]]] | None = None

    def ancestors(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """The nodes around a statement, call, parameter or loop, outermost first (one walk, on first use)."""
        if self._parents is None:
            self._parents = {
                id(n): list(a) for n, a in walk_with_ancestors(self.context.module, []) if isinstance(n, _ANCESTOR_KEYS)
            }
        return self._parents.get(id(node), [])

    def line(self, node: cst.CSTNode) -> int:
        return self.context.position(node).start.line

    def call_sites(self, function: cst.FunctionDef) -> list[tuple[cst.Call, cst.FunctionDef | None]]:
        """The calls of the file that run `function`, with the function each is in: what a parameter may hold."""
        if self._callers is None:
            self._callers = {}
            for call, caller in self.index.calls:
                callee = self.index.callee(call, caller)
                if callee is not None:
                    self._callers.setdefault(callee, []).append((call, caller))
        return self._callers.get(function, [])

    # -- which binding a read sees ---------------------------------------------------------------

    def reaching(self, bindings: list[Binding], at: cst.CSTNode, branches: bool = True,
                 same_line: bool = False) -> list[Binding]:
        """Of a name's bindings, those a read at `at` sees: the last one above it. A notebook re-creates
        `model` or `train_loader`, a later `loss = loss.item()` replaces the tensor. With `branches`, the
        last one written in an `if/elif` chain that does not hold `at` gives every arm of the chain (and the
        binding before the chain unless an `else` ends it), and one in a loop, `with` or `try` that does not
        hold `at` gives [] (it may not have run); without, blocks above count as run. With `same_line`, a
        binding on the line of `at` counts as above it (`x = f(x)`: the read in `f(x)` sees that binding)."""
        end = self.line(at) + 1 if same_line else self.line(at)
        before = sorted((b for b in bindings if self.line(b.node) < end), key=lambda b: self.line(b.node))
        if not before:
            return []
        last = before[-1]
        if not branches:
            return [last]
        around = set(map(id, self.ancestors(at)))
        blocks = [a for a in self.ancestors(last.node) if id(a) not in around]
        if any(isinstance(a, (cst.For, cst.While, cst.Try, cst.With)) for a in blocks):
            return []
        chain = next((a for a in blocks if isinstance(a, cst.If)), None)
        if chain is None:
            return [last]
        arms = [b for b in before if any(a is chain for a in self.ancestors(b.node))]
        earlier = [b for b in before if self.line(b.node) < self.line(chain)]
        return arms if _exhaustive(chain) or not earlier else [*arms, earlier[-1]]

    # -- which object a name holds ---------------------------------------------------------------

    def origins(self, path: str, function, at: cst.CSTNode | None = None, depth: int = 0) -> list[Origin]:
        """Every object the head of `path` may hold where `at` reads it, with the rest of the path; [] unknown."""
        if depth > _MAX_DEPTH:
            return []
        head, _, rest = path.partition(".")
        if head == "self":
            owner = self.index.owner_class.get(function) if function is not None else None
            return [(Binding("self", None, owner, owner), rest)] if owner is not None else []
        bindings = [b for b in self.index.lookup(head, function) if not _wraps_itself(b)]
        if len(bindings) > 1:
            bindings = self.reaching(bindings, at) if at is not None else []
        found = []
        for binding in bindings:
            if isinstance(binding.value, cst.Name) and binding.value.value == "None":
                continue  # `model = None` before the branches that build it
            inner = self.origins_of_binding(binding, depth)
            if not inner:
                return []
            found.extend((origin, ".".join(p for p in (part, rest) if p)) for origin, part in inner)
        return found

    def origins_of_binding(self, binding: Binding, depth: int = 0) -> list[Origin]:
        """The objects one binding gives its name: a parameter's argument at every call site, the object
        whose children a loop walks, the name or factory call assigned (through wrappers); [] unknown."""
        scope = binding.scope if isinstance(binding.scope, cst.FunctionDef) else None
        if isinstance(binding.node, cst.Param):
            found = []
            for call, caller in self.call_sites(scope):
                argument = argument_for(call, scope, binding.name)
                name = dotted_name(unwrap(argument)) if argument is not None else None
                if name is None:
                    return []
                found.extend(self.origins(name, caller, call, depth + 1))
            return found
        if isinstance(binding.node, cst.For):
            owner = children_of(binding.node.iter)  # `for child in list(model.children())[:7]`: part of model
            return self.origins(owner, scope, binding.node, depth + 1) if owner else []
        if binding.value is None:
            return []
        value = unwrap(binding.value)
        if isinstance(value, (cst.Name, cst.Attribute)) and dotted_name(value):
            return self.origins(dotted_name(value), scope, binding.node, depth + 1)
        if isinstance(value, cst.Call):
            callee = self.index.callee(value, scope)
            if callee is None:
                return [(binding, "")]
            returned = _returned(callee, binding)
            name = dotted_name(unwrap(returned)) if returned is not None else None
            return self.origins(name, callee, returned, depth + 1) if name else []
        return []

    def same(self, first: Binding, second: Binding) -> bool:
        """One object: the same binding, or an instance of the class whose `self` the other is."""
        if first.node is second.node:
            return True
        for a, b in ((first, second), (second, first)):
            if a.name == "self" and isinstance(a.node, cst.ClassDef) and b.value is not None:
                built = unwrap(b.value)
                if isinstance(built, cst.Call) and dotted_name(built.func) == a.node.name.value:
                    return True
        return False

    def part_of(self, parts: list[Origin], wholes: list[Origin]) -> str | None:
        """The path of one of `parts` inside an object of `wholes` that holds it (a model a loop calls)."""
        for binding, path in parts:
            for whole, part in wholes:
                if self.same(binding, whole) and (not part or (path + ".").startswith(part + ".")):
                    return path
        return None

    def covers(self, parts: list[Origin], others: list[Origin], only_wider: bool = False) -> bool:
        """Some of `others` is one of `parts`, holds it, or (unless `only_wider`) lies inside it."""
        return any(
            self.same(binding, other) and (_within(path, part) or not only_wider and _within(part, path))
            for binding, path in parts for other, part in others
        )

    # -- which calls an expression's value comes from --------------------------------------------

    def sources(self, expr: cst.BaseExpression, function, at: cst.CSTNode, depth: int = 0) -> list[cst.Call]:
        """The calls whose result an expression may be: through names (the assignment that reaches `at`),
        `self.` attributes, the parameters of the file's functions (at each call) and what they return."""
        if depth > _MAX_SOURCE_DEPTH:
            return []
        if isinstance(expr, cst.Call):
            callee = self.index.callee(expr, function)
            if callee is None:
                return [expr]
            return [source for r in returns(callee) for source in self.sources(r.value, callee, r, depth + 1)]
        name = dotted_name(expr)
        if name is None:
            return []
        found = []
        for binding in self._assignments_seen(name, function, at):
            if binding.value is not None:
                if not isinstance(binding.node, cst.WithItem):
                    found.extend(self.sources(binding.value, function, binding.node, depth + 1))
            elif isinstance(binding.node, cst.Param) and isinstance(binding.scope, cst.FunctionDef):
                for call, caller in self.call_sites(binding.scope):
                    argument = argument_for(call, binding.scope, name)
                    if argument is not None:
                        found.extend(self.sources(argument, caller, call, depth + 1))
        return found

    def _assignments_seen(self, name: str, function, at: cst.CSTNode) -> list[Binding]:
        """The bindings of a name a read sees, for `sources`: all of them unless it is assigned twice. Notebooks
        re-bind `train_loader` (a first, ordered one to compute statistics, then the shuffled one): a read in
        the same scope sees the last assignment above it or on its line, a read from a function the last of the
        file. (On its line: in `train_loader = cycle(train_loader)` the read resolves to that assignment, so the
        loop inside `cycle` does not count as reading the DataLoader outside training, and NN601 still judges
        that loader by its name.)"""
        bindings = self.index.lookup(name, function)
        assigned = [b for b in bindings if b.value is not None and not isinstance(b.node, cst.AugAssign)]
        if len(assigned) < 2:
            return bindings
        same_scope = all(b.scope is (function or self.context.module) for b in assigned)
        reached = self.reaching(assigned, at, branches=False, same_line=True) if same_scope else []
        return reached or [max(assigned, key=lambda b: self.line(b.node))]

    # -- whether a value is still on a model's graph ---------------------------------------------

    def live_source(self, expr: cst.BaseExpression, function, at: cst.CSTNode, position: int | None = None,
                    depth: int = 0) -> cst.CSTNode | None:
        """Where a value read at `at` was built, if it is still attached to a model's autograd graph there:
        names are read from the assignment that reaches `at` (`loss = loss.item()` just above wins over
        `loss = criterion(...)`), each arm of `a if c else b` and of arithmetic counts, a helper's return in
        the position a tuple target takes; None when it is cut (`.item()`, `.detach()`, `float()`, `.data`)."""
        if depth > _MAX_LIVE_DEPTH:
            return None

        def follow(part: cst.BaseExpression) -> cst.CSTNode | None:
            return self.live_source(part, function, at, None, depth + 1)

        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _CUT_METHODS:
            return None
        if isinstance(expr, cst.Call) and dotted_name(expr.func) in _CUT_FUNCTIONS:
            return None
        if isinstance(expr, cst.Attribute) and expr.attr.value == "data":
            return None
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and not self.context.call_name(expr):
            return follow(expr.func.value)  # `loss.mean()`, `loss.sum()`
        if isinstance(expr, cst.BinaryOperation):
            return follow(expr.left) or follow(expr.right)
        if isinstance(expr, cst.IfExp):
            return follow(expr.body) or follow(expr.orelse)
        if isinstance(expr, cst.UnaryOperation):
            return follow(expr.expression)
        if isinstance(expr, (cst.Tuple, cst.List)):  # `return output, loss.item()`
            return next((found for element in expr.elements if (found := follow(element.value))), None)
        name = dotted_name(expr)
        if name is not None:
            assigned = [b for b in self.index.lookup(name, function) if not isinstance(b.node, (cst.AugAssign, cst.Param))]
            reached = self.reaching(assigned, at, branches=False)
            if reached or isinstance(expr, cst.Name):
                binding = reached[0] if reached else None
                if binding is None or binding.value is None or not isinstance(binding.node, (cst.Assign, cst.AnnAssign)):
                    return None
                position = _position_in_target(binding.node, name)
                live = self.live_source(_part(binding.value, position), function, binding.node, position, depth + 1)
                return binding.node if live is not None else None
        callee = self.index.callee(expr, function) if isinstance(expr, cst.Call) else None
        if callee is not None:  # `output, loss = train(x, y)`: what the helper returns in that position
            live = (self.live_source(_part(r.value, position), callee, r, None, depth + 1) for r in returns(callee))
            return expr if any(found is not None for found in live) else None
        return expr if any(origin.kind == LIVE for origin in self.flow.origins(expr, function)) else None


def unwrap(value: cst.BaseExpression) -> cst.BaseExpression:
    """`Net().to(device)`, `DDP(model)`, `torch.compile(model)` -> what they wrap: the same module."""
    while isinstance(value, cst.Call):
        func = value.func
        if isinstance(func, cst.Attribute) and func.attr.value in _WRAPPER_METHODS:
            value = func.value
        elif (dotted_name(func) or "").rsplit(".", 1)[-1] in _WRAPPER_CALLS and value.args:
            value = value.args[0].value
        else:
            break
    return value


def returns(function: cst.FunctionDef) -> list[cst.Return]:
    """The `return value` statements of a function (what a factory or a step helper hands back)."""
    return [n for n in descendants(function) if isinstance(n, cst.Return) and n.value is not None]


def children_of(iterable: cst.BaseExpression) -> str | None:
    """`X` of `for c in X.children()`, `list(X.children())[:k]`, `enumerate(X.children())`: the first children
    of X, where a CNN keeps its stem and BatchNorm (a slice from the end is not accepted)."""
    if isinstance(iterable, cst.Subscript):
        index = iterable.slice[0].slice if len(iterable.slice) == 1 else None
        if not isinstance(index, cst.Slice) or index.lower is not None:
            return None
        iterable = iterable.value
    while isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("list", "enumerate") and iterable.args:
        iterable = iterable.args[0].value
    if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute):
        if iterable.func.attr.value in ("children", "named_children") and not iterable.args:
            return dotted_name(iterable.func.value)
    return None


def _wraps_itself(binding: Binding) -> bool:
    """`model = model.to(device)`: the name keeps its object."""
    if binding.value is None:
        return False
    inner = unwrap(binding.value)
    return inner is not binding.value and dotted_name(inner) == binding.name


def _returned(function: cst.FunctionDef, binding: Binding) -> cst.BaseExpression | None:
    """What a function returns for the name `binding` binds (the element of `a, b = f()` it takes)."""
    values = [r.value for r in returns(function)]
    if len(values) != 1:
        return None
    value = values[0]
    if isinstance(value, cst.Tuple) and isinstance(binding.node, cst.Assign):
        target = binding.node.targets[0].target
        if isinstance(target, (cst.Tuple, cst.List)):
            names = [dotted_name(e.value) for e in target.elements]
            if binding.name in names and len(names) == len(value.elements):
                return value.elements[names.index(binding.name)].value
        return None
    return value


def _exhaustive(chain: cst.If) -> bool:
    """An `if/elif/else` chain that ends in `else`: one arm always runs."""
    orelse = chain.orelse
    while isinstance(orelse, cst.If):
        orelse = orelse.orelse
    return orelse is not None


def _within(path: str, part: str) -> bool:
    """`path` is `part` or inside it ("" is the whole object)."""
    return not part or path == part or path.startswith(part + ".")


def _position_in_target(assign: cst.CSTNode, name: str) -> int | None:
    """1 for `loss` in `output, loss = ...`; None for a plain `loss = ...`."""
    target = assign.targets[0].target if isinstance(assign, cst.Assign) and len(assign.targets) == 1 else None
    if isinstance(target, (cst.Tuple, cst.List)):
        names = [dotted_name(element.value) for element in target.elements]
        return names.index(name) if name in names else None
    return None


def _part(value: cst.BaseExpression, position: int | None) -> cst.BaseExpression:
    """The element a tuple target's name takes from a tuple value (`return output, loss.item()`)."""
    if position is not None and isinstance(value, (cst.Tuple, cst.List)) and position < len(value.elements):
        return value.elements[position].value
    return value
