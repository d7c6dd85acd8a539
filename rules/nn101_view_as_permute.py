import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.tree import integer_value

_VIEWS = {"view", "reshape"}
# In-place methods that change a tensor's dims: sizes unpacked before them no longer describe it.
_RESHAPED_IN_PLACE = {
    "t_", "transpose_", "swapdims_", "swapaxes_", "squeeze_", "unsqueeze_", "resize_", "resize_as_",
    "as_strided_", "set_",
}  # fmt: skip
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


@dataclass(frozen=True)
class _Dim:
    """Dim `index` of the tensor held by the variable `tensor` (negative: counted from the end)."""

    tensor: str
    index: int


@dataclass(frozen=True)
class _Size:
    """One target size of a view: the tensor dims it is made of (`h * w` is two), `()` for a
    literal 1, None for a size that may stand for any run of dims (`-1`, a literal, an
    unrelated expression)."""

    arg: cst.Arg | cst.BaseElement
    dims: tuple[int, ...] | None
    wildcard: bool = False

    @property
    def text(self) -> str:
        """The size as written (`h * w`, `*shape`); only needed for a finding's message."""
        return ("*" if _starred(self.arg) else "") + cst.Module([]).code_for_node(self.arg.value)


@dataclass
class _Shapes:
    """What one function body has said so far about its tensors' dims, in source order."""

    # size variable -> the dims whose product it holds (`c = x.size(1)`: one; `n = h * w`: two)
    sizes: dict[str, tuple[_Dim, ...]] = field(default_factory=dict)
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
        shape = _shape_of(value)
        # Attributes (`self.x`) can change behind a method call: only local variables are tracked.
        if shape is None or "." in shape[0]:
            return
        tensor, (start, stop) = shape
        stars = [i for i, element in enumerate(target.elements) if isinstance(element, cst.StarredElement)]
        count = len(names)
        if start is None and stop is None and len(stars) == 1:
            indexes = [*range(stars[0]), None, *range(stars[0] + 1 - count, 0)]
        elif stars:
            return
        elif start is not None and start < 0 and stop is None and count == -start:
            indexes = range(start, 0)
        elif (start or 0) >= 0 and (stop is None or stop - (start or 0) == count):
            indexes = range(start or 0, (start or 0) + count)
            if stop is None:
                self.ranks[tensor] = (start or 0) + count
                self._in_branch(tensor)
        else:
            return
        for name, index in zip(names, indexes):
            self._bind(name, None if index is None else (_Dim(tensor, index),))

    def product(self, expr: cst.BaseExpression, hidden: frozenset[str] = frozenset()) -> tuple[_Dim, ...] | None:
        """The dims a size expression multiplies (`c`, `x.size(1)`, `h * w`, `1`); None if it is anything else.
        Variables in `hidden` are not this function's (a comprehension rebinds them)."""
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
            left, right = self.product(expr.left, hidden), self.product(expr.right, hidden)
            return None if left is None or right is None else left + right
        if integer_value(expr) == 1:
            return ()
        if isinstance(expr, cst.Name):
            return None if expr.value in hidden else self.sizes.get(expr.value)
        dim = _size_read(expr)
        return None if dim is None else (dim,)

    def _bind(self, name: cst.BaseExpression, dims: tuple[_Dim, ...] | None) -> None:
        if dims and isinstance(name, cst.Name) and name.value != "_":
            self.sizes.pop(name.value, None)  # re-inserted last: the newest name of a dim is the one shown
            self.sizes[name.value] = dims
            self._in_branch(name.value)

    def _in_branch(self, name: str) -> None:
        if self.branches:
            self.branches[-1].add(name)


