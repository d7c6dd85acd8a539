import re
from collections.abc import Iterator
from dataclasses import replace

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.layout import Size, View, starred


class ViewAsPermute(Rule):
    """
    ## What it does
    Flags `.view()` / `.reshape()` (and `torch.reshape`) whose target sizes put
    a tensor's own dims in a different order: sizes unpacked earlier
    (`b, c, h, w = x.shape; x.view(b, h, w, c)`, `x.reshape(b, h * w, c)`),
    sizes read inline in a new order (`x.view(x.size(1), x.size(0), -1)`), or a
    `-1` that has to swallow dims from the wrong place (`x.reshape(b, -1, c)`).
    The dims are followed through layers, transpose/permute/flatten, views,
    chunk/unbind, einops and `@` (`nnlint.script.layout`), so it also flags the
    commonest real form, splitting attention heads before the time dim:
    `q = self.q(x).reshape(B, heads, T, C // heads)` of a `(B, T, C)` input,
    where `reshape(B, T, heads, C // heads).transpose(1, 2)` was meant; merging
    them back without the transpose (`(attn @ v).reshape(B, T, -1)`); and
    tokens viewed as a map (`x.reshape(B, C, H, W)` of a `(B, N, C)`).

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
    Dims are known from sizes read in the same function (`x.shape`,
    `x.size()`, `x.shape[i]`, `x.size(i)`, slices and products of them) and
    carried through the operations above; a layer is known by its
    `self.<name> = nn.<Layer>(...)` in the class (Linear, Conv, Embedding,
    norms, dropout). Through anything else (a custom module, `torch.bmm`, an
    `if` whose branches assign the tensor differently) its dims are
    forgotten, and only `--confirm` judges the view. A merge that skips a dim
    with no name (`b, _, h, w = x.shape; x.view(b * h, w)`) is taken as
    correct: that dim is presumably of size 1. A view of a padded or
    concatenated tensor, or one whose result is cut and viewed again, is
    taken as a deliberate skew (the Transformer-XL relative shift) and not
    judged.

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
        Example(
            """
from torch import nn

class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)

    def forward(self, x):
        B, T, C = x.shape
        q = self.q(x).reshape(B, self.heads, T, C // self.heads)  # <--
        k, v = self.kv(x).chunk(2, dim=-1)
        k = k.view(B, self.heads, T, -1)  # <--
        return q, k, v
""",
            note="splitting heads out of a layer's output: the heads sit after T in memory",
            message="puts self.heads between B and T, neighbouring dims of",
        ),
        Example(
            """
def split(self, tensor):
    batch_size, length, d_model = tensor.size()
    d_tensor = d_model // self.n_head
    return tensor.view(batch_size, self.n_head, length, d_tensor)  # <--
""",
            note="the shortcut asked about in hyunwoongko/transformer#15: (b, t, c) viewed as (b, h, t, d)",
            message="use tensor.view(batch_size, length, self.n_head, d_tensor).transpose(1, 2)",
        ),
        Example(
            """
import math
import torch
from torch import nn

class MultiheadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim)

    def forward(self, x):
        batch_size, seq_length, _ = x.size()
        qkv = self.qkv_proj(x).reshape(batch_size, seq_length, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).chunk(3, dim=-1)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        values = attention @ v
        return values.reshape(batch_size, seq_length, self.embed_dim)  # <--
""",
            note="heads merged back without moving them after the sequence (jsbaan/transformer-from-scratch#6)",
            message="use values.transpose(1, 2).reshape(batch_size, seq_length, self.embed_dim)",
        ),
        Example(
            """
def tokens_to_map(x, H, W):
    B, N, C = x.shape
    return x.reshape(B, C, H, W)  # <--
""",
            note="(B, N, C) tokens viewed as a (B, C, H, W) map: C has to move before N first",
            message="use x.transpose(1, 2).reshape(B, C, H, W)",
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
        Example(
            """
from einops import rearrange
from torch import nn

