import re

import libcst as cst
import libcst.matchers as m

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.layout import REDUCTIONS, CallFacts, Layouts
from nnlint.tree import descendants, integer_value

# Batch statistics are these classes' job (BatchNorm-style code, whitening) or a loss's (contrastive, VICReg).
_MIXING_CLASS = re.compile(r"Norm|BN|Whiten|Loss|Criterion")
# Qualified functions that reduce: the position of their `dim` argument.
_REDUCTION_FUNCTIONS = {
    **{f"torch.{name}": 1 for name in REDUCTIONS - {"norm"}},
    "torch.norm": 2,
    "torch.nn.functional.softmax": 1,
    "torch.nn.functional.log_softmax": 1,
    "torch.nn.functional.normalize": 2,
}
_DIM_POSITION_OF_METHOD = {"norm": 1}  # x.norm(p, dim)


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
    layers and element-wise functions
    (`self.fc(x)`, `F.relu(x)`, `x + y`), loops over layers (`for block in
    self.blocks: x = block(x)`) and what keeps dim 0 in place (`x.transpose(1,
    2)`, `x.permute(0, 2, 1)`, `x.flatten(2)`, `x[:, 0]`): the tensor layouts of
    `nnlint.script.layout`.

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
    `x.sum(0)` on a bare argument or on a layer's output is not flagged (a
    Linear takes `(T, B, C)` too; that a convolution's output is batch-major is
    known, `nnlint.script.layout.CONV_OUTPUT_SHOWS_BATCH`, but not used yet), nor after `x` is reassigned in a way that
    may move the batch (`x = x.transpose(0, 1)`), nor on a
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
        Example(
            """
import torch.nn.functional as F
from torch import nn

class ConvEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3)
        self.blocks = nn.ModuleList([nn.Conv2d(64, 64, 3) for _ in range(4)])

    def forward(self, x):
        batch_size = x.size(0)
        h = self.conv(x)
        for block in self.blocks:
            h = F.relu(block(h))
        h = h - h.mean(0)  # <--
        tokens = h.flatten(2).transpose(1, 2)
        return F.softmax(tokens, dim=0)  # <--
""",
            note="after layers: loops over layers, flatten and transpose keep the batch in dim 0",
            message="`batch_size = x.size(0)` at line 12",
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
        Example(
            """
from torch import nn

class TimeMajorPool(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        h = self.proj(x)
        return h.mean(0)
""",
            note="trap: a Linear takes (T, B, C) as well as (B, T, C): its output says nothing about dim 0",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        layouts = script_model(self.context).layouts
        judged: dict[cst.FunctionDef, bool] = {}
        for facts in layouts.calls.values():
            function = facts.function
            if function is None:
                continue
            if function not in judged:
                judged[function] = _is_judged_forward(function, layouts)
            if not judged[function] or _in_training_branch(list(facts.ancestors), facts.call):
                continue
            self._check_resplit(facts)
            self._check_reduction(facts)

    def _check_reduction(self, facts: CallFacts) -> None:
        reduced = self._reduction(facts.call)
        if reduced is None:
            return
        call, on_receiver = reduced
        layout = facts.receiver if on_receiver else facts.argument
        shown_by = layout.batch if layout is not None else None
        if shown_by is None:
            return
        shown = cst.Module([]).code_for_node(shown_by).strip().splitlines()[0]
        line = self.context.position(shown_by).start.line
        self.report(
            facts.call,
            f"`{call}` over dim 0, the batch (`{shown}` at line {line}): each sample's output then depends on "
            "the rest of the batch; reduce over the sample's own dims instead",
            facts={"call": call},
        )

    def _check_resplit(self, facts: CallFacts) -> None:
        """`y.view(t, b, -1)` of a `y` whose dim 0 folded (b, t): the split puts other samples' rows in each slot."""
        node, func = facts.call, facts.call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value in ("view", "reshape")):
            return
        fold = facts.receiver.fold if facts.receiver is not None else None
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

    def _reduction(self, node: cst.Call) -> tuple[str, bool] | None:
        """(call, whether the receiver is what is reduced) when `node` reduces over dim 0; else its
        first positional argument is."""
        positional = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
        dim = next((arg.value for arg in node.args if arg.keyword is not None and arg.keyword.value == "dim"), None)
        name = self.context.call_name(node)
        if name in _REDUCTION_FUNCTIONS and positional:
            position, on_receiver, call = _REDUCTION_FUNCTIONS[name], False, name.rsplit(".", 1)[1]
            dim = dim if dim is not None else _at(positional, position)
        elif name is None and isinstance(node.func, cst.Attribute) and node.func.attr.value in REDUCTIONS:
            call, on_receiver = node.func.attr.value, True
            position = _DIM_POSITION_OF_METHOD.get(call, 0)
            dim = dim if dim is not None else _at(positional, position)
        else:
            return None
        dims = dim.elements if isinstance(dim, (cst.Tuple, cst.List)) else [dim] if dim is not None else []
        dims = [element.value if isinstance(element, cst.BaseElement) else element for element in dims]
        return (call, on_receiver) if any(integer_value(d) == 0 for d in dims) else None

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


def _is_judged_forward(function: cst.FunctionDef, layouts: Layouts) -> bool:
    """A module's forward, not of a class whose job is batch statistics, and keeping no running statistics."""
    owner = layouts.owner_class(function)
    if owner is None or "forward" not in function.name.value or _MIXING_CLASS.search(owner.name.value):
        return False
    return not any(
        isinstance(node, cst.Attribute) and node.attr.value.startswith("running_") for node in descendants(function)
    )


def _at(values: list, index: int):
    return values[index] if len(values) > index else None


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
