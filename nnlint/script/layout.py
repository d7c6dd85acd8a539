"""Symbolic tensor layouts within each function: which dims each tensor name holds, in which order,
carried through what keeps or moves dims instead of being forgotten at the next assignment.

One walk of the file in source order, on first use (`script.layouts`), keeps per function:
- size reads (`SizeReads`): which dims of which tensor variable a size variable multiplies
  (`b, c, h, w = x.shape`, `c = x.size(1)`, `n = h * w`), by index; any assignment to either name
  forgets them (the view-as-permute check compares a view's sizes with its receiver's own dims);
- a `Layout` per tensor name: its dims as symbolic atoms (`B, T, C = x.shape` names three; layers,
  transpose / permute / flatten / unflatten, view / reshape, chunk / split / unbind,
  `einops.rearrange`, `@` carry them to new names), whether dim 0 is shown to be the batch and by
  which statement, how dim 0 folds the batch with other dims (`x.view(-1, c)` of a `(b, t, c)`), and
  whether the tensor was padded or cut from a view (the relative-shift skew);
- the layer kind of each `self.<attr> = nn.<Layer>(...)` of a class: what its call does to dims.

Only functions that hold a view, a reshape or a reduction (`LAYOUT_CALLS`, found in the file's index)
are walked, and the functions enclosing them: the rest hold nothing the rules ask about, and most
functions of a model file are like that. Layer kinds come from the index's `self.<attr> = ...`
bindings, so skipping `__init__` loses none of them.

Rules read the results after the walk: `views` (every view/reshape with its target sizes read as
the receiver's dims) and `at(call)` (the layouts of a call's receiver and first argument where the
call runs). Attributes (`self.x`) are never tracked: a method call can change them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import count

import libcst as cst

from nnlint.context import FileContext
from nnlint.names import dotted_name
from nnlint.script.index import FileIndex
from nnlint.tree import child_nodes, integer_value

VIEWS = {"view", "reshape"}
# Methods (and `torch.` functions of the same name) that reduce over a dim they are given.
REDUCTIONS = {
    "sum", "mean", "nansum", "nanmean", "prod", "std", "var", "amax", "amin", "max", "min", "median", "logsumexp",
    "softmax", "log_softmax", "cumsum", "cumprod", "norm",
}  # fmt: skip
# The calls a rule asks layouts about: a function without any of them is not walked.
LAYOUT_CALLS = VIEWS | REDUCTIONS | {"view_as", "reshape_as", "normalize"}
# In-place methods that change a tensor's dims: sizes unpacked before them no longer describe it.
RESHAPED_IN_PLACE = {
    "t_", "transpose_", "swapdims_", "swapaxes_", "squeeze_", "unsqueeze_", "resize_", "resize_as_",
    "as_strided_", "set_",
}  # fmt: skip
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_STATEMENTS = (cst.SimpleStatementLine, cst.BaseCompoundStatement)
# Nodes with nothing under them that a layout depends on: the walk does not enter them (most nodes are names).
_LEAVES = frozenset(
    {cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString}
    | {cst.Annotation, cst.Parameters, cst.Import, cst.ImportFrom, cst.Pass, cst.Break, cst.Continue, cst.Dot}
)
# Names a batch size goes by; `n` is left out on purpose: in graph code `n, c = x.shape` counts nodes.
BATCH_SIZE_NAME = re.compile(r"^(b|bs|bsz|bsize|nb|batch|batch_?size|n_?batch(es)?|num_?batch(es)?)$", re.IGNORECASE)
# Calls that keep dim 0 where it is; what they do to the other dims is `_FUNCTION_DIMS`'.
_KEEPS_BATCH_FUNCTIONS = {
    f"torch.nn.functional.{name}"
    for name in (
        "relu", "gelu", "silu", "elu", "leaky_relu", "mish", "softplus", "sigmoid", "tanh", "hardswish", "dropout",
        "linear", "conv1d", "conv2d", "conv3d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
        "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "layer_norm", "group_norm", "pad",
        "interpolate", "softmax", "log_softmax",
    )
} | {f"torch.{name}" for name in ("relu", "sigmoid", "tanh", "exp", "log", "abs", "sqrt", "clamp", "softmax")}  # fmt: skip
_KEEPS_BATCH_METHODS = {
    "contiguous", "float", "double", "half", "bfloat16", "to", "clone", "detach", "relu", "sigmoid", "tanh", "exp",
    "log", "abs", "sqrt", "neg", "clamp", "type_as", "cpu", "cuda",
}  # fmt: skip
# Element-wise methods: the result has the receiver's dims.
_SAME_DIMS_METHODS = {"softmax", "log_softmax", "masked_fill", "mul", "add", "sub", "div", "pow", "type", "sigmoid"}
# What a layer (or its functional form) does to the dims: SAME keeps them all, LAST replaces the last
# (features), APPEND adds one (embedding), SPATIAL keeps only dim 0 (channels and spatial sizes change).
SAME, LAST, APPEND, SPATIAL = "same", "last", "append", "spatial"
_LAYER_DIMS = [
    (re.compile(r"(^|\.)(Lazy)?Linear$"), LAST),
    (re.compile(r"(^|\.)Embedding$"), APPEND),
    (re.compile(r"(^|\.)((Lazy)?(Conv|ConvTranspose)[123]d|\w*Pool[123]d|Upsample)$"), SPATIAL),
    (
        re.compile(
            r"(^|\.)(LayerNorm|RMSNorm|GroupNorm|(Lazy)?(BatchNorm|InstanceNorm)[123]d|Dropout\w*|Identity|"
            r"ReLU6?|GELU|SiLU|Tanh|Sigmoid|LeakyReLU|ELU|Mish|Hardswish|Softplus|Softmax)$"
        ),
        SAME,
    ),
]
# Layers whose input is (N, C, ...) by their API: dim 0 of what they return is the batch (a Linear's is
# not: it also takes time-major (T, B, C) input).
_BATCH_FIRST_LAYERS = re.compile(r"(^|\.)(Lazy)?(Conv|ConvTranspose|BatchNorm)[123]d$")
_FUNCTION_DIMS = {"linear": LAST, "pad": None, "interpolate": SPATIAL, "layer_norm": SAME, "group_norm": SAME}


def layer_dims(qualified: str | None) -> str | None:
    """SAME / LAST / APPEND / SPATIAL for a layer class or functional name, None when unknown."""
    if qualified is None:
        return None
    for pattern, kind in _LAYER_DIMS:
        if pattern.search(qualified):
            return kind
    if qualified.startswith("torch.nn.functional."):
        short = qualified.rsplit(".", 1)[1]
        if short in _FUNCTION_DIMS:
            return _FUNCTION_DIMS[short]
        return SPATIAL if "conv" in short or "pool" in short else SAME
    return SAME if qualified.startswith("torch.") and qualified in _KEEPS_BATCH_FUNCTIONS else None


# -- size reads by index (what view-as-permute compares) -----------------------------------------


@dataclass(frozen=True)
class Dim:
    """Dim `index` of the tensor held by the variable `tensor` (negative: counted from the end)."""

    tensor: str
    index: int


@dataclass(frozen=True)
class Size:
    """One target size of a view: the receiver's dims it is made of (`h * w` is two), `()` for a
    literal 1, None for a size that may stand for any run of dims (`-1`, a literal, an unrelated
    expression); `atoms`: the same size as symbolic dims of the receiver's layout (None: unknown)."""

    arg: cst.Arg | cst.BaseElement
    dims: tuple[int, ...] | None
    wildcard: bool = False
    atoms: tuple[str, ...] | None = None

    @property
    def text(self) -> str:
        """The size as written (`h * w`, `*shape`); only needed for a finding's message."""
        return ("*" if starred(self.arg) else "") + cst.Module([]).code_for_node(self.arg.value)