class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        h = self.heads
        q = self.q(x).reshape(B, T, h, C // h).transpose(1, 2)
        k = rearrange(self.k(x), "b t (h d) -> b h t d", h=h)
        out = (q @ k.transpose(-2, -1)).softmax(-1) @ k
        return out.transpose(1, 2).reshape(B, T, C), k.reshape(B, h, T, -1)
""",
            note="trap: heads split after T, then moved with transpose or einops",
        ),
        Example(
            """
import torch
import torch.nn.functional as F

def _rel_shift(x):
    zero_pad_shape = (x.size(0), 1) + x.size()[2:]
    zero_pad = torch.zeros(zero_pad_shape, device=x.device, dtype=x.dtype)
    x_padded = torch.cat([zero_pad, x], dim=1)
    x_padded_shape = (x.size(1) + 1, x.size(0)) + x.size()[2:]
    x_padded = x_padded.view(*x_padded_shape)
    return x_padded[1:].view_as(x)

def skew(rel_logits):
    padded = F.pad(rel_logits, (1, 0))
    b, h, rows, cols = padded.shape
    return padded.reshape(b, h, cols, rows)[:, :, 1:]

def relative_shift_gather(positional_attn, context_len, shift):
    batch_size, n_head, seq_len, max_rel_len = positional_attn.shape
    positional_attn = torch.reshape(positional_attn, [batch_size, n_head, max_rel_len, seq_len])
    positional_attn = positional_attn[:, :, shift:, :]
    positional_attn = torch.reshape(positional_attn, [batch_size, n_head, seq_len, max_rel_len - shift])
    return positional_attn[..., :context_len]
""",
            note="trap: relative-position skews (Transformer-XL _rel_shift, Music Transformer, Funnel): "
            "pad or cut a row, view with swapped sizes on purpose",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        layouts = script_model(self.context).layouts
        for view in layouts.views:
            if view.skew:  # padded, or viewed, cut and viewed again: a relative shift on purpose
                continue
            if view.tensor is not None and _reorders(view.sizes, view.rank):
                self._report_reorder(view)
            elif (whole := _sizes_by_layout(view)) is not None and _reorders(whole, len(view.source.dims)):
                dims = [_dim_name(layouts, dim) for dim in view.source.dims]
                self._report_reorder(replace(view, tensor=_code(view.receiver), sizes=whole, dim_names=dims))
            elif (split := _heads_before(view)) is not None:
                self._report_heads(view, *split, [_dim_name(layouts, dim) for dim in view.source.dims])
            elif (last := _last_dim_first(view)) is not None:
                self._report_last(view, *last, [_dim_name(layouts, dim) for dim in view.source.dims])

    def _report_reorder(self, view: View) -> None:
        tensor, sizes = view.tensor, view.sizes
        rank = view.rank if view.rank is not None or view.dim_names is None else len(view.dim_names)
        order = _order(sizes, rank)
        self.report(
            view.call,
            f"{_code(view.call)} reorders the dims of {tensor} "
            f"({', '.join(view.dim_names) if view.dim_names else _first_swap(sizes)}); "
            f"a view cannot move data: use {_fix(tensor, sizes, order)}",
            facts={
                "tensor": tensor,
                "input_dims": view.dim_names,
                "target": [size.text for size in sizes],
                "permutation": [dim for group in order for dim in group] if order else None,
            },
        )

    def _report_last(self, view: View, place: int, before: int, dims: list[str]) -> None:
        receiver, texts = _code(view.receiver), [size.text for size in view.sizes]
        last, start = len(dims) - 1, before + 1
        move = f".transpose({start}, {last})" if last - start == 1 else f".movedim({last}, {start})"
        method = "view" if _code(view.call.func).endswith(".view") else "reshape"
        self.report(
            view.call,
            f"{_code(view.call)} takes {texts[place]}, the last dim of {receiver} ({', '.join(dims)}), before "
            f"{', '.join(texts[place + 1 :])}, which can then only come from {', '.join(dims[start:last])} "
            f"before it: a view cannot move data; use {receiver}{move}.{method}({', '.join(texts)})",
            facts={"tensor": receiver, "input_dims": dims, "target": texts, "permutation": None},
        )

    def _report_heads(self, view: View, first: int, second: int, dims: list[str]) -> None:
        sizes = view.sizes
        between = sizes[first + 1 : second]
        fixed = [*sizes[: first + 1], sizes[second], *between, *sizes[second + 1 :]]
        move = f".transpose({first + 1}, {second})" if len(between) == 1 else f".movedim({first + 1}, {second})"
        receiver, method = _code(view.receiver), "view" if _code(view.call.func).endswith(".view") else "reshape"
        texts = [size.text for size in sizes]
        self.report(
            view.call,
            f"{_code(view.call)} puts {', '.join(texts[first + 1 : second])} between {texts[first]} and "
            f"{texts[second]}, neighbouring dims of {receiver} ({', '.join(dims)}): it splits that off a later "
            f"dim and moves it before {texts[second]}, which a view cannot do; use "
            f"{receiver}.{method}({', '.join(size.text for size in fixed)}){move}",
            facts={"tensor": receiver, "input_dims": dims, "target": texts, "permutation": None},
        )

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


def _code(node: cst.CSTNode) -> str:
    return re.sub(r"\s+", " ", cst.Module([]).code_for_node(node))


def _dim_name(layouts, atoms: tuple[str, ...]) -> str:
    return " * ".join(layouts.name(atom) for atom in atoms) or "1"


def _heads_before(view: View) -> tuple[int, int] | None:
    """(first, second): target positions of two neighbouring dims of the receiver, each whole (`B`, `T`
    of a `(B, T, C)`), with unknown sizes between them (`reshape(B, heads, T, C // heads)`). Those can
    only be 1, so the target moves what it splits from a later dim before `T`: the heads-split bug."""
    anchors = _anchors(view) or []
    for (first, dim), (second, next_dim) in zip(anchors, anchors[1:]):
        between = view.sizes[first + 1 : second]
        if next_dim == dim + 1 and _only_unknown(between):
            return first, second
    return None


def _sizes_by_layout(view: View) -> list[Size] | None:
    """The target sizes as the receiver's dims read from its layout (`self.proj(x)`, a tensor permuted or
    moved through layers after its sizes were read): a size that is whole dims of it, in order, names
    them; None when no size does."""
    dims = view.source.dims if view.source is not None else None
    if not dims or len(set(dims)) != len(dims) or () in dims or any(starred(size.arg) for size in view.sizes):
        return None
    where = {atom: index for index, dim in enumerate(dims) for atom in dim}
    sizes, named = [], False
    for size in view.sizes:
        indexes = sorted({where[atom] for atom in size.atoms if atom in where}) if size.atoms else []
        whole = size.atoms is not None and indexes and len(size.atoms) == sum(len(dims[i]) for i in indexes)
        whole = whole and all(atom in where for atom in size.atoms)
        sizes.append(replace(size, dims=tuple(indexes) if whole else () if size.atoms == () else None))
        named = named or bool(whole)
    unknown = [place for place, size in enumerate(sizes) if size.dims is None]
    if len(unknown) == 1:  # the view holds every element: the one size that names no dim is the rest, like -1
        sizes[unknown[0]] = replace(sizes[unknown[0]], wildcard=True)
    return sizes if named else None


def _last_dim_first(view: View) -> tuple[int, int] | None:
    """(place, dim): the target takes the receiver's last dim whole (`C` of a `(B, N, C)`) and then sizes
    that name no dim (`reshape(B, C, H, W)`): those can only be 1, or the dims before `C` moved after it.
    `dim` is the whole dim named just before it in the target (-1: none)."""
    anchors = _anchors(view)
    if not anchors:
        return None
    place, dim = anchors[-1]
    if dim != len(view.source.dims) - 1 or not _only_unknown(view.sizes[place + 1 :]):
        return None
    before = anchors[-2][1] if len(anchors) > 1 else -1
    return (place, before) if dim - before > 1 else None


def _anchors(view: View) -> list[tuple[int, int]] | None:
    """(place in the target, dim of the receiver) of each target size that is one whole dim, in order."""
    dims = view.source.dims if view.source is not None else None
    if not dims or any(starred(size.arg) for size in view.sizes):
        return None
    where = {dim: index for index, dim in enumerate(dims) if dim}
    if len(where) != sum(1 for dim in dims if dim):
        return None  # a dim seen twice: its atoms do not say which one a size is
    anchors = [(place, where[size.atoms]) for place, size in enumerate(view.sizes) if size.atoms in where]
    if [dim for _, dim in anchors] != sorted({dim for _, dim in anchors}):
        return None  # a reorder of whole dims, or a dim taken twice: not this bug
    return anchors


def _only_unknown(sizes: list[Size]) -> bool:
    """Sizes that name no dim of the receiver (`heads`, `C // heads`, `2`); `1` and `-1` are not such sizes."""
    return bool(sizes) and all(size.atoms is None and not size.wildcard for size in sizes)


def _before(first: int, second: int) -> bool:
    """Whether dim `first` certainly comes before dim `second`, two different dims. An index from
    the start and one from the end compare only when one of them is the first or the last dim."""
    if (first < 0) == (second < 0):
        return first < second
    return first >= 0 and (first == 0 or second == -1)


def _reorders(sizes: list[Size], rank: int | None) -> bool:
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


def _order(sizes: list[Size], rank: int | None) -> list[list[int]] | None:
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


def _fix(tensor: str, sizes: list[Size], order: list[list[int]] | None) -> str:
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


def _taken_out_of_order(sizes: list[Size]) -> Iterator[tuple[int, int]]:
    """(a, b) for each dim `b` the target takes after dim `a` although `b` comes first in the tensor."""
    for position, earlier in enumerate(sizes):
        for later in sizes[position + 1 :]:
            for a in earlier.dims or ():
                yield from ((a, b) for b in later.dims or () if _before(b, a))


def _first_swap(sizes: list[Size]) -> str:
    a, b = next(_taken_out_of_order(sizes))
    return f"dim {a} is read before dim {b}"
