import re
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.tree import integer_value

# Names a batch size goes by; `n` is left out on purpose: in graph code `n, c = x.shape` counts nodes.
_BATCH_SIZE_NAME = re.compile(r"^(b|bs|bsz|bsize|nb|batch|batch_?size|n_?batch(es)?|num_?batch(es)?)$", re.IGNORECASE)
# Batch statistics are these classes' job (BatchNorm-style code, whitening) or a loss's (contrastive, VICReg).
_MIXING_CLASS = re.compile(r"Norm|BN|Whiten|Loss|Criterion")
_REDUCTION_METHODS = {
    "sum", "mean", "nansum", "nanmean", "prod", "std", "var", "amax", "amin", "max", "min", "median", "logsumexp",
    "softmax", "log_softmax", "cumsum", "cumprod", "norm",
}  # fmt: skip
# Qualified functions that reduce: the position of their `dim` argument.
_REDUCTION_FUNCTIONS = {
    **{f"torch.{name}": 1 for name in _REDUCTION_METHODS - {"norm"}},
    "torch.norm": 2,
    "torch.nn.functional.softmax": 1,
    "torch.nn.functional.log_softmax": 1,
    "torch.nn.functional.normalize": 2,
}
_DIM_POSITION_OF_METHOD = {"norm": 1}  # x.norm(p, dim)
# Calls that keep a batch-major tensor batch-major (dim 0 stays the batch).
_KEEPS_BATCH_FUNCTIONS = {
    f"torch.nn.functional.{name}"
    for name in (
        "relu", "gelu", "silu", "elu", "leaky_relu", "mish", "softplus", "sigmoid", "tanh", "hardswish", "dropout",
        "linear", "conv1d", "conv2d", "conv3d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
        "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "layer_norm", "group_norm", "pad",
        "interpolate",
    )
} | {f"torch.{name}" for name in ("relu", "sigmoid", "tanh", "exp", "log", "abs", "sqrt", "clamp")}  # fmt: skip
_KEEPS_BATCH_METHODS = {
    "contiguous", "float", "double", "half", "bfloat16", "to", "clone", "detach", "relu", "sigmoid", "tanh", "exp",
    "log", "abs", "sqrt", "neg", "clamp", "type_as", "cpu", "cuda",
}  # fmt: skip
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


@dataclass(frozen=True)
class _Fold:
    """Dim 0 of a tensor holds these dims of a batch-major one, merged in this order (`x.view(-1, c)` of
    an `x` unpacked as `b, t, c`: ("b", "t")), as the statement shows."""

    order: tuple[str, ...]
    statement: cst.CSTNode


@dataclass
class _BatchFacts:
    """What one function has shown so far about which variables hold the batch in dim 0, in source order."""

    batch_major: dict[str, cst.CSTNode] = field(default_factory=dict)  # tensor -> the statement that shows it
    batch_sizes: set[str] = field(default_factory=set)  # variables holding the batch size
    dims: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tensor -> `b, t, c = x.shape`'s names
    folds: dict[str, _Fold] = field(default_factory=dict)  # tensor -> how its dim 0 folds the batch

    def forget(self, name: str) -> None:
        self.batch_major.pop(name, None)
        self.batch_sizes.discard(name)
        self.dims.pop(name, None)
        self.folds.pop(name, None)
        for tensor in [t for t, names in self.dims.items() if name in names]:  # a size it was read with changed
            del self.dims[tensor]