@dataclass
class SizeReads:
    """What one function body has said so far about its tensors' dims by index, in source order."""

    # size variable -> the dims whose product it holds (`c = x.size(1)`: one; `n = h * w`: two)
    sizes: dict[str, tuple[Dim, ...]] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)  # tensor variable -> its number of dims
    # Names learnt inside each enclosing `if` branch: after the `if`, they may hold either branch's value.
    branches: list[set[str]] = field(default_factory=list)

    def forget(self, name: str) -> None:
        """`name` was assigned: it no longer holds the size or the tensor it held."""
        self.sizes.pop(name, None)
        self.ranks.pop(name, None)
        for size, dims in list(self.sizes.items()):
            if any(dim.tensor == name for dim in dims):
                del self.sizes[size]

    def learn(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """Sizes bound by `b = x.size(0)`, `b, c, h, w = x.shape`, `h, w = x.shape[2:]`, `n = h * w`."""
        if isinstance(target, cst.Name):
            self._bind(target, self.product(value))
            return
        if not isinstance(target, (cst.Tuple, cst.List)):
            return
        names = [element.value for element in target.elements]
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(names):
            for name, element in zip(names, value.elements):
                self._bind(name, self.product(element.value))
            return
        read = unpacked_dims(target, value)
        if read is None:
            return
        tensor, indexes, rank = read
        if rank is not None:
            self.ranks[tensor] = rank
            self._in_branch(tensor)
        for name, index in zip(names, indexes):
            self._bind(name, None if index is None else (Dim(tensor, index),))

    def product(self, expr: cst.BaseExpression, hidden: frozenset[str] = frozenset()) -> tuple[Dim, ...] | None:
        """The dims a size expression multiplies (`c`, `x.size(1)`, `h * w`, `1`); None if it is anything else.
        Variables in `hidden` are not this function's (a comprehension rebinds them)."""
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
            left, right = self.product(expr.left, hidden), self.product(expr.right, hidden)
            return None if left is None or right is None else left + right
        if integer_value(expr) == 1:
            return ()
        if isinstance(expr, cst.Name):
            return None if expr.value in hidden else self.sizes.get(expr.value)
        dim = size_read(expr)
        return None if dim is None else (dim,)

    def dim_names(self, tensor: str, rank: int) -> list[str]:
        """The newest size variable naming each dim of `tensor` (`_` for none)."""
        names = ["_"] * rank
        for name, dims in self.sizes.items():
            if len(dims) == 1 and dims[0].tensor == tensor and -rank <= dims[0].index < rank:
                names[dims[0].index % rank] = name
        return names

    def _bind(self, name: cst.BaseExpression, dims: tuple[Dim, ...] | None) -> None:
        if dims and isinstance(name, cst.Name) and name.value != "_":
            self.sizes.pop(name.value, None)  # re-inserted last: the newest name of a dim is the one shown
            self.sizes[name.value] = dims
            self._in_branch(name.value)

    def _in_branch(self, name: str) -> None:
        if self.branches:
            self.branches[-1].add(name)


# -- layouts -------------------------------------------------------------------------------------

Dims = tuple[tuple[str, ...], ...]  # per dim, the atoms it merges in order


@dataclass(frozen=True)
class Fold:
    """Dim 0 of a tensor holds these dims of a batch-major one, merged in this order (`x.view(-1, c)` of
    an `x` unpacked as `b, t, c`: ("b", "t")), as the statement shows."""

    order: tuple[str, ...]
    statement: cst.CSTNode


@dataclass(frozen=True)
class Layout:
    """What is known of one tensor where it is read."""

    dims: Dims | None = None  # None: rank unknown
    batch: cst.CSTNode | None = None  # the statement showing dim 0 holds the batch
    fold: Fold | None = None
    padded: bool = False  # F.pad / torch.cat made it: a view with swapped sizes is a deliberate skew
    view: cst.Call | None = None  # the view/reshape that made it
    shifted: cst.Call | None = None  # a view whose result was sliced: viewing this again is a skew

    def __bool__(self) -> bool:
        return bool(self.dims is not None or self.batch or self.fold or self.padded or self.view or self.shifted)


@dataclass
class View:
    """A `.view()` / `.reshape()` / `torch.reshape` call, read where it runs."""

    call: cst.Call
    receiver: cst.BaseExpression
    tensor: str | None  # the receiver's variable (`x`, `self.pos_embed`), None for an expression
    sizes: list[Size]
    rank: int | None  # the receiver's number of dims, from size reads
    dim_names: list[str] | None  # the receiver's dims by the size variables read from it
    source: Layout | None  # the receiver's layout
    skew: bool = False  # padded first, or sliced and viewed again after: a deliberate shift


@dataclass(frozen=True)
class CallFacts:
    call: cst.Call
    function: cst.FunctionDef | None
    ancestors: tuple[cst.CSTNode, ...]
    receiver: Layout | None  # of `x` in `x.method(...)`
    argument: Layout | None  # of the first positional argument


@dataclass
class _Scope:
    sizes: SizeReads = field(default_factory=SizeReads)
    tensors: dict[str, Layout] = field(default_factory=dict)
    atoms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # size variable -> atoms it multiplies
    batch_sizes: set[str] = field(default_factory=set)  # variables holding the batch size
    shape_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tensor -> `b, t, c = x.shape`
    layers: set[str] = field(default_factory=set)  # loop variables over a module's layers
    branches: list[set[str]] = field(default_factory=list)  # tensors assigned in each enclosing `if`


class Layouts:
    """The walk; see the module docstring."""

    def __init__(self, context: FileContext, index: FileIndex) -> None:
        self.context = context
        self._index = index
        self._wanted = _functions_with_layout_calls(index)
        self.views: list[View] = []
        self.calls: dict[cst.Call, CallFacts] = {}  # the calls with a known layout around them, in source order
        self._owner: dict[cst.FunctionDef, cst.ClassDef] = {}
        self._views_by_call: dict[cst.Call, View] = {}
        self._fresh = count()
        self._scopes = [_Scope()]
        self._functions: list[cst.FunctionDef | None] = [None]
        self._classes: list[cst.ClassDef] = []
        self._ancestors: list[cst.CSTNode] = []
        self._visit = {
            cst.FunctionDef: self._visit_function, cst.Lambda: self._visit_lambda, cst.ClassDef: self._classes.append,
            cst.If: self._visit_if, cst.For: self._visit_loop, cst.While: self._visit_loop, cst.Call: self._visit_call,
            cst.WithItem: self._visit_with, cst.Else: self._visit_else,
        }  # fmt: skip
        self._leave = {
            cst.FunctionDef: self._leave_function, cst.Lambda: self._leave_lambda,
            cst.ClassDef: lambda node: self._classes.pop(), cst.If: self._leave_if, cst.Assign: self._leave_assign,
            cst.AnnAssign: self._leave_assign, cst.AugAssign: self._leave_assign, cst.NamedExpr: self._leave_assign,
        }  # fmt: skip
        self._walk(context.module)

    # -- what rules read ---------------------------------------------------------------------------

    def at(self, call: cst.Call) -> CallFacts | None:
        """The layouts of a call's receiver and first argument where it runs (None: nothing known)."""
        return self.calls.get(call)

    def owner_class(self, function: cst.FunctionDef | None) -> cst.ClassDef | None:
        return self._owner.get(function) if function is not None else None

    def name(self, atom: str) -> str:
        """An atom as written: the size variable it was read into (`T`), or `_`."""
        return atom.split("#", 1)[0] or "_"

    # -- the walk ----------------------------------------------------------------------------------

    def _walk(self, root: cst.CSTNode) -> None:
        stack: list[tuple[cst.CSTNode, bool]] = [(root, False)]
        visit, leave, ancestors = self._visit, self._leave, self._ancestors
        while stack:
            node, leaving = stack.pop()
            if leaving:
                ancestors.pop()
                handler = leave.get(type(node))
                if handler is not None:
                    handler(node)
                continue
            handler = visit.get(type(node))
            if handler is not None:
                handler(node)
            ancestors.append(node)
            stack.append((node, True))
            if type(node) is cst.FunctionDef and node not in self._wanted:
                continue
            children = [child for child in child_nodes(node) if type(child) not in _LEAVES]
            stack.extend((child, False) for child in reversed(children))

    @property
    def _scope(self) -> _Scope:
        return self._scopes[-1]

    def _visit_function(self, node: cst.FunctionDef) -> None:
        if len(self._ancestors) >= 2 and isinstance(self._ancestors[-2], cst.ClassDef):
            self._owner[node] = self._ancestors[-2]
        self._scopes.append(_Scope())
        self._functions.append(node)

    def _leave_function(self, node: cst.FunctionDef) -> None:
        self._scopes.pop()
        self._functions.pop()

    def _visit_lambda(self, node: cst.Lambda) -> None:
        # Own size reads; the enclosing function's tensors stay visible (its parameters are hidden).
        outer = self._scope
        self._scopes.append(replace(outer, sizes=SizeReads(), branches=[]))

    def _leave_lambda(self, node: cst.Lambda) -> None:
        self._scopes.pop()

    def _visit_if(self, node: cst.If) -> None:
        parent = self._ancestors[-1] if self._ancestors else None
        if isinstance(parent, cst.If) and node is parent.orelse:  # `elif`: the arm before it did not run
            self._visit_else(node)
        self._scope.sizes.branches.append(set())
        self._scope.branches.append(set())

    def _visit_else(self, node: cst.Else | cst.If) -> None:
        """The `else` arm does not see what the `if` arm assigned: its tensors' dims are unknown there."""
        scope = self._scope
        for name in scope.branches[-1] if scope.branches else ():
            scope.atoms.pop(name, None)
            self._drop_dims(name)

    def _leave_if(self, node: cst.If) -> None:
        scope = self._scope
        for name in scope.sizes.branches.pop():
            scope.sizes.forget(name)
        for name in scope.branches.pop():  # either branch's layout: only what both keep (dim 0) is known
            scope.atoms.pop(name, None)
            if name in scope.tensors:
                scope.tensors[name] = replace(scope.tensors[name], dims=None)

    def _visit_with(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._forget_batch(node.asname.name)

    def _visit_loop(self, loop: cst.For | cst.While) -> None:
        """A loop's next iteration sees what its body assigned: forget it before the first one."""
        scope = self._scope
        if isinstance(loop, cst.For):
            self._forget_batch(loop.target)
            if isinstance(loop.target, cst.Name) and _iterates_layers(loop.iter):
                scope.layers.add(loop.target.value)
        if not (scope.sizes.sizes or scope.sizes.ranks or scope.tensors):
            return
        pending: list[cst.CSTNode] = [loop]
        while pending:
            node = pending.pop()
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                continue
            if isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.For, cst.NamedExpr)):
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for target in targets:
                    for name in assigned_names(target):
                        scope.sizes.forget(name)
                        self._drop_dims(name)
            elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                if node.func.attr.value in RESHAPED_IN_PLACE:
                    for name in assigned_names(node.func.value):
                        scope.sizes.forget(name)
                        self._drop_dims(name)
            pending.extend(child_nodes(node))

    def _drop_dims(self, name: str) -> None:
        layout = self._scope.tensors.get(name)
        if layout is not None and layout.dims is not None:
            self._scope.tensors[name] = replace(layout, dims=None)

    # -- assignments -------------------------------------------------------------------------------

    def _leave_assign(self, node) -> None:
        targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        value = node.value
        scope = self._scope
        if isinstance(node, cst.AugAssign) or value is None:  # `x += y` keeps a tensor's layout, not a size
            for target in targets:
                for name in assigned_names(target):
                    scope.sizes.forget(name)
                    scope.atoms.pop(name, None)
            return
        layout = self._eval(value)  # before the target's old value is forgotten: `x = self.fc(x)`
        parts = self._parts(value, len(targets[0].elements)) if isinstance(targets[0], (cst.Tuple, cst.List)) else None
        atoms = self._atoms_of(value)
        for target in targets:
            for name in assigned_names(target):
                scope.sizes.forget(name)
        for target in targets:
            scope.sizes.learn(target, value)
            self._forget_batch(target)
            self._learn(target, value, layout, parts, atoms)

    def _forget_batch(self, target: cst.BaseExpression) -> None:
        scope = self._scope
        for name in _names_in(target):
            scope.tensors.pop(name, None)
            scope.batch_sizes.discard(name)
            scope.shape_names.pop(name, None)
            scope.atoms.pop(name, None)
            scope.layers.discard(name)
            for tensor in [t for t, names in scope.shape_names.items() if name in names]:
                del scope.shape_names[tensor]  # a size it was read with changed

    def _learn(self, target, value, layout: Layout | None, parts: list[Layout | None] | None, atoms) -> None:
        scope = self._scope
        if isinstance(target, (cst.Tuple, cst.List)):
            self._learn_unpacking(target, value, parts)
            return
        if not isinstance(target, cst.Name):
            return
        name = target.value
        if branches := scope.branches:
            branches[-1].add(name)
        tensor = sized_tensor(value, whole_shape=False)
        if tensor is not None and BATCH_SIZE_NAME.match(name):
            scope.batch_sizes.add(name)
            self._show_batch(tensor)
        elif layout:
            scope.tensors[name] = layout
        if atoms:
            scope.atoms[name] = atoms  # in an `if` branch: forgotten after it, with the tensors

    def _learn_unpacking(self, target: cst.Tuple | cst.List, value, parts: list[Layout | None] | None) -> None:
        scope = self._scope
        elements = target.elements
        if parts is not None:
            for element, part in zip(elements, parts):
                if isinstance(element.value, cst.Name) and part:
                    scope.tensors[element.value.value] = part
            return
        first = elements[0] if elements else None
        tensor = sized_tensor(value, whole_shape=True)
        if isinstance(first, cst.Element) and isinstance(first.value, cst.Name) and tensor is not None:
            if BATCH_SIZE_NAME.match(first.value.value):
                scope.batch_sizes.add(first.value.value)
                self._show_batch(tensor)
                names = [e.value.value for e in elements if isinstance(e.value, cst.Name)]
                if len(names) == len(elements) and shape_owner(value) is not None:  # the whole shape
                    scope.shape_names[tensor] = tuple(names)
        read = unpacked_dims(target, value)
        if read is None or "." in read[0]:
            return
        tensor, indexes, rank = read
        if scope.branches:
            scope.branches[-1].update([tensor, *_names_in(target)])
        layout = scope.tensors.get(tensor) or Layout()
        dims = layout.dims
        if rank is not None and None not in indexes and (dims is None or len(dims) != rank):  # name its dims
            dims = tuple((self._atom(_name_of(element.value)),) for element in elements)
            scope.tensors[tensor] = replace(layout, dims=dims)
        if dims is None:
            return
        for element, index in zip(elements, indexes):
            if isinstance(element.value, cst.Name) and index is not None and -len(dims) <= index < len(dims):
                scope.atoms[element.value.value] = dims[index]

    def _show_batch(self, tensor: str) -> None:
        layout = self._scope.tensors.get(tensor) or Layout()
        if layout.batch is None:
            self._scope.tensors[tensor] = replace(layout, batch=self._statement())

    def _statement(self) -> cst.CSTNode | None:
        return next((node for node in reversed(self._ancestors) if isinstance(node, _STATEMENTS)), None)

    def _atom(self, name: str) -> str:
        return f"{name}#{next(self._fresh)}"

    def _fresh_dims(self, rank: int) -> Dims:
        return tuple((self._atom(""),) for _ in range(rank))

    # -- calls -------------------------------------------------------------------------------------

    def _visit_call(self, node: cst.Call) -> None:
        func = node.func
        scope = self._scope
        if isinstance(func, cst.Attribute) and func.attr.value in RESHAPED_IN_PLACE:
            for name in assigned_names(func.value):
                scope.sizes.forget(name)
                self._drop_dims(name)
            return
        receiver = self._eval(func.value) if isinstance(func, cst.Attribute) else None
        first = next((arg.value for arg in node.args if arg.keyword is None and not arg.star), None)
        argument = self._eval(first) if first is not None else None
        if receiver or argument:
            self.calls[node] = CallFacts(node, self._functions[-1], tuple(self._ancestors), receiver, argument)
        method = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
        if method in VIEWS:
            self._record_view(node)
        if method in ("view", "reshape", "view_as", "reshape_as"):
            source = argument if self._call_name(node) == "torch.reshape" else receiver
            shifted = self._views_by_call.get(source.shifted) if source is not None and source.shifted else None
            if shifted is not None:  # viewed, a row cut, viewed again: a deliberate skew (relative shift)
                shifted.skew = True

    def _record_view(self, call: cst.Call) -> None:
        found = self._view_target(call)
        if found is None:
            return
        receiver, args = found
        bare = without_contiguous(receiver)
        tensor = dotted_name(bare)
        scope = self._scope
        source = self._eval(bare)
        hidden = self._hidden() if scope.sizes.sizes or scope.sizes.ranks else frozenset()
        rank = None if tensor is None or tensor in hidden else scope.sizes.ranks.get(tensor)
        sizes = [self._size(arg, tensor, rank, hidden, source) for arg in args]
        names = scope.sizes.dim_names(tensor, rank) if tensor is not None and rank is not None else None
        skew = bool(source and (source.padded or source.shifted))  # padded, or cut after a view: a shift
        view = View(call, bare, tensor, sizes, rank, names, source, skew=skew)
        self.views.append(view)
        self._views_by_call[call] = view

    def _view_target(self, call: cst.Call) -> tuple[cst.BaseExpression, list] | None:
        """(receiver, target sizes) of `x.view(...)`, `x.reshape(...)` or `torch.reshape(x, (...))`."""
        func = call.func
        if self._call_name(call) == "torch.reshape":
            if len(call.args) != 2 or call.args[0].keyword or not isinstance(call.args[1].value, (cst.Tuple, cst.List)):
                return None
            receiver, args = call.args[0].value, call.args[1].value.elements
        elif isinstance(func, cst.Attribute):
            receiver, args = func.value, call.args
            if len(args) == 1 and not args[0].star and isinstance(args[0].value, (cst.Tuple, cst.List)):
                args = args[0].value.elements
        else:
            return None
        if len(args) < 2 or any(getattr(arg, "keyword", None) for arg in args):
            return None
        return receiver, list(args)

    def _size(self, arg, tensor: str | None, rank: int | None, hidden: frozenset[str], source: Layout | None) -> Size:
        expr = arg.value
        if starred(arg):
            return Size(arg, None)
        if integer_value(expr) == -1:
            return Size(arg, None, wildcard=True)
        atoms = self._atoms_of(expr, source)
        if tensor is None:
            return Size(arg, None, atoms=atoms)
        # A comprehension that rebinds the tensor's name: only sizes read inline describe it.
        known = SizeReads() if tensor in hidden else self._scope.sizes
        dims = known.product(expr, hidden)
        if dims is None or any(dim.tensor != tensor for dim in dims):
            return Size(arg, None, atoms=atoms)
        indexes = (dim.index + rank if dim.index < 0 and rank is not None else dim.index for dim in dims)
        return Size(arg, tuple(sorted(indexes)), atoms=atoms)

    def _hidden(self) -> frozenset[str]:
        """Names a comprehension or lambda around the current node rebinds: not this function's tensors."""
        names: set[str] = set()
        for node in self._ancestors:
            if isinstance(node, _COMPREHENSIONS):
                loop = node.for_in
                while loop is not None:
                    names.update(_names_in(loop.target))
                    loop = loop.inner_for_in
            elif isinstance(node, cst.Lambda):
                names.update(param.name.value for param in node.params.params)
        return frozenset(names)

    def _call_name(self, call: cst.Call) -> str | None:
        return self.context.call_name(call)

    # -- sizes as atoms ----------------------------------------------------------------------------

    def _atoms_of(self, expr: cst.BaseExpression, source: Layout | None = None) -> tuple[str, ...] | None:
        """The symbolic dims a size expression multiplies (`T`, `x.size(1)`, `h * w`; `1` is none)."""
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
            left = self._atoms_of(expr.left, source)
            right = self._atoms_of(expr.right, source) if left is not None else None
            return None if right is None else left + right
        if isinstance(expr, cst.Name):
            found = self._scope.atoms.get(expr.value)
            return None if found is not None and expr.value in self._hidden() else found
        if integer_value(expr) == 1:
            return ()
        dim = size_read(expr)
        if dim is None or "." in dim.tensor:
            return None
        layout = self._scope.tensors.get(dim.tensor)
        if layout is None or layout.dims is None or not -len(layout.dims) <= dim.index < len(layout.dims):
            return None
        return layout.dims[dim.index]

    # -- the layout of an expression ---------------------------------------------------------------

    def _eval(self, expr: cst.BaseExpression) -> Layout | None:
        if isinstance(expr, cst.Name):
            layout = self._scope.tensors.get(expr.value)
            return None if layout is None or expr.value in self._hidden() else layout
        if isinstance(expr, cst.Call):
            return self._eval_call(expr)
        if isinstance(expr, cst.BinaryOperation):
            left, right = self._eval(expr.left), self._eval(expr.right)
            if isinstance(expr.operator, cst.MatrixMultiply):
                return self._matmul(left, right)
            batch = (left.batch if left else None) or (right.batch if right else None)
            dims = left.dims if left and left.dims is not None else right.dims if right else None
            return Layout(dims=dims, batch=batch)
        if isinstance(expr, cst.Subscript):
            return self._eval_subscript(expr)
        return None

    @staticmethod
    def _matmul(left: Layout | None, right: Layout | None) -> Layout:
        """`a @ b`: a's leading dims and rows, b's columns; dim 0 is a's."""
        dims = None
        if left and right and left.dims and right.dims and len(left.dims) == len(right.dims) >= 2:
            dims = left.dims[:-1] + right.dims[-1:]
        return Layout(dims=dims, batch=left.batch if left else None)

    def _eval_subscript(self, expr: cst.Subscript) -> Layout | None:
        source = self._eval(expr.value)
        if not source:
            return None
        first = expr.slice[0].slice
        batch = source.batch if isinstance(first, cst.Slice) and first.lower is None and first.upper is None else None
        cuts = [_cut(element.slice) for element in expr.slice]
        dims = None
        if source.dims is not None and all(
            isinstance(e.slice, cst.Slice) or integer_value(e.slice.value) is not None for e in expr.slice
        ) and len(expr.slice) <= len(source.dims):
            dims = []
            for index, element in enumerate(expr.slice):
                if isinstance(element.slice, cst.Slice):
                    dims.append(source.dims[index] if not cuts[index] else (self._atom(""),))
            dims = tuple(dims) + source.dims[len(expr.slice) :]
        shifted = source.view if source.view is not None and any(cuts) else None
        return Layout(dims=dims, batch=batch, shifted=shifted)

    def _eval_call(self, call: cst.Call) -> Layout | None:
        func = call.func
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        method = func.attr.value if isinstance(func, cst.Attribute) else None
        if method in VIEWS or method == "flatten":
            return self._eval_view(call, method, positional)
        if isinstance(func, cst.Attribute) and _is_self(func.value) or self._is_layer(func):
            return self._through_layer(call, positional)
        name = self._call_name(call)
        if name in _KEEPS_BATCH_FUNCTIONS:
            source = self._eval(positional[0]) if positional else None
            if name == "torch.nn.functional.pad":  # padded: a view with swapped sizes may be a skew on purpose
                return Layout(batch=source.batch if source else None, fold=source.fold if source else None, padded=True)
            if not source:
                return None
            kind = layer_dims(name)
            return Layout(dims=self._after_layer(source.dims, kind), batch=source.batch, fold=source.fold)
        if method in _KEEPS_BATCH_METHODS or method in _SAME_DIMS_METHODS:
            return self._eval(func.value)
        if method in ("view_as", "reshape_as", "expand_as") and positional:
            other = self._eval(positional[0])
            return Layout(dims=other.dims) if other and other.dims is not None else None
        if name in ("torch.cat", "torch.concat"):
            return self._eval_cat(call, positional)
        if name == "torch.matmul" and len(positional) == 2:
            return self._matmul(self._eval(positional[0]), self._eval(positional[1]))
        if name in ("einops.rearrange",) and len(positional) == 2:
            return self._eval_rearrange(call, positional)
        if method is not None:
            return self._eval_method(call, method, positional)
        return None

    def _eval_view(self, call: cst.Call, method: str, positional: list) -> Layout | None:
        func = call.func
        scope = self._scope
        first = positional[0] if positional else None
        batch = fold = dims = None
        if isinstance(func, cst.Attribute) and method in VIEWS and first is not None:
            if (isinstance(first, cst.Name) and first.value in scope.batch_sizes) or sized_tensor(first, False):
                batch = self._statement()
            if isinstance(func.value, cst.Name) and (names := scope.shape_names.get(func.value.value)):
                # The rest of the new shape must name the dims left, in order: then dim 0 holds the others.
                rest = tuple(arg.value if isinstance(arg, cst.Name) else "" for arg in positional[1:])
                merged = _merged_names(first, names, len(rest))
                if merged is not None and len(merged) >= 2 and rest == names[len(merged) :]:
                    fold = Fold(merged, self._statement())
        target = self._view_target(call) if method in VIEWS else None
        if target is not None:
            receiver, args = target
            source = self._eval(without_contiguous(receiver))
            if batch is None and source and source.batch is not None and args and not starred(args[0]):
                # dim 0 kept: the first size is the receiver's dim 0 as known
                if source.dims is not None and self._atoms_of(args[0].value, source) == source.dims[0]:
                    batch = source.batch
            if not any(starred(arg) for arg in args):
                dims = tuple(self._size_dim(arg.value, source) for arg in args)
        elif method == "flatten":
            source = self._eval(func.value) if isinstance(func, cst.Attribute) else None
            if self._call_name(call) == "torch.flatten":
                source = self._eval(first) if first is not None else None
                start = integer_value(positional[1]) if len(positional) > 1 else 0
                if start == 1:
                    batch = self._statement()
            else:
                start = integer_value(first) if first is not None else 0
                if start == 1:
                    batch = self._statement()
            if source and start is not None and start >= 1 and source.batch is not None:
                batch = batch or source.batch
            if source and source.dims is not None and start is not None and len(positional) <= 1:
                start %= max(len(source.dims), 1)
                merged = tuple(atom for dim in source.dims[start:] for atom in dim)
                dims = source.dims[:start] + (merged,)
        return Layout(dims=dims, batch=batch, fold=fold, view=call if target is not None else None)

    def _size_dim(self, size: cst.BaseExpression, source: Layout | None) -> tuple[str, ...]:
        """The dim a target size makes: the atoms it names, none for `1`, else a new one."""
        atoms = self._atoms_of(size, source)
        return atoms if atoms is not None else (self._atom(""),)

    def _is_layer(self, func: cst.BaseExpression) -> bool:
        """`layer(x)` for `for layer in self.layers`, `self.blocks[i](x)`: a module call."""
        if isinstance(func, cst.Name):
            return func.value in self._scope.layers
        return isinstance(func, cst.Subscript) and isinstance(func.value, cst.Attribute) and _is_self(func.value.value)

    def _through_layer(self, call: cst.Call, positional: list) -> Layout | None:
        """A layer keeps dim 0 (and the fold of the batch in it); what it does to the others is its kind's.
        A convolution or batch norm takes (N, C, ...) by its API: its output shows dim 0 is the batch."""
        source = self._eval(positional[0]) if positional else None
        func, layer = call.func, None
        if isinstance(func, cst.Attribute) and self._classes:
            layer = self._layer(self._classes[-1], func.attr.value)
        batch_first = layer is not None and bool(_BATCH_FIRST_LAYERS.search(layer))
        if not source and not batch_first:
            return None
        source = source or Layout()
        batch = source.batch or (self._statement() if batch_first else None)
        return Layout(dims=self._after_layer(source.dims, layer_dims(layer)), batch=batch, fold=source.fold)

    def _layer(self, owner: cst.ClassDef, attribute: str) -> str | None:
        """The layer `self.<attribute>` of a class holds: its last `self.<attribute> = <call>(...)`."""
        calls = [b.value for b in self._index.bindings.get((owner, f"self.{attribute}"), ()) if type(b.value) is cst.Call]
        return (self._call_name(calls[-1]) or dotted_name(calls[-1].func)) if calls else None

    def _after_layer(self, dims: Dims | None, kind: str | None) -> Dims | None:
        if dims is None or kind is None or not dims:
            return None
        if kind == SAME:
            return dims
        if kind == LAST:
            return dims[:-1] + ((self._atom(""),),)
        if kind == APPEND:
            return dims + ((self._atom(""),),)
        return dims[:1] + self._fresh_dims(len(dims) - 1)

    def _eval_cat(self, call: cst.Call, positional: list) -> Layout | None:
        parts = positional[0] if positional else None
        if not isinstance(parts, (cst.List, cst.Tuple)) or not parts.elements:
            return None
        dim_arg = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "dim"), None)
        dim = integer_value(dim_arg if dim_arg is not None else positional[1] if len(positional) > 1 else None)
        layouts = [self._eval(element.value) for element in parts.elements if not starred(element)]
        known = next((layout for layout in layouts if layout), None)
        batch = known.batch if known and dim not in (None, 0) else None
        dims = None
        if known and known.dims is not None and dim is not None and -len(known.dims) <= dim < len(known.dims):
            dims = list(known.dims)
            dims[dim] = (self._atom(""),)
            dims = tuple(dims)
        return Layout(dims=dims, batch=batch, padded=True)

    def _eval_method(self, call: cst.Call, method: str, positional: list) -> Layout | None:
        source = self._eval(call.func.value)
        if not source:
            return None
        if method == "unflatten":
            return self._eval_unflatten(source, positional)
        ints = [integer_value(value) for value in positional]
        if len(positional) == 1 and isinstance(positional[0], (cst.Tuple, cst.List)):
            ints = [integer_value(e.value) for e in positional[0].elements]
        dims, rank = source.dims, len(source.dims) if source.dims is not None else None
        if any(value is None for value in ints):
            return None
        normal = [value + rank if value < 0 and rank is not None else value for value in ints]
        keeps_batch = all(value != 0 and (value > 0 or rank is not None) for value in normal)
        if method in ("transpose", "swapaxes", "swapdims") and len(normal) == 2:
            new = None
            if dims is not None and all(0 <= v < rank for v in normal):
                swapped = list(dims)
                swapped[normal[0]], swapped[normal[1]] = dims[normal[1]], dims[normal[0]]
                new = tuple(swapped)
            return Layout(dims=new, batch=source.batch if keeps_batch else None)
        if method == "permute" and normal:
            new = tuple(dims[v] for v in normal) if dims is not None and sorted(normal) == list(range(rank)) else None
            return Layout(dims=new, batch=source.batch if normal[0] == 0 else None)
        if method == "unsqueeze" and len(normal) == 1:
            new = dims[: normal[0]] + ((),) + dims[normal[0] :] if dims is not None and 0 <= normal[0] <= rank else None
            return Layout(dims=new, batch=source.batch if keeps_batch else None)
        return None

    def _eval_unflatten(self, source: Layout, positional: list) -> Layout:
        """`x.unflatten(dim, (h, d))`: the dim split in order; dim 0 stays the batch unless it is split."""
        dim, sizes, dims = integer_value(_at(positional, 0)), _at(positional, 1), source.dims
        if dim is None:
            return Layout()
        if dims is None or not isinstance(sizes, (cst.Tuple, cst.List)) or not -len(dims) <= dim < len(dims):
            return Layout(batch=source.batch if dim > 0 else None)
        dim %= len(dims)
        parts = tuple(self._size_dim(element.value, source) for element in sizes.elements)
        return Layout(dims=dims[:dim] + parts + dims[dim + 1 :], batch=source.batch if dim > 0 else None)

    def _eval_rearrange(self, call: cst.Call, positional: list) -> Layout | None:
        """`rearrange(x, 'b t (h d) -> b h t d', h=h)`: the names on the left take the receiver's dims."""
        source = self._eval(positional[0])
        pattern = positional[1]
        if not source or not isinstance(pattern, cst.SimpleString):
            return None
        sides = pattern.evaluated_value.split("->") if isinstance(pattern.evaluated_value, str) else []
        if len(sides) != 2:
            return None
        left, right = _einops_side(sides[0]), _einops_side(sides[1])
        if left is None or right is None:
            return None
        batch = source.batch if left and right and left[0] == right[0] and len(left[0]) == 1 else None
        if source.dims is None or len(left) != len(source.dims):
            return Layout(batch=batch)
        atoms: dict[str, tuple[str, ...]] = {}
        for group, dim in zip(left, source.dims):
            if len(group) == 1:
                atoms[group[0]] = dim
            else:
                atoms.update((name, (self._atom(name),)) for name in group)
        try:
            dims = tuple(tuple(atom for name in group for atom in atoms[name]) for group in right)
        except KeyError:
            return Layout(batch=batch)
        return Layout(dims=dims, batch=batch)

    def _parts(self, value: cst.BaseExpression, count_: int) -> list[Layout | None] | None:
        """Each element's layout of `q, k, v = x.chunk(3, dim=-1)` / `x.split(c, -1)` / `x.unbind(0)`."""
        if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Attribute):
            return None
        method = value.func.attr.value
        if method not in ("chunk", "split", "unbind", "tensor_split"):
            return None
        source = self._eval(value.func.value)
        if not source:
            return [None] * count_
        dim_arg = next((a.value for a in value.args if a.keyword is not None and a.keyword.value == "dim"), None)
        positional = [a.value for a in value.args if a.keyword is None and not a.star]
        if dim_arg is None:
            dim_arg = _at(positional, 0 if method == "unbind" else 1)
        dim = integer_value(dim_arg) if dim_arg is not None else 0
        if dim is None:
            return [None] * count_
        dims, rank = source.dims, len(source.dims) if source.dims is not None else None
        normal = dim + rank if dim < 0 and rank is not None else dim
        batch = source.batch if normal != 0 and (normal > 0 or rank is not None) else None
        parts = []
        for _ in range(count_):
            new = None
            if dims is not None and 0 <= normal < rank:
                kept = () if method == "unbind" else ((self._atom(""),),)  # unbind drops the dim, the others cut it
                new = dims[:normal] + kept + dims[normal + 1 :]
            if method == "unbind" and normal == 0:
                batch = None
            parts.append(Layout(dims=new, batch=batch))
        return parts