class ViewAsPermute(Rule):
    """
    ## What it does
    Flags `.view()` / `.reshape()` (and `torch.reshape`) whose target sizes put
    a tensor's own dims in a different order: sizes unpacked earlier
    (`b, c, h, w = x.shape; x.view(b, h, w, c)`, `x.reshape(b, h * w, c)`),
    sizes read inline in a new order (`x.view(x.size(1), x.size(0), -1)`), or a
    `-1` that has to swallow dims from the wrong place (`x.reshape(b, -1, c)`).

    ## Why is this bad?
    A view only reinterprets memory: it can merge neighbouring dims and split
    them, never move one past another. `x.view(b, h, w, c)` of a `(b, c, h, w)`
    tensor runs, has the right shape, and deals every channel's values out
    across pixels (and a reorder that involves the batch dim, across
    examples). Nothing raises, and the network still learns, to ignore the
    data it scrambled. Karpathy's recipe ("use backprop to chart
    dependencies") names this mistake, `view` where `transpose`/`permute` was
    meant, as a common way to mix information across the batch silently; it
    only shows when the dims have different sizes ("test with asymmetric
    shapes").

    ## Example
    ```python
    b, c, h, w = x.shape
    tokens = x.view(b, h * w, c)
    ```

    ## Use instead
    ```python
    b, c, h, w = x.shape
    tokens = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # or x.flatten(2).transpose(1, 2)
    ```

    ## Known problems
    Dims are only known from sizes read in the same function from the same
    local variable (`x.shape`, `x.size()`, `x.shape[i]`, `x.size(i)`, slices
    and products of them), so a reshape of another tensor built from `x`
    (`self.proj(x).view(...)`, `(attn @ v).reshape(...)`) is never judged;
    `--confirm` covers those. Any assignment to the tensor variable or to a
    size variable forgets what was known, and so does a loop that assigns
    them or the end of an `if` whose branch read them: a view after
    `x = x.permute(...)` is never judged from sizes read before it. A merge
    that skips a dim with no name (`b, _, h, w = x.shape; x.view(b * h, w)`)
    is taken as correct: that dim is presumably of size 1.

    ## Runtime confirmation
    `--confirm` runs the model on an asymmetric-shape probe (every dim a
    different size) and records the input and output shape of each
    view/reshape at the flagged line. A reading of the sizes as the input dims
    merged and split in order refutes the finding; a reading that only works
    with the dims reordered confirms it, with the permutation as evidence.
    Sizes that allow both readings leave it unverifiable.
    """

    code = "NN101"
    name = "view-as-permute"
    severity = "error"
    summary = "A view/reshape whose target sizes reorder the tensor's dims scrambles the data; permute first"
    triggers = (".view(", "reshape(")

    bad = [
        Example(
            """
from torch import nn

class PatchEmbed(nn.Module):
    def forward(self, x):
        b, c, h, w = x.shape
        x = x.view(b, h, w, c)  # <--
        return x
""",
            message="x.view(b, h, w, c) reorders the dims of x (b, c, h, w); a view cannot move data: "
            "use x.permute(0, 2, 3, 1)",
        ),
        Example(
            """
def to_tokens(x):
    b, c, h, w = x.size()
    return x.reshape(b, h * w, c)  # <--
""",
            note="a merge after the reorder: permute first, then reshape",
            message="use x.permute(0, 2, 3, 1).reshape(b, h * w, c) or x.flatten(2).transpose(1, 2)",
        ),
        Example(
            """
def swap(x):
    a = x.view(x.size(1), x.size(0), -1)  # <--
    return a, x.view(x.shape[2], x.shape[0], x.shape[1])  # <--
""",
            note="sizes read inline in a new order",
        ),
        Example(
            """
from torch import nn

class TemporalConv(nn.Module):
    def forward(self, x):
        B, C, T = x.shape
        x = self.conv(x)
        B, C, T = x.shape
        return self.head(x.view(B, T, C))  # <--
""",
            note="named sizes swapped: the tensor is (B, C, T)",
            message="use x.transpose(1, 2)",
        ),
        Example(
            """
import torch

def channels_last(x):
    b = x.size(0)
    c = x.shape[1]
    h, w = x.shape[2:]
    y = x.reshape(b, -1, c)  # <--
    return y, torch.reshape(x.contiguous(), (b, h, w, c))  # <--
""",
            note="sizes read one at a time; -1 can only stand for h*w, which sits after c; the function form",
        ),
    ]
    good = [
        Example(
            """
def tokens(x):
    b, c, h, w = x.shape
    return x.view(b, c, h * w).permute(0, 2, 1)
""",
            note="trap: view in order, then permute",
        ),
        Example(
            """
def head(self, x):
    return self.fc(x.view(x.size(0), -1))
""",
            note="trap: flatten everything but the batch",
        ),
        Example(
            """
def head(self, x):
    return self.fc(x.flatten(1))
""",
            note="trap: flatten",
        ),
        Example(
            """
def shuffle(x, groups):
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2)
    x = x.reshape(b, -1, h, w)
    y = x.view(b * c, h, w)
    return x, y
""",
            note="merges and splits in order (channel shuffle)",
        ),
        Example(
            """
def tokens(x):
    b, c, h, w = x.shape
    x = x.permute(0, 2, 3, 1)
    return x.reshape(b, -1, c), x.reshape(b, h * w, c)
""",
            note="trap: the tensor was permuted after its sizes were read, so (b, c, h, w) no longer describes it",
        ),
        Example(
            """
def attention(self, x):
    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    out = (q @ k.transpose(-2, -1)).softmax(-1) @ v
    return out.transpose(1, 2).reshape(B, N, C)
""",
            note="trap: the sizes describe x, but what is reshaped is another tensor",
        ),
        Example(
            """
def merge(x, y):
    b, c, h, w = y.shape
    z = x.permute(0, 2, 3, 1)
    return x.view(b, h, w, c), z.reshape(b, h * w, c)
""",
            note="sizes read from a different tensor than the one viewed",
        ),
        Example(
            """
def masked(mask):
    b, _, h, w = mask.shape
    return mask.view(b, h * w), mask.view(b * h, w)
""",
            note="the dim with no name is size 1 (or the view would fail): nothing is reordered",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self._scopes = [_Shapes()]  # the module's, then one per enclosing function or lambda

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Shapes())

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._scopes.append(_Shapes())

    def leave_Lambda(self, node: cst.Lambda) -> None:
        self._scopes.pop()

    # Assignments are handled on leave: `x = x.view(...)` is judged with what was known before it.
    def leave_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._forget(target.target)
        for target in node.targets:
            self._scopes[-1].learn(target.target, node.value)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._forget(node.target)
        if node.value is not None:
            self._scopes[-1].learn(node.target, node.value)

    def leave_AugAssign(self, node: cst.AugAssign) -> None:
        self._forget(node.target)

    def leave_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._forget(node.target)
        self._scopes[-1].learn(node.target, node.value)

    def visit_If(self, node: cst.If) -> None:
        self._scopes[-1].branches.append(set())

    def leave_If(self, node: cst.If) -> None:
        scope = self._scopes[-1]
        for name in scope.branches.pop():
            scope.forget(name)

    def visit_For(self, node: cst.For) -> None:
        self._forget_assigned_in_loop(node)

    def visit_While(self, node: cst.While) -> None:
        self._forget_assigned_in_loop(node)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _RESHAPED_IN_PLACE:
            self._forget(func.value)
            return
        view = self._view(node)
        if view is None:
            return
        tensor, targets = view
        scope = self._scopes[-1]
        hidden = _comprehension_names(self.context.ancestors) if scope.sizes or scope.ranks else frozenset()
        rank = None if tensor in hidden else scope.ranks.get(tensor)
        sizes = [self._size(arg, tensor, rank, hidden) for arg in targets]
        if not _reorders(sizes, rank):
            return
        order = _order(sizes, rank)
        dims = _dim_names(scope, tensor, rank) if rank is not None else None
        call = re.sub(r"\s+", " ", cst.Module([]).code_for_node(node))
        self.report(
            node,
            f"{call} reorders the dims of {tensor} ({', '.join(dims) if dims else _first_swap(sizes)}); "
            f"a view cannot move data: use {_fix(tensor, sizes, order)}",
            facts={
                "tensor": tensor,
                "input_dims": dims,
                "target": [size.text for size in sizes],
                "permutation": [dim for group in order for dim in group] if order else None,
            },
        )

    def _view(self, call: cst.Call) -> tuple[str, list[cst.Arg | cst.BaseElement]] | None:
        """(tensor, target sizes) of `x.view(...)`, `x.reshape(...)` or `torch.reshape(x, (...))`."""
        func = call.func
        method = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
        if method not in _VIEWS:
            return None
        if self.context.call_name(call) == "torch.reshape":
            if len(call.args) != 2 or call.args[0].keyword or not isinstance(call.args[1].value, (cst.Tuple, cst.List)):
                return None
            receiver, args = call.args[0].value, call.args[1].value.elements
        elif isinstance(func, cst.Attribute):
            receiver, args = func.value, call.args
            if len(args) == 1 and not args[0].star and isinstance(args[0].value, (cst.Tuple, cst.List)):
                args = args[0].value.elements
        else:
            return None
        tensor = dotted_name(_without_contiguous(receiver))
        if tensor is None or len(args) < 2 or any(getattr(arg, "keyword", None) for arg in args):
            return None
        return tensor, list(args)

    def _size(self, arg: cst.Arg | cst.BaseElement, tensor: str, rank: int | None, hidden: frozenset[str]) -> _Size:
        expr = arg.value
        if _starred(arg):
            return _Size(arg, None)
        if integer_value(expr) == -1:
            return _Size(arg, None, wildcard=True)
        # A comprehension that rebinds the tensor's name: only sizes read inline describe it.
        known = _Shapes() if tensor in hidden else self._scopes[-1]
        dims = known.product(expr, hidden)
        if dims is None or any(dim.tensor != tensor for dim in dims):
            return _Size(arg, None)
        indexes = (dim.index + rank if dim.index < 0 and rank is not None else dim.index for dim in dims)
        return _Size(arg, tuple(sorted(indexes)))

    def _forget(self, target: cst.BaseExpression) -> None:
        for name in _assigned_names(target):
            self._scopes[-1].forget(name)

    def _forget_assigned_in_loop(self, loop: cst.For | cst.While) -> None:
        """A loop's next iteration sees what its body assigned: forget it before the first one."""
        scope = self._scopes[-1]
        if not (scope.sizes or scope.ranks):
            return
        pending: list[cst.CSTNode] = [loop]
        while pending:
            node = pending.pop()
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                continue
            if isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.For, cst.NamedExpr)):
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for target in targets:
                    self._forget(target)
            elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                if node.func.attr.value in _RESHAPED_IN_PLACE:
                    self._forget(node.func.value)
            pending.extend(node.children)

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Decode the reshapes run at this line on two asymmetric probes: a reorder confirms, merges and
        splits in order refute, equal sizes that allow both readings leave it unverifiable."""
        from nnlint.confirm.universal import describe_reorder, reshapes_by_site, site_verdict

        models = session.models_covering(finding.path, finding.line, shapes_will_do=True)
        if not models:
            return unverifiable(session.why_uncovered(finding.path, finding.line))
        model = models[0]
        calls = [c for site, sc in reshapes_by_site(session, model).items() if (site.path, site.line) == (finding.path, finding.line) for c in sc]
        if not calls:
            return unverifiable(f"no view/reshape ran at line {finding.line} in {model.name}'s probe forward", model=model.name)
        kind, example = site_verdict(calls)
        shapes = {"model": model.name, "shapes": [[list(c.input_shape), list(c.output_shape)] for c in calls[:4]]}
        if kind == "reorder":
            evidence, data = describe_reorder(model, example)
            return confirmed(evidence, **data)
        if kind == "fine":
            return refuted(f"on {model.name}'s probes the reshape only merges and splits dims in order", **shapes)
        return unverifiable(f"on {model.name}'s probes equal sizes allow both readings of the reshape", **shapes)


def _starred(arg: cst.Arg | cst.BaseElement) -> bool:
    return isinstance(arg, cst.StarredElement) or getattr(arg, "star", "") == "*"


def _is_name(node: cst.BaseExpression, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _without_contiguous(node: cst.BaseExpression) -> cst.BaseExpression:
    """`x.contiguous()` has the dims of `x`."""
    while (
        isinstance(node, cst.Call)
        and not node.args
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "contiguous"
    ):
        node = node.func.value
    return node


def _shape_owner(node: cst.BaseExpression) -> str | None:
    """`x` for `x.shape` or `x.size()`."""
    if isinstance(node, cst.Call) and not node.args and isinstance(node.func, cst.Attribute):
        if node.func.attr.value == "size":
            return dotted_name(node.func.value)
    elif isinstance(node, cst.Attribute) and node.attr.value == "shape":
        return dotted_name(node.value)
    return None


def _shape_of(node: cst.BaseExpression) -> tuple[str, tuple[int | None, int | None]] | None:
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
    tensor = _shape_owner(node)
    return None if tensor is None else (tensor, bounds)


def _size_read(node: cst.BaseExpression) -> _Dim | None:
    """The dim read by `x.size(1)`, `x.size(dim=1)`, `x.shape[1]` or `x.size()[-1]`."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "size":
        arg = node.args[0] if len(node.args) == 1 else None
        if arg is None or arg.star or (arg.keyword is not None and arg.keyword.value != "dim"):
            return None
        tensor, index = dotted_name(node.func.value), integer_value(arg.value)
    elif isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
        tensor, index = _shape_owner(node.value), integer_value(node.slice[0].slice.value)
    else:
        return None
    return None if tensor is None or index is None else _Dim(tensor, index)