class BatchMixing(Rule):
    """
    ## What it does
    Flags a reduction, softmax or normalisation over dim 0 (`x.mean(0)`,
    `torch.sum(x, dim=0)`, `F.softmax(x, dim=0)`, `F.normalize(x, dim=0)`,
    `x.max(0)`...) inside a module's `forward`, on a tensor whose dim 0 the
    same function shows to be the batch: its size was unpacked into a
    batch-named variable (`b, c, h, w = x.shape`, `batch_size = x.size(0)`),
    or it was flattened keeping the batch (`x.view(x.size(0), -1)`,
    `x.flatten(1)`, `x.view(b, -1)`), or it comes from such a tensor through
    layers and element-wise functions (`self.fc(x)`, `F.relu(x)`, `x + y`).

    It also flags a reshape that splits a folded batch in the wrong order:
    a tensor unpacked as `b, t, c = x.shape` whose batch and time dims are
    merged (`x.view(-1, c)`, `x.reshape(b * t, c)`), carried through layers,
    then split as `view(t, b, ...)`: dim 0 was laid out sample by sample, so
    each "time step" slot now holds rows of several samples.

    ## Why is this bad?
    Reducing over the batch makes each sample's output depend on the other
    samples in the batch: predictions change with batch composition and
    size, a single example at inference gets a different answer than it did
    in training, and gradients leak between examples. Usually it is a typo
    for the feature dim (`softmax(logits, dim=0)` for `dim=1`). The recipe:
    "use backprop to chart dependencies ... the gradient of output i must be
    zero on every input j != i".

    ## Example
    ```python
    def forward(self, x):
        x = x.view(x.size(0), -1)
        return F.softmax(self.fc(x), dim=0)
    ```

    ## Use instead
    ```python
    def forward(self, x):
        x = x.view(x.size(0), -1)
        return F.softmax(self.fc(x), dim=1)
    ```

    ## Known problems
    A wrong re-split is flagged only when the folded tensor's layout is
    known from a shape unpacking of that same tensor: after
    `h, _ = self.rnn(x)` the layout of `h` depends on `batch_first`, and
    `h.reshape(b * t, c)` says nothing about it (the product is the same
    either way).
    Only tensors that the same function shows to be batch-major are judged:
    `x.sum(0)` on a bare argument is not flagged, nor after `x` is reassigned
    in a way that may move the batch (`x = x.transpose(0, 1)`), nor on a
    freshly stacked tensor (`torch.stack(outs).mean(0)` averages heads, not
    samples). Time-major code (`t, b, c = x.shape`) and graph code
    (`n, c = x.shape`) are not batch-major. Reductions inside `if
    self.training:`, in classes named like `*Norm*`/`*BN*`/`*Whiten*`
    (batch statistics are their job) or `*Loss*`/`*Criterion*` (contrastive
    losses mix the batch on purpose), and in forwards that keep `running_*`
    statistics, are not flagged. `--confirm` finds batch mixing wherever it
    happens.

    ## Runtime confirmation
    `--confirm` runs the per-sample gradient check in `eval()`: every output
    is back-propagated in groups (a sample's group is a distinct half of
    `n` passes, `n = 4` for a batch of 5) and the gradient on every other
    sample's input must be zero. A gradient across samples that flows through
    the reduction at the flagged line confirms the finding, with the worst
    (output, input) pair and its size; no gradient across samples, or a
    reduction there that turns out not to cover the batch, refutes it. A
    wrong re-split is confirmed when outputs depend on other samples and no
    reduction over the batch explains it. The
    check runs on every model it can build, and reports batch mixing found
    elsewhere (at the reduction's line, or at `forward()`) as confirmed
    NN102 findings.
    """

    code = "NN102"
    name = "batch-mixing"
    severity = "error"
    summary = "A reduction/softmax/normalisation over the batch dim in forward() makes samples depend on each other"
    triggers = ("forward",)

    bad = [
        Example(
            """
import torch.nn.functional as F
from torch import nn

class Classifier(nn.Module):
    def forward(self, x):
        x = x.view(x.size(0), -1)
        logits = self.fc(F.relu(x))
        return F.softmax(logits, dim=0)  # <--
""",
            message="`softmax` over dim 0, the batch (`x = x.view(x.size(0), -1)` at line 7)",
        ),
        Example(
            """
import torch
from torch import nn

class Encoder(nn.Module):
    def forward(self, x):
        b, c, h, w = x.shape
        x = self.conv(x)
        x = x - x.mean(0, keepdim=True)  # <--
        return torch.sum(x, dim=(0, 2))  # <--
""",
            note="a layer keeps the batch in dim 0; so does subtracting from the tensor",
        ),
        Example(
            """
import torch.nn.functional as F
from torch import nn

class ProjectionHead(nn.Module):
    def forward(self, features):
        batch_size = features.shape[0]
        z = self.mlp(features).view(batch_size, -1)
        return F.normalize(z, 2, 0), z.max(dim=0).values  # <--
""",
            note="a view to the batch size is batch-major; both calls on the line are reported",
        ),
        Example(
            """
import torch.nn.functional as F
from torch import nn

class Tagger(nn.Module):
    def forward(self, x):
        b, t, c = x.shape
        scores = self.out(F.relu(x.reshape(b * t, c)))
        return scores.view(t, b, -1)  # <--

class FrameClassifier(nn.Module):
    def forward(self, frames):
        batch, time, features = frames.size()
        flat = self.encoder(frames.view(-1, features))
        return flat.reshape(time, batch, -1).mean(0)  # <--
""",
            message="but it was folded as",
            note="a batch folded with time, split back in the other order",
        ),
    ]
    good = [
        Example(
            """
import torch.nn.functional as F
from torch import nn

class Tagger(nn.Module):
    def forward(self, x):
        b, t, c = x.shape
        scores = self.out(F.relu(x.reshape(t * b, c)))
        return scores.view(b, t, -1).transpose(0, 1)

class TimeMajor(nn.Module):
    def forward(self, x):
        b, t, c = x.shape
        x = x.transpose(0, 1)
        return self.out(x.reshape(t * b, c)).view(t, b, -1)

class RecurrentTagger(nn.Module):
    def forward(self, x):
        b, t, c = x.shape
        h, _ = self.rnn(x)
        return self.out(h.reshape(b * t, -1)).view(t, b, -1)
""",
            note="trap: split in the fold's order; a layout moved before the fold; a layout nothing shows (batch_first?)",
        ),
        Example(
            """
from torch import nn

class Standardize(nn.Module):
    def forward(self, x):
        b = x.size(0)
        if self.training:
            self.mean = x.mean(0).detach()
        return x - self.mean
""",
            note="trap: batch statistics computed in training mode only (BatchNorm-style code)",
        ),
        Example(
            """
from torch import nn

class GhostBatchNorm(nn.Module):
    def forward(self, x):
        batch_size, features = x.shape
        mean, var = x.mean(0), x.var(0)
        return (x - mean) / (var + self.eps).sqrt()
""",
            note="trap: BatchNorm-style code, whose job is batch statistics",
        ),
        Example(
            """
import torch
import torch.nn.functional as F
from torch import nn

def contrastive_loss(z1, z2, temperature=0.1):
    batch_size = z1.size(0)
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / temperature
    return -(logits.log_softmax(dim=0).diag().mean() + logits.log_softmax(dim=1).diag().mean()) / 2

class VICRegLoss(nn.Module):
    def forward(self, x, y):
        batch_size = x.size(0)
        x = x - x.mean(dim=0)
        return (x.T @ x / (batch_size - 1)).pow(2).sum()
""",
            note="trap: contrastive losses, outside forward or in a loss module, mix the batch on purpose",
        ),
        Example(
            """
import torch
from torch import nn

class Ensemble(nn.Module):
    def forward(self, x):
        b, c, h, w = x.shape
        logits = torch.stack([head(x) for head in self.heads]).mean(0)
        return logits + torch.stack(self.extra(x), dim=0).sum(dim=0)
""",
            note="stacked tensors: dim 0 is the stack, not the batch",
        ),
        Example(
            """
from torch import nn

class SequencePool(nn.Module):
    def forward(self, x):
        t, b, c = x.shape
        pooled = x.mean(0)
        n, d = self.nodes.shape
        return pooled, self.nodes.sum(0)

class Transposed(nn.Module):
    def forward(self, x):
        b, t, c = x.shape
        x = x.transpose(0, 1)
        return x.softmax(dim=0)
""",
            note="time-major or graph layouts, and a reassignment that may move the batch, are not batch-major",
        ),
        Example(
            """
import torch.nn.functional as F
from torch import nn

class Head(nn.Module):
    def forward(self, x):
        batch_size = x.size(0)
        x = x.view(batch_size, -1)
        return F.softmax(self.fc(x), dim=1), x.sum(1), [x.sum(0) for x in self.tables]

class Unknown(nn.Module):
    def forward(self, x):
        return x.sum(0)
""",
            note="reductions over the features; a comprehension rebinding the name; a layout nothing shows",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self._scopes: list[_BatchFacts] = []
        self._judged: list[bool] = []  # per function: is it a forward that may be judged?

    # -- scopes -------------------------------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_BatchFacts())
        self._judged.append(self._is_judged_forward(node))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.pop()
        self._judged.pop()

    def _is_judged_forward(self, node: cst.FunctionDef) -> bool:
        parents = self.context.ancestors  # a method's: ... ClassDef > IndentedBlock
        in_class = len(parents) >= 2 and isinstance(parents[-2], cst.ClassDef)
        if not in_class or "forward" not in node.name.value or _MIXING_CLASS.search(parents[-2].name.value):
            return False
        # A forward that keeps running statistics is BatchNorm-style code.
        running = m.Name(value=m.MatchIfTrue(lambda name: name.startswith("running_")))
        return not m.findall(node, m.Attribute(attr=running))

    # -- what the function shows about its tensors -------------------------------------------

    def leave_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._learn(target.target, node.value)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._learn(node.target, node.value)

    def visit_For(self, node: cst.For) -> None:
        self._forget(node.target)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._forget(node.asname.name)

    def _forget(self, target: cst.BaseExpression) -> None:
        if self._scopes:
            for name in m.findall(target, m.Name()):
                self._scopes[-1].forget(name.value)

    def _learn(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """`b, c, h, w = x.shape` / `batch_size = x.size(0)`: x is batch-major; `y = <batch-major expr>`: so is y."""
        if not self._scopes:
            return
        facts = self._scopes[-1]
        shown_by = self._batch_major(value)  # before the target's old value is forgotten: `x = self.fc(x)`
        fold = self._fold(value)
        self._forget(target)
        if isinstance(target, (cst.Tuple, cst.List)):
            first = target.elements[0] if target.elements else None
            tensor = _sized_tensor(value, whole_shape=True)
            if isinstance(first, cst.Element) and isinstance(first.value, cst.Name) and tensor is not None:
                if _BATCH_SIZE_NAME.match(first.value.value):
                    facts.batch_sizes.add(first.value.value)
                    facts.batch_major.setdefault(tensor, self.context.current_statement())
                    names = [e.value.value for e in target.elements if isinstance(e.value, cst.Name)]
                    if len(names) == len(target.elements) and _shape_of(value) is not None:  # the whole shape
                        facts.dims[tensor] = tuple(names)
            return
        if not isinstance(target, cst.Name):
            return
        tensor = _sized_tensor(value, whole_shape=False)
        if tensor is not None and _BATCH_SIZE_NAME.match(target.value):
            facts.batch_sizes.add(target.value)
            facts.batch_major.setdefault(tensor, self.context.current_statement())
        elif shown_by is not None:
            facts.batch_major[target.value] = shown_by
        if fold is not None:
            facts.folds[target.value] = fold

    def _batch_major(self, expr: cst.BaseExpression) -> cst.CSTNode | None:
        """The statement showing that `expr` holds the batch in dim 0, or None."""
        if not self._scopes:
            return None
        facts = self._scopes[-1]
        if isinstance(expr, cst.Name):
            return None if expr.value in self._comprehension_names() else facts.batch_major.get(expr.value)
        if isinstance(expr, cst.BinaryOperation):
            operands = [expr.left] if isinstance(expr.operator, cst.MatrixMultiply) else [expr.left, expr.right]
            return next(filter(None, map(self._batch_major, operands)), None)
        if isinstance(expr, cst.Subscript) and isinstance(expr.slice[0].slice, cst.Slice):
            whole = expr.slice[0].slice
            return self._batch_major(expr.value) if whole.lower is None and whole.upper is None else None
        if not isinstance(expr, cst.Call):
            return None
        positional = [arg.value for arg in expr.args if arg.keyword is None and not arg.star]
        func = expr.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("view", "reshape") and positional:
            first = positional[0]
            if (isinstance(first, cst.Name) and first.value in facts.batch_sizes) or _sized_tensor(first, False):
                return self.context.current_statement()
        if isinstance(func, cst.Attribute) and func.attr.value == "flatten" and integer_value(_at(positional, 0)) == 1:
            return self.context.current_statement()
        if self.context.call_name(expr) == "torch.flatten" and integer_value(_at(positional, 1)) == 1:
            return self.context.current_statement()
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            return self._batch_major(positional[0]) if positional else None  # a layer keeps the batch
        if self.context.call_name(expr) in _KEEPS_BATCH_FUNCTIONS:
            return self._batch_major(positional[0]) if positional else None
        if isinstance(func, cst.Attribute) and func.attr.value in _KEEPS_BATCH_METHODS:
            return self._batch_major(func.value)
        return None

    def _fold(self, expr: cst.BaseExpression) -> _Fold | None:
        """How dim 0 of `expr` folds the batch with other dims: a view/reshape of a tensor unpacked as
        `b, t, c` to `(-1, c)` or `(b * t, c)`, then layers and element-wise functions keep it."""
        if not self._scopes:
            return None
        facts = self._scopes[-1]
        if isinstance(expr, cst.Name):
            return None if expr.value in self._comprehension_names() else facts.folds.get(expr.value)
        if not isinstance(expr, cst.Call):
            return None
        positional = [arg.value for arg in expr.args if arg.keyword is None and not arg.star]
        func = expr.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("view", "reshape") and isinstance(func.value, cst.Name):
            dims = facts.dims.get(func.value.value)
            # The rest of the new shape must name the dims left, in order: then dim 0 holds the others.
            rest = tuple(arg.value if isinstance(arg, cst.Name) else "" for arg in positional[1:])
            merged = _merged_names(_at(positional, 0), dims, len(rest)) if dims and positional else None
            if merged is not None and len(merged) >= 2 and rest == dims[len(merged) :]:
                return _Fold(merged, self.context.current_statement())
            return None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            return self._fold(positional[0]) if positional else None  # a layer keeps dim 0
        if self.context.call_name(expr) in _KEEPS_BATCH_FUNCTIONS:
            return self._fold(positional[0]) if positional else None
        if isinstance(func, cst.Attribute) and func.attr.value in _KEEPS_BATCH_METHODS:
            return self._fold(func.value)
        return None

    def _check_resplit(self, node: cst.Call) -> None:
        """`y.view(t, b, -1)` of a `y` whose dim 0 folded (b, t): the split puts other samples' rows in each slot."""
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value in ("view", "reshape")):
            return
        fold = self._fold(func.value)
        positional = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
        leading = tuple(arg.value if isinstance(arg, cst.Name) else "" for arg in positional[: len(fold.order)]) if fold else ()
        if fold is None or sorted(leading) != sorted(fold.order) or leading == fold.order:
            return
        folded = cst.Module([]).code_for_node(fold.statement).strip().splitlines()[0]
        line = self.context.position(fold.statement).start.line
        self.report(
            node,
            f"`{func.attr.value}({', '.join(leading)}, ...)` splits dim 0 as ({', '.join(leading)}), but it was "
            f"folded as ({', '.join(fold.order)}) (`{folded}` at line {line}): each slot then holds rows of "
            f"other samples; split as ({', '.join(fold.order)}) and transpose after if you need that order",
            facts={"call": func.attr.value, "kind": "resplit"},
        )

    def _comprehension_names(self) -> set[str]:
        """Names a comprehension or lambda around the current node rebinds: not this function's tensors."""
        names = set()
        for node in self.context.ancestors:
            if isinstance(node, _COMPREHENSIONS):
                loop = node.for_in
                while loop is not None:
                    names |= {name.value for name in m.findall(loop.target, m.Name())}
                    loop = loop.inner_for_in
            elif isinstance(node, cst.Lambda):
                names |= {param.name.value for param in node.params.params}
        return names

    # -- the check ----------------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        if not self._judged or not self._judged[-1] or _in_training_branch(self.context.ancestors, node):
            return
        self._check_resplit(node)
        reduced = self._reduction(node)
        if reduced is None:
            return
        call, tensor = reduced
        shown_by = self._batch_major(tensor)
        if shown_by is None:
            return
        shown = cst.Module([]).code_for_node(shown_by).strip().splitlines()[0]
        line = self.context.position(shown_by).start.line
        self.report(
            node,
            f"`{call}` over dim 0, the batch (`{shown}` at line {line}): each sample's output then depends on "
            "the rest of the batch; reduce over the sample's own dims instead",
            facts={"call": call},
        )

    def _reduction(self, node: cst.Call) -> tuple[str, cst.BaseExpression] | None:
        """(call, the reduced tensor) when `node` reduces over dim 0."""
        positional = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
        dim = next((arg.value for arg in node.args if arg.keyword is not None and arg.keyword.value == "dim"), None)
        name = self.context.call_name(node)
        if name in _REDUCTION_FUNCTIONS and positional:
            position, tensor, call = _REDUCTION_FUNCTIONS[name], positional[0], name.rsplit(".", 1)[1]
            dim = dim if dim is not None else _at(positional, position)
        elif name is None and isinstance(node.func, cst.Attribute) and node.func.attr.value in _REDUCTION_METHODS:
            call, tensor = node.func.attr.value, node.func.value
            position = _DIM_POSITION_OF_METHOD.get(call, 0)
            dim = dim if dim is not None else _at(positional, position)
        else:
            return None
        dims = dim.elements if isinstance(dim, (cst.Tuple, cst.List)) else [dim] if dim is not None else []
        dims = [element.value if isinstance(element, cst.BaseElement) else element for element in dims]
        return (call, tensor) if any(integer_value(d) == 0 for d in dims) else None

    # -- runtime confirmation -----------------------------------------------------------------

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """The per-sample gradient check (nnlint.confirm.per_sample) on the models that run this line:
        a cross-sample gradient through this line's reduction confirms; none, or no batch reduced here, refutes."""
        models = session.models_covering(finding.path, finding.line)
        if not models:
            return unverifiable(session.why_uncovered(finding.path, finding.line))
        couplings = [session.batch_coupling(model) for model in models]
        here = (finding.path, finding.line)
        ran = [c for c in couplings if not c.reason and any((s.path, s.line) == here for s in c.sites_run)]
        if not ran:
            reason = next((c.reason for c in couplings if c.reason), "")
            return unverifiable(reason or f"line {finding.line} did not run in the eval forward of {models[0].name}")
        coupling = ran[0]
        data = {"model": coupling.model, "input": coupling.input, "backward_passes": coupling.passes}
        if finding.facts.get("kind") == "resplit":  # no reduction to follow: the outputs' dependence decides
            if coupling.mixes and not coupling.mixing_calls:
                return confirmed(f"{coupling.evidence()}, and no reduction over the batch explains it", **coupling.data())
            if coupling.mixes:
                return unverifiable(f"{coupling.evidence()}, through {coupling.mixing_calls[0].describe()} elsewhere", **data)
            return refuted(f"in eval(), no output of {coupling.model} on {coupling.input} depends on another sample", **data)
        reductions = [r for r in coupling.reductions if (r.site.path, r.site.line) == here]
        over_batch = [r for r in reductions if r.over_batch]
        reached = [r for r in over_batch if r.reached]
        if coupling.mixes and reached:
            return confirmed(f"{coupling.evidence()}, through {reached[0].describe()} at this line", **coupling.data())
        if reductions and not over_batch:
            return refuted(f"on {coupling.input}, {reductions[0].describe()} here does not reduce the batch", **data)
        if not reductions:
            return unverifiable(f"no reduction written here ran in {coupling.model}'s probe forward", **data)
        if not reached:
            return refuted(
                f"{over_batch[0].describe()} here reduces the batch, but no output of {coupling.model} on "
                f"{coupling.input} depends on it ({coupling.passes} grouped backward passes)",
                **data,
            )
        return refuted(
            f"in eval(), no output of {coupling.model} on {coupling.input} depends on another sample", **data
        )


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


def _at(values: list, index: int):
    return values[index] if len(values) > index else None


def _shape_of(value: cst.BaseExpression) -> str | None:
    """`x` for `x.shape` / `x.size()`, a local tensor variable."""
    if m.matches(value, m.Attribute(value=m.Name(), attr=m.Name("shape"))):
        return value.value.value
    if m.matches(value, m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("size")), args=[])):
        return value.func.value.value
    return None