# -- helpers --------------------------------------------------------------------------------------


def _einops_side(side: str) -> list[tuple[str, ...]] | None:
    """`b t (h d)` -> [("b",), ("t",), ("h", "d")]; None for `...`, anonymous or literal axes."""
    groups: list[tuple[str, ...]] = []
    for match in re.finditer(r"\(([^()]*)\)|(\S+)", side):
        names = tuple(match.group(1).split()) if match.group(1) is not None else (match.group(2),)
        if any(not name.isidentifier() for name in names):
            return None
        groups.append(names)
    return groups


def _cut(part: cst.BaseSlice) -> bool:
    """`x[1:]`, `x[:n]`, `x[::2]`: a slice that keeps part of a dim (`x[:]` keeps it whole)."""
    return isinstance(part, cst.Slice) and bool(part.lower or part.upper or part.step)


def _at(values: list, index: int):
    return values[index] if len(values) > index else None


def _functions_with_layout_calls(index: FileIndex) -> set[cst.FunctionDef]:
    """The functions holding a call of `LAYOUT_CALLS`, and the functions around them (closures read their tensors)."""
    wanted: set[cst.FunctionDef] = set()
    for call, function in index.calls:
        func = call.func
        name = func.attr.value if type(func) is cst.Attribute else func.value if type(func) is cst.Name else None
        while name in LAYOUT_CALLS and function is not None and function not in wanted:
            wanted.add(function)
            function = index.parent_function.get(function)
    return wanted