def _assigned_names(target: cst.BaseExpression) -> Iterator[str]:
    """Variables an assignment to `target` changes; `x.data = ...` changes `x`."""
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _assigned_names(element.value)
    elif isinstance(target, cst.Attribute):
        name = dotted_name(target.value)
        if name is not None:
            yield name


def _comprehension_names(ancestors: list[cst.CSTNode]) -> frozenset[str]:
    """Names bound by the comprehensions around a call: there they are not the function's variables."""
    names: set[str] = set()
    for node in ancestors:
        if isinstance(node, _COMPREHENSIONS):
            clause = node.for_in
            while clause is not None:
                names.update(_assigned_names(clause.target))
                clause = clause.inner_for_in
    return frozenset(names)


def _before(first: int, second: int) -> bool:
    """Whether dim `first` certainly comes before dim `second`, two different dims. An index from
    the start and one from the end compare only when one of them is the first or the last dim."""
    if (first < 0) == (second < 0):
        return first < second
    return first >= 0 and (first == 0 or second == -1)


def _reorders(sizes: list[_Size], rank: int | None) -> bool:
    """Certain from the names alone that the target takes the dims out of order."""
    named = [dim for size in sizes if size.dims for dim in size.dims]
    if len(set(named)) < len(named):
        return False  # a dim used twice: not a merge, not a permutation either
    if any(_taken_out_of_order(sizes)):
        return True
    # A lone -1 stands for exactly the dims not named; they must lie where it stands.
    absorbing = [position for position, size in enumerate(sizes) if size.dims is None]
    unnamed = sorted(set(range(rank)) - set(named)) if rank is not None else []
    if not unnamed or len(absorbing) != 1 or not sizes[absorbing[0]].wildcard:
        return False
    before = [dim for size in sizes[: absorbing[0]] for dim in size.dims]
    after = [dim for size in sizes[absorbing[0] + 1 :] for dim in size.dims]
    return any(dim > unnamed[0] for dim in before) or any(dim < unnamed[-1] for dim in after)