def _sized_tensor(value: cst.BaseExpression, whole_shape: bool) -> str | None:
    """The local tensor whose dim-0 size `value` reads: `x.shape` / `x.size()` / `x.shape[:2]` when
    `whole_shape` (unpacked into names), else `x.size(0)` / `x.shape[0]` / `len(x)`."""
    index = value.slice[0].slice if isinstance(value, cst.Subscript) and len(value.slice) == 1 else None
    if whole_shape:
        if isinstance(index, cst.Slice) and index.lower is not None and integer_value(index.lower) != 0:
            return None
        return _shape_of(value.value if isinstance(index, cst.Slice) else value)
    if isinstance(index, cst.Index):
        return _shape_of(value.value) if integer_value(index.value) == 0 else None
    size_0 = m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("size")), args=[m.Arg(value=m.Integer("0"))])
    if m.matches(value, size_0):
        return value.func.value.value
    if m.matches(value, m.Call(func=m.Name("len"), args=[m.Arg(value=m.Name())])):
        return value.args[0].value.value
    return None


def _tests_training(test: cst.BaseExpression) -> bool:
    return bool(m.findall(test, m.Attribute(value=m.Name("self"), attr=m.Name("training")))) and not m.matches(
        test, m.UnaryOperation(operator=m.Not())
    )


def _in_training_branch(ancestors: list[cst.CSTNode], node: cst.CSTNode) -> bool:
    """Inside the body of `if self.training:` or `... if self.training else ...`: batch statistics belong there."""
    chain = [*ancestors, node]
    return any(
        isinstance(parent, (cst.If, cst.IfExp)) and child is parent.body and _tests_training(parent.test)
        for parent, child in zip(chain, chain[1:])
    )