def _iterates_layers(iterable: cst.BaseExpression) -> bool:
    """`self.layers`, `self.blocks.children()`, `self.layers.values()`: an iteration over layers."""
    if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute) and not iterable.args:
        if iterable.func.attr.value in ("children", "values", "modules"):
            iterable = iterable.func.value
    return isinstance(iterable, cst.Attribute) and _is_self(iterable.value)


def _is_self(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "self"


def _name_of(node: cst.BaseExpression) -> str:
    return node.value if isinstance(node, cst.Name) and node.value != "_" else ""


def _names_in(target: cst.BaseExpression) -> Iterator[str]:
    """Every name in an assignment target (`x`, `a, (b, c)`, `x.data`: x and data)."""
    stack = [target]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            yield node.value
        else:
            stack.extend(child_nodes(node))


def _merged_names(size: cst.BaseExpression, dims: tuple[str, ...], rest: int) -> tuple[str, ...] | None:
    """The leading dims (of `dims`) a new dim-0 size merges, `rest` dims named after it: `-1`, or
    `b * t` in any order of the factors (the tensor's layout, not the product, decides the order)."""
    if integer_value(size) == -1:
        return dims[: len(dims) - rest]
    factors, pending = [], [size]
    while pending:
        part = pending.pop()
        if isinstance(part, cst.BinaryOperation) and isinstance(part.operator, cst.Multiply):
            pending += [part.left, part.right]
        elif isinstance(part, cst.Name):
            factors.append(part.value)
        else:
            return None
    merged = dims[: len(factors)]
    return merged if sorted(factors) == sorted(merged) else None


def starred(arg: cst.Arg | cst.BaseElement) -> bool:
    return isinstance(arg, cst.StarredElement) or getattr(arg, "star", "") == "*"


def without_contiguous(node: cst.BaseExpression) -> cst.BaseExpression:
    """`x.contiguous()` has the dims of `x`."""
    while (
        isinstance(node, cst.Call)
        and not node.args
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "contiguous"
    ):
        node = node.func.value
    return node


def _is_name(node: cst.BaseExpression, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def shape_owner(node: cst.BaseExpression) -> str | None:
    """`x` for `x.shape` or `x.size()`."""
    if isinstance(node, cst.Call) and not node.args and isinstance(node.func, cst.Attribute):
        if node.func.attr.value == "size":
            return dotted_name(node.func.value)
    elif isinstance(node, cst.Attribute) and node.attr.value == "shape":
        return dotted_name(node.value)
    return None


def shape_of(node: cst.BaseExpression) -> tuple[str, tuple[int | None, int | None]] | None:
    """(tensor, (start, stop)) for `x.shape`, `x.size()`, `tuple(x.shape)`, `x.shape[2:]`, `x.shape[-2:]`."""
    if isinstance(node, cst.Call) and (_is_name(node.func, "tuple") or _is_name(node.func, "list")):
        if len(node.args) != 1:
            return None
        node = node.args[0].value
    bounds: tuple[int | None, int | None] = (None, None)
    if isinstance(node, cst.Subscript):
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Slice):
            return None
        part = node.slice[0].slice
        bounds = (integer_value(part.lower), integer_value(part.upper))
        if part.step is not None or (part.lower and bounds[0] is None) or (part.upper and bounds[1] is None):
            return None
        node = node.value
    tensor = shape_owner(node)
    return None if tensor is None else (tensor, bounds)


def unpacked_dims(target: cst.Tuple | cst.List, value) -> tuple[str, list[int | None], int | None] | None:
    """(tensor, the dim index each target name reads, the tensor's rank when the whole shape is read)
    for `b, c, h, w = x.shape`, `h, w = x.shape[2:]`, `*_, h, w = x.shape`; local tensors only."""
    shape = shape_of(value)
    if shape is None or "." in shape[0]:
        return None
    tensor, (start, stop) = shape
    stars = [i for i, element in enumerate(target.elements) if isinstance(element, cst.StarredElement)]
    count_ = len(target.elements)
    if start is None and stop is None and len(stars) == 1:
        return tensor, [*range(stars[0]), None, *range(stars[0] + 1 - count_, 0)], None
    if stars:
        return None
    if start is not None and start < 0 and stop is None and count_ == -start:
        return tensor, list(range(start, 0)), None
    if (start or 0) >= 0 and (stop is None or stop - (start or 0) == count_):
        first = start or 0
        return tensor, list(range(first, first + count_)), first + count_ if stop is None else None
    return None


def size_read(node: cst.BaseExpression) -> Dim | None:
    """The dim read by `x.size(1)`, `x.size(dim=1)`, `x.shape[1]` or `x.size()[-1]`."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "size":
        arg = node.args[0] if len(node.args) == 1 else None
        if arg is None or arg.star or (arg.keyword is not None and arg.keyword.value != "dim"):
            return None
        tensor, index = dotted_name(node.func.value), integer_value(arg.value)
    elif isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
        tensor, index = shape_owner(node.value), integer_value(node.slice[0].slice.value)
    else:
        return None
    return None if tensor is None or index is None else Dim(tensor, index)


def assigned_names(target: cst.BaseExpression) -> Iterator[str]:
    """Variables an assignment to `target` changes; `x.data = ...` changes `x`."""
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from assigned_names(element.value)
    elif isinstance(target, cst.Attribute):
        name = dotted_name(target.value)
        if name is not None:
            yield name


def sized_tensor(value: cst.BaseExpression, whole_shape: bool) -> str | None:
    """The local tensor whose dim-0 size `value` reads: `x.shape` / `x.size()` / `x.shape[:2]` when
    `whole_shape` (unpacked into names), else `x.size(0)` / `x.shape[0]` / `len(x)`."""
    index = value.slice[0].slice if isinstance(value, cst.Subscript) and len(value.slice) == 1 else None
    if whole_shape:
        if isinstance(index, cst.Slice) and index.lower is not None and integer_value(index.lower) != 0:
            return None
        return _local(shape_owner(value.value if isinstance(index, cst.Slice) else value))
    if isinstance(index, cst.Index):
        return _local(shape_owner(value.value)) if integer_value(index.value) == 0 else None
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "size":
        args = value.args
        if len(args) == 1 and args[0].keyword is None and integer_value(args[0].value) == 0:
            return value.func.value.value if isinstance(value.func.value, cst.Name) else None
    if isinstance(value, cst.Call) and _is_name(value.func, "len") and len(value.args) == 1:
        return value.args[0].value.value if isinstance(value.args[0].value, cst.Name) else None
    return None


def _local(name: str | None) -> str | None:
    return name if name is not None and "." not in name else None