def _order(sizes: list[_Size], rank: int | None) -> list[list[int]] | None:
    """For each target size, the input dims it takes, when that is certain."""
    named = {dim for size in sizes if size.dims for dim in size.dims}
    absorbing = [size for size in sizes if size.dims is None]
    if rank is None:
        if absorbing or named != set(range(len(named))):
            return None
        rank = len(named)  # every dim is named
    unnamed = [dim for dim in range(rank) if dim not in named]
    if any(dim < 0 for dim in named) or (unnamed and len(absorbing) != 1):
        return None
    return [list(size.dims) if size.dims is not None else unnamed for size in sizes]


def _fix(tensor: str, sizes: list[_Size], order: list[list[int]] | None) -> str:
    """The permute (or transpose) that was probably meant, then the reshape when dims are also merged."""
    reshape = f".reshape({', '.join(size.text for size in sizes)})"
    if order is None:
        taken = [dim for size in sizes if size.dims for dim in size.dims]
        swapped = sorted({dim for dim, place in zip(taken, sorted(taken)) if dim != place})
        if len(swapped) == 2:
            return f"{tensor}.transpose({swapped[0]}, {swapped[1]}){reshape}"
        return f"{tensor}.movedim({tuple(taken)}, {tuple(sorted(taken))}){reshape}"
    permutation = [dim for group in order for dim in group]
    moved = [place for place, dim in enumerate(permutation) if place != dim]
    fix = (
        f"{tensor}.transpose({moved[0]}, {moved[1]})"
        if len(moved) == 2
        else f"{tensor}.permute({', '.join(map(str, permutation))})"
    )
    if any(len(group) != 1 for group in order):
        fix += reshape
    return fix + _flatten_alternative(tensor, order)


