from __future__ import annotations

import re

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, listed, refuted, unverifiable
from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.tree import descendants

# torch.nn layers that own randomly initialised parameters. Parameter-free layers (ReLU, Dropout,
# pooling) and the norms, whose fresh parameters are ones and zeros (the same every call), are left out.
_LAYERS_WITH_WEIGHTS = re.compile(
    r"torch\.nn\.(Lazy)?(Linear|Bilinear|Conv(Transpose)?[123]d|Embedding(Bag)?|(LSTM|GRU|RNN)(Cell)?"
    r"|MultiheadAttention|Transformer(Encoder|Decoder)?(Layer)?|PReLU)"
)


class LayerBuiltInForward(Rule):
    """
    ## What it does
    Flags a layer with weights (`nn.Linear`, `nn.Conv*`, `nn.Embedding`,
    `nn.LSTM`/`GRU`/`RNN`, `nn.MultiheadAttention`, ...) constructed inside
    a module's `forward`.

    ## Why is this bad?
    Each call builds a fresh layer with new random weights. It is not a
    registered submodule when the optimizer is created, so it is never
    trained; the model's output is different on every call, even in
    `eval()`; its weights are not in the checkpoint; and it is created on the
    CPU whatever device the model is on. Training "works" while the layer
    is a random projection that changes every step.

    ## Example
    ```python
    def forward(self, x):
        x = self.encoder(x)
        return nn.Linear(x.size(-1), 10)(x)
    ```

    ## Use instead
    Build the layer in `__init__` and call it in `forward`:
    ```python
    def __init__(self, hidden):
        super().__init__()
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.head(self.encoder(x))
    ```
    (`nn.LazyLinear(10)` when the input size is only known at the first call).

    ## Runtime confirmation
    `--confirm` runs two `eval()` forwards of the model on one input (no
    reseeding between them), recording the parameters created and the line
    that built them: parameters built at the finding's line while the two
    outputs differ (or the model's parameter count grows) confirm it; the
    line ran but the outputs agree exactly and no parameter was added,
    refuted (e.g. a fixed kernel filled with constants); the line did not run
    on the probe, unverifiable.
    """

    code = "NN204"
    name = "layer-built-in-forward"
    severity = "error"
    summary = "A layer with weights built inside forward() is re-initialised every call and never trained"
    triggers = ("forward",)

    bad = [
        Example(
            """
import torch.nn as nn

class Classifier(nn.Module):
    def forward(self, x):
        x = self.encoder(x)
        return nn.Linear(x.size(-1), 10)(x)  # <--
""",
            message="__init__",
        ),
        Example(
            """
import torch
from torch import nn

class Seq2Seq(nn.Module):
    def forward(self, src):
        emb = self.embed(src)
        rnn = nn.LSTM(emb.size(-1), 128, batch_first=True)  # <--
        out, _ = rnn(emb)
        if self.project:
            self.proj = torch.nn.Conv1d(128, 64, 1)  # <--
        return out
""",
            note="assigned to a local, or to self under a flag: still rebuilt on every call",
        ),
        Example(
            """
import torch.nn as nn

class MultiHeadAttention(nn.Module):
    def forward(self, Q, K, V, attn_mask):
        context, attn = ScaledDotProductAttention()(q_s, k_s, v_s, attn_mask)
        context = context.transpose(1, 2).contiguous().view(batch_size, -1, n_heads * d_v)
        output = nn.Linear(n_heads * d_v, d_model)(context)  # <--
        return nn.LayerNorm(d_model)(output + residual), attn
""",
            note="a tutorial BERT's output projection (graykode/nlp-tutorial): the LayerNorm beside it is the trap",
        ),
    ]
    good = [
        Example(
            """
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(x)
""",
            note="trap: layers built in __init__ and called in forward",
        ),
        Example(
            """
import torch.nn as nn

class Net(nn.Module):
    def forward(self, x):
        x = nn.ReLU()(self.fc(x))
        x = nn.Dropout(0.1)(x)
        x = nn.MaxPool2d(2)(x)
        return nn.LayerNorm(x.shape[-1], elementwise_affine=False)(x)
""",
            note="trap: parameter-free layers (and norms, whose fresh parameters are ones/zeros) are the same every call",
        ),
        Example(
            """
import torch.nn as nn

class LazyHead(nn.Module):
    def forward(self, x):
        if self.fc is None:
            self.fc = nn.Linear(x.shape[-1], 10).to(x.device)
        return self.fc(x)
""",
            note="built once on first call and registered (lazy init)",
        ),
        Example(
            """
import torch.nn as nn

class RelativePositionBias(nn.Module):
    def forward(self, attention_mask):
        # re-using pretrained model with subsequent addition of prefix_bucket
        if self.expand and self.prefix_bucket:
            new_bias = nn.Embedding(self.num_buckets + 2, self.num_heads)
            new_bias.weight.data[: self.num_buckets] = self.relative_attention_bias.weight.data
            self.relative_attention_bias = new_bias
            self.expand = False
        return self.relative_attention_bias(attention_mask)
""",
            note="a one-time expansion whose flag the branch clears (transformers' UDOP)",
        ),
        Example(
            """
import torch.nn as nn

def forward(x):
    return nn.Linear(4, 2)(x)

class Builder:
    def build(self):
        return nn.Conv2d(3, 8, 3)
""",
            note="not a module's forward",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.call_name(node) or ""
        if not _LAYERS_WITH_WEIGHTS.fullmatch(name):
            return
        method = self.context.enclosing_method()
        if method is None or not method[1].name.value.startswith("forward") or self._built_once(node):
            return
        self.report(
            node,
            f"`{name.rsplit('.', 1)[1]}` is constructed inside {method[1].name.value}(): a fresh, randomly "
            "initialised layer on every call, never trained or saved; build it in __init__ and call it here",
        )

    def _built_once(self, call: cst.Call) -> bool:
        """`if self.fc is None: self.fc = nn.Linear(...)` (or `not hasattr(self, "fc")`, or `if self.expand:
        ...; self.expand = False`): a build that runs once."""
        for ancestor in reversed(self.context.ancestors):
            if isinstance(ancestor, cst.If):
                test = ancestor.test
                if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
                    test = test.expression
                if isinstance(test, cst.Comparison) and any(
                    isinstance(c.operator, (cst.Is, cst.Equal)) and dotted_name(c.comparator) == "None"
                    for c in test.comparisons
                ):
                    return True
                if isinstance(test, cst.Call) and dotted_name(test.func) == "hasattr":
                    return True
                if _resets_its_flag(ancestor):
                    return True
            if isinstance(ancestor, cst.FunctionDef):
                return False
        return False

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Two eval forwards: parameters built at this line, with outputs that differ, confirm it."""
        from nnlint.confirm.structure import fresh_layers

        models = session.models_covering(finding.path, finding.line)
        if not models:
            return unverifiable(session.why_uncovered(finding.path, finding.line))
        model = models[0]
        with session.charging("NN204"):
            run = fresh_layers(session, model, finding.path)
        data = {
            "model": model.name,
            "built": run.built.get(finding.line, []),
            "max_difference": run.max_difference,
            "parameters": [run.parameters_before, run.parameters_after],
        }
        if finding.line not in run.lines_run and finding.line not in run.built:
            return unverifiable(f"line {finding.line} did not run in two eval forwards of {model.name}", **data)
        built = run.built.get(finding.line, [])
        grew = run.parameters_after != run.parameters_before
        if not built or (run.max_difference == 0.0 and not grew):
            return refuted(
                f"two eval forwards of {model.name} agree exactly and its parameters stay at {run.parameters_before:,}"
                + (f" (the layer built here, {listed(built)}, is the same every call)" if built else ""),
                **data,
            )
        return confirmed(
            f"each eval forward of {model.name} builds {listed(built)} at this line"
            + (f"; its parameters went from {run.parameters_before:,} to {run.parameters_after:,}" if grew else "")
            + f"; two forwards on one input differ by up to {run.max_difference:.3g}",
            **data,
        )


def _resets_its_flag(branch: cst.If) -> bool:
    """The branch assigns a `self.` attribute its test reads (`if self.expand: ...; self.expand = False`)."""
    tested = {dotted_name(n) for n in descendants(branch.test) if isinstance(n, cst.Attribute)}
    return any(
        isinstance(n, cst.AssignTarget) and dotted_name(n.target) in tested and dotted_name(n.target).startswith("self.")
        for n in descendants(branch.body)
    )
