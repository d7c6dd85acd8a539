import libcst as cst

from nnlint.confirm.protocol import MONTE_CARLO_CLASS, ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Replacement, Rule
from nnlint.script import script_model

_FUNCTIONAL_DROPOUTS = {
    f"torch.nn.functional.{name}": position
    for name, position in {
        "dropout": 2, "dropout1d": 2, "dropout2d": 2, "dropout3d": 2,
        "alpha_dropout": 2, "feature_alpha_dropout": 2,
    }.items()
}  # fmt: skip
# Monte-Carlo dropout modules keep dropout on at inference on purpose.
# torch.dropout & co. require `train`, so a literal True there is no sign of deliberate MC dropout.
_TORCH_DROPOUTS = {f"torch.{name}" for name in ("dropout", "alpha_dropout", "feature_dropout", "feature_alpha_dropout")}
_EQUAL = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))


class FunctionalDropoutAlwaysOn(Rule):
    """
    ## What it does
    Flags `F.dropout` (and `dropout1d/2d/3d`, `alpha_dropout`,
    `feature_alpha_dropout`) called inside a module's `forward` without a
    `training=` argument, and `torch.dropout(x, p, train=True)` (and
    `torch.alpha_dropout` & co.) there: `train` is required by those, so
    `True` is what a port of `F.scaled_dot_product_attention`'s reference
    code writes, not a choice of Monte-Carlo dropout.

    ## Why is this bad?
    The functional form does not know about `model.eval()`: its `training`
    parameter defaults to `True`, so dropout keeps zeroing activations at
    validation and inference. Metrics come out noisy and worse than the model
    really is, and nothing raises. (Recipe: "dropout must be off at
    inference/test"; `nn.Dropout` follows `eval()`, `F.dropout` does not.)

    ## Example
    ```python
    def forward(self, x):
        return self.fc(F.dropout(x, 0.5))
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return self.fc(F.dropout(x, 0.5, training=self.training))
    ```
    or an `nn.Dropout(0.5)` submodule. Deliberate Monte-Carlo dropout writes
    `training=True` out (or lives in a class named like `MCDropout`), and is
    not flagged; neither is a call that only runs in training (`if
    self.training:`, or after `if not self.training: return x`).

    ## Fix
    `--fix` adds `training=self.training` (or replaces `train=True` with
    `train=self.training`) when the class is an `nn.Module` of the file,
    so `self.training` exists and is what `train()`/`eval()` set: in train
    mode the call does exactly what it did. Not fixed: other classes, a
    `*args` call (it may already pass the flag), static methods.

    ## Runtime confirmation
    `--confirm` puts the model in `eval()` and runs the same input twice:
    different outputs confirm the finding, identical outputs refute it.
    """

    code = "NN301"
    name = "functional-dropout-always-on"
    severity = "error"
    summary = "Functional dropout in forward() without training=self.training stays on in eval mode"
    triggers = ("dropout",)

    bad = [
        Example(
            """
import torch.nn.functional as F
from torch import nn

class Net(nn.Module):
    def forward(self, x):
        x = F.dropout(x, p=0.2)  # <--
        return self.fc(x)
""",
            message="training=self.training",
            fixed="""
import torch.nn.functional as F
from torch import nn

class Net(nn.Module):
    def forward(self, x):
        x = F.dropout(x, p=0.2, training=self.training)  # <--
        return self.fc(x)
""",
        ),
        Example(
            """
import torch
from torch.nn.functional import dropout2d as drop

class Block(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.alpha_dropout(self.conv(drop(x, 0.1)), 0.1)  # <--
""",
            note="qualified and aliased imports are one call; both calls on the line are reported",
            fixed="""
import torch
from torch.nn.functional import dropout2d as drop

class Block(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.alpha_dropout(self.conv(drop(x, 0.1, training=self.training)), 0.1, training=self.training)  # <--
""",
        ),
        Example(
            """
import torch.nn.functional as F

class Encoder:
    def forward_features(self, x):
        y = F.dropout(  # <--
            x, 0.5)
        return y
""",
            note="a call that spans lines is reported where it starts; not fixed: Encoder may not be an nn.Module",
        ),
        Example(
            """
import torch.nn.functional as F
from torch import nn

class Head(nn.Module):
    def forward(me, x):
        x = F.dropout(  # <--
            x,
            0.5,
        )
        return F.dropout(*me.args(x))  # <--
""",
            note="a trailing comma is kept, `self` is the method's first parameter; a *args call is not fixed",
            fixed="""
import torch.nn.functional as F
from torch import nn

class Head(nn.Module):
    def forward(me, x):
        x = F.dropout(  # <--
            x,
            0.5, training=me.training,
        )
        return F.dropout(*me.args(x))  # <--
""",
        ),
        Example(
            """
import torch.nn.functional as F

class GCN:
    def forward(self, x):
        if self.use_dropout:
            x = F.dropout(x, self.p)  # <--
        if not self.training:
            x = F.dropout(x, self.p)  # <--
        return x
""",
            note="a configuration flag is not the mode; a dropout that runs only in eval is still on in eval",
        ),
        Example(
            """
import torch

class Attention(torch.nn.Module):
    def forward(self, attn):
        attn = torch.dropout(attn, self.p, train=True)  # <--
        return torch.feature_alpha_dropout(attn, 0.1, True)  # <--
""",
            note="torch.dropout requires `train`: a literal True there is not a deliberate MC-dropout choice",
            fixed="""
import torch

class Attention(torch.nn.Module):
    def forward(self, attn):
        attn = torch.dropout(attn, self.p, train=self.training)  # <--
        return torch.feature_alpha_dropout(attn, 0.1, self.training)  # <--
""",
        ),
    ]
    good = [
        Example(
            """
import torch
import torch.nn.functional as F

class Net:
    def forward(self, x):
        x = torch.dropout(x, 0.5, train=self.training)
        return F.dropout(x, 0.5, training=self.training)
""",
            note="trap: training=self.training follows eval()",
        ),
        Example(
            """
import torch.nn.functional as F

class MCDropoutNet:
    def forward(self, x):
        return F.dropout(x, 0.5, training=True)
""",
            note="trap: explicit MC dropout, training=True written out",
        ),
        Example(
            """
import torch.nn.functional as F

class Net:
    def forward(self, x):
        return F.dropout(x, 0.5, self.training)
""",
            note="training passed positionally",
        ),
        Example(
            """
import torch.nn.functional as F

def augment(x):
    return F.dropout(x, 0.1)
""",
            note="outside a module's forward: data augmentation or a deliberate choice",
        ),
        Example(
            """
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x)
""",
            note="the module form follows eval()",
        ),
        Example(
            """
import torch.nn.functional as F

class GraphConvolution:
    def forward(self, x):
        if self.training and self.is_sparse_inputs:
            x = sparse_dropout(x, self.p)
        elif self.training:
            x = F.dropout(x, self.p)
        return F.dropout(x, self.p) if self.training else x

class LockedDropout:
    def forward(self, x):
        if not self.training or not self.p: return x
        return F.dropout2d(x, self.p)
""",
            note="trap: calls that only run in training mode (if/elif/conditional, or after an eval early return)",
        ),
        Example(
            """
import torch
import torch.nn.functional as F

class MCDropoutNetwork:
    def forward(self, x):
        return self.fc2(F.dropout(self.fc1(x), 0.5)) + torch.dropout(x, 0.5, True)
""",
            note="trap: a Monte-Carlo dropout model keeps dropout on at inference on purpose",
        ),
        Example(
            """
import torch

class Attention(torch.nn.Module):
    def scaled_dot_product_attention(self, query, key, value, dropout_p=0.0):
        attn_weight = torch.softmax(query @ key.transpose(-2, -1), dim=-1)
        attn_weight = torch.dropout(attn_weight, dropout_p, train=True)
        return attn_weight @ value

    def forward(self, q, k, v):
        return self.scaled_dot_product_attention(q, k, v, self.p if self.training else 0.0)
""",
            note="torch's reference SDPA copied as a helper: the caller decides dropout_p (the runtime check sees it)",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.call_name(node) in _TORCH_DROPOUTS:
            train = next((arg.value for arg in node.args if arg.keyword and arg.keyword.value == "train"), None)
            train = node.args[2].value if train is None and len(node.args) > 2 and not node.args[2].keyword else train
            if isinstance(train, cst.Name) and train.value == "True" and self._in_forward() and not self._only_runs_in_training(node):
                function = self.context.call_name(node)
                mode = self._mode_flag()
                fix = Replacement("Pass train=self.training", train, mode) if mode is not None else None
                self.report(node, f"`{function}(..., train=True)` in forward() stays on after model.eval(); pass train=self.training", fix=fix)
            return
        training_position = _FUNCTIONAL_DROPOUTS.get(self.context.call_name(node))
        if training_position is None or not self._in_forward() or self._only_runs_in_training(node):
            return
        positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
        passes_training = len(positional) > training_position or any(
            arg.star == "**" or (arg.keyword is not None and arg.keyword.value == "training") for arg in node.args
        )
        if not passes_training:
            function = self.context.call_name(node).rsplit(".", 1)[1]
            self.report(
                node,
                f"`{function}` in forward() defaults to training=True and stays on after model.eval(); "
                "pass training=self.training or use an nn.Dropout module",
                fix=self._training_argument_fix(node),
            )

    def _mode_flag(self) -> cst.Attribute | None:
        """`self.training` of the enclosing method, when the class is certainly an nn.Module of the file
        (so the attribute exists and follows train()/eval()) and the method has a `self`."""
        cls, method = self.context.enclosing_method()
        index = script_model(self.context).index
        if index.classes.get(cls.name.value) is not cls or cls.name.value not in index.module_classes:
            return None
        if not method.params.params or any(
            isinstance(d.decorator, cst.Name) and d.decorator.value in ("staticmethod", "classmethod") for d in method.decorators
        ):
            return None
        return cst.Attribute(cst.Name(method.params.params[0].name.value), cst.Name("training"))

    def _training_argument_fix(self, call: cst.Call) -> Replacement | None:
        """`F.dropout(x, p)` -> `F.dropout(x, p, training=self.training)`, before a trailing comma."""
        mode = self._mode_flag()
        if mode is None or not call.args or any(arg.star for arg in call.args):
            return None  # a *args call may pass training already
        *rest, last = call.args
        flag = cst.Arg(mode, keyword=cst.Name("training"), equal=_EQUAL, comma=last.comma)
        new = call.with_changes(args=[*rest, last.with_changes(comma=cst.MaybeSentinel.DEFAULT), flag])
        return Replacement("Pass training=self.training", call, new)

    def _in_forward(self) -> bool:
        method = self.context.enclosing_method()
        return (
            method is not None
            and "forward" in method[1].name.value
            and not MONTE_CARLO_CLASS.search(method[0].name.value)
        )

    def _only_runs_in_training(self, call: cst.Call) -> bool:
        """Inside `if self.training:` / `x if self.training else y`, or after `if not self.training: return`."""
        ancestors = [*self.context.ancestors, call]
        for parent, child in zip(ancestors, ancestors[1:]):
            if isinstance(parent, cst.If) and child is parent.body and _tests_training(parent.test):
                return True
            if isinstance(parent, cst.IfExp) and child is parent.body and _tests_training(parent.test):
                return True
        body = self.context.enclosing_function().body
        statement = next((child for parent, child in zip(ancestors, ancestors[1:]) if parent is body), None)
        for earlier in body.body:
            if earlier is statement:
                break
            if isinstance(earlier, cst.If) and _tests_training(earlier.test, negated=True) and _returns(earlier):
                return True
        return False

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """In eval(), two forwards on one input must agree; the first call whose output differs is the random one."""
        models = session.models_covering(finding.path, finding.line)
        if not models:
            return unverifiable(session.why_uncovered(finding.path, finding.line))
        model = models[0]
        run = session.eval_determinism(model)
        probe = f"{model.name} on {model.probe.describe_input()}"
        if not any((site.path, site.line) == (finding.path, finding.line) for site in run.sites_run):
            return unverifiable(f"line {finding.line} did not run in the eval forward of {probe}", model=model.name)
        if run.deterministic:
            return refuted(f"in eval(), two forwards of {probe} agree exactly", model=model.name)
        site = run.first_random_site
        data = {"model": model.name, "input": model.probe.describe_input(), "max_difference": run.max_difference}
        here = run.random_at(finding.path, finding.line)  # each random call judged with those before it replayed
        if here is not None and here[0] != site:
            data["max_difference"] = here[2]
            return confirmed(f"in eval(), two forwards of {probe} differ at this call by up to {here[2]:.3g} "
                             f"with the random calls before it (first at line {site.line}) replayed", **data)  # fmt: skip
        if here is None and any((s.path, s.line) == (finding.path, finding.line) for s in run.judged_sites):
            return refuted(f"in eval(), two forwards of {probe} agree at this call, with the random calls before it replayed", **data)
        if (site.path, site.line) != (finding.path, finding.line):
            return unverifiable(f"in eval() {probe} is random, but first at line {site.line}, before this call", **data)
        return confirmed(
            f"in eval(), two forwards of {probe} differ by up to {run.max_difference:.3g}, first at this call", **data
        )


def _is_training_flag(node: cst.BaseExpression) -> bool:
    return (isinstance(node, cst.Name) and node.value == "training") or (
        isinstance(node, cst.Attribute) and node.attr.value == "training" and isinstance(node.value, cst.Name)
    )


def _tests_training(test: cst.BaseExpression, negated: bool = False) -> bool:
    """Whether `test` holds `self.training` (or `not self.training` when `negated`) as one of its and/or terms."""
    if isinstance(test, cst.BooleanOperation):
        return _tests_training(test.left, negated) or _tests_training(test.right, negated)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return _tests_training(test.expression, not negated)
    return not negated and _is_training_flag(test)


def _returns(branch: cst.If) -> bool:
    """The branch ends in `return` or `raise`, so what follows it never runs in eval mode."""
    if isinstance(branch.body, cst.SimpleStatementSuite):
        last_line = branch.body.body
    else:
        last = branch.body.body[-1]
        last_line = last.body if isinstance(last, cst.SimpleStatementLine) else []
    return any(isinstance(statement, (cst.Return, cst.Raise)) for statement in last_line)