def _flatten_alternative(tensor: str, order: list[list[int]]) -> str:
    """`(b, c, h, w) -> (b, h*w, c)` is also `flatten(2).transpose(1, 2)`."""
    *kept, merged, moved = order
    dim = len(kept)
    if kept != [[d] for d in range(dim)] or moved != [dim] or len(merged) < 2:
        return ""
    if merged != list(range(dim + 1, dim + 1 + len(merged))):
        return ""
    return f" or {tensor}.flatten({dim + 1}).transpose({dim}, {dim + 1})"


def _dim_names(scope: _Shapes, tensor: str, rank: int) -> list[str]:
    names = ["_"] * rank
    for name, dims in scope.sizes.items():
        if len(dims) == 1 and dims[0].tensor == tensor and -rank <= dims[0].index < rank:
            names[dims[0].index % rank] = name
    return names


def _taken_out_of_order(sizes: list[_Size]) -> Iterator[tuple[int, int]]:
    """(a, b) for each dim `b` the target takes after dim `a` although `b` comes first in the tensor."""
    for position, earlier in enumerate(sizes):
        for later in sizes[position + 1 :]:
            for a in earlier.dims or ():
                yield from ((a, b) for b in later.dims or () if _before(b, a))


def _first_swap(sizes: list[_Size]) -> str:
    a, b = next(_taken_out_of_order(sizes))
    return f"dim {a} is read before dim {b}"
