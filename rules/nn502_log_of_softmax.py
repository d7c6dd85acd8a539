import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Replacement, Rule
from nnlint.script import script_model
from nnlint.tree import source_code

_SOFTMAX_FUNCTIONS = {"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"}
_LOG_FUNCTIONS = {"torch.log", "torch.special.log"}
# Picking entries of a softmax keeps it a softmax for this rule: its log is still log of a softmax.
_SELECTIONS = {"gather", "squeeze", "unsqueeze", "view", "reshape", "flatten", "select", "index_select", "float"}


class LogOfSoftmax(Rule):
    """
    ## What it does
    Flags the logarithm of a softmax: `torch.log(F.softmax(x, dim))`,
    `x.softmax(-1).log()`, and `torch.log(p)` where `p` is a softmax output
    assigned in the same function.

    ## Why is this bad?
    Softmax underflows to exactly 0 for logits a few dozen units below the
    maximum, and `log(0)` is `-inf`: the loss becomes `inf`/`nan` and one bad
    batch ruins the weights. Even before underflow, exponentiating then taking
    the log loses precision. `log_softmax` computes `x - logsumexp(x)`
    directly, which is exact and stable (it is what `nn.CrossEntropyLoss`
    does internally).

    ## Example
    ```python
    log_probs = torch.log(F.softmax(logits, dim=-1))
    ```

    ## Use instead
    ```python
    log_probs = F.log_softmax(logits, dim=-1)
    ```
    (when the probabilities are needed too, take `log_probs.exp()`).

    ## Fix
    `--fix` rewrites `torch.log(F.softmax(x, dim))` and `F.softmax(x,
    dim).log()` to `F.log_softmax(x, dim)` (`torch.softmax` to
    `torch.log_softmax`, same arguments), also through entries picked
    from the softmax (`.gather(...)`, `[..., 0]`): the log is taken of the
    same values, only without the underflow. Not fixed: `x.softmax(-1)`
    on an object nnlint cannot tell is a tensor, `nn.Softmax` modules,
    a softmax reached through a variable (it may have other readers),
    and `torch.log(..., out=...)`.
    """

    code = "NN502"
    name = "log-of-softmax"
    severity = "warning"
    summary = "log(softmax(x)) underflows to -inf; use log_softmax(x)"
    triggers = ("softmax",)

    bad = [
        Example(
            """
import torch
import torch.nn.functional as F

def nll(logits, target):
    log_probs = torch.log(F.softmax(logits, dim=-1))  # <--
    return F.nll_loss(log_probs, target)
""",
            message="log_softmax",
            fixed="""
import torch
import torch.nn.functional as F

def nll(logits, target):
    log_probs = F.log_softmax(logits, dim=-1)  # <--
    return F.nll_loss(log_probs, target)
""",
        ),
        Example(
            """
import torch

def policy_loss(logits, actions, advantages):
    logp = logits.softmax(-1).log()  # <--
    return -(logp.gather(1, actions) * advantages).mean()
""",
            note="method chain (not fixed: `logits` may not be a tensor)",
        ),
        Example(
            """
import torch
import torch.nn.functional as F

class Student:
    def behaviour_cloning(self, states, actions, t_prob):
        logits, _ = self.forward(states)
        log_probs = torch.log(F.softmax(logits, dim=1).gather(1, actions))  # <--
        kl = torch.nn.KLDivLoss()(torch.log(F.softmax(logits, dim=-1)), F.softmax(t_prob, dim=-1))  # <--
        return -log_probs.mean() + kl
""",
            note="gathered entries of a softmax; KLDivLoss fed log(softmax) (both from public training code)",
            fixed="""
import torch
import torch.nn.functional as F

class Student:
    def behaviour_cloning(self, states, actions, t_prob):
        logits, _ = self.forward(states)
        log_probs = F.log_softmax(logits, dim=1).gather(1, actions)  # <--
        kl = torch.nn.KLDivLoss()(F.log_softmax(logits, dim=-1), F.softmax(t_prob, dim=-1))  # <--
        return -log_probs.mean() + kl
""",
        ),
        Example(
            """
import torch
from torch.nn import functional as F

def scores(x, mask, buffer):
    a = torch.log(torch.softmax(x, 1, dtype=torch.float64))  # <--
    b = (F.softmax(x[mask], dim=-1)[:, 0]).log()  # <--
    torch.log(F.softmax(x, 1), out=buffer)  # <--
    return a, b
""",
            note="torch.softmax, `.log()` of a softmax's entries; not fixed: log(..., out=)",
            fixed="""
import torch
from torch.nn import functional as F

def scores(x, mask, buffer):
    a = torch.log_softmax(x, 1, dtype=torch.float64)  # <--
    b = (F.log_softmax(x[mask], dim=-1)[:, 0])  # <--
    torch.log(F.softmax(x, 1), out=buffer)  # <--
    return a, b
""",
        ),
        Example(
            """
import torch
from torch.nn import functional as F

class Distill:
    def loss(self, student_logits, teacher_logits, T):
        probs = F.softmax(student_logits / T, dim=1)
        teacher = torch.nn.Softmax(dim=1)(teacher_logits / T)
        return (teacher * (teacher.log() - torch.log(probs))).sum(1).mean()  # <--
""",
            note="through a local variable in the same function",
        ),
    ]
    good = [
        Example(
            """
import torch.nn.functional as F

log_probs = F.log_softmax(logits, dim=-1)
probs = log_probs.exp()
""",
        ),
        Example(
            """
import torch
import torch.nn.functional as F

def entropy(logits):
    probs = F.softmax(logits, dim=-1)
    probs = probs.clamp(min=1e-6)
    return -(probs * torch.log(probs + 1e-8)).sum(-1)
""",
            note="a name re-bound to something else before the log, or a log of an expression, is not followed",
        ),
        Example(
            """
import torch

def sample(probs):
    return torch.log(probs)
""",
            note="a parameter may hold anything",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.call_name(node)
        if name in _LOG_FUNCTIONS and node.args and not node.args[0].star:
            argument = node.args[0].value
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value == "log" and not node.args:
            argument = node.func.value
        else:
            return
        if self._is_softmax(argument):
            self.report(
                node,
                f"`{source_code(node)}` takes the log of a softmax, which underflows to log(0) = -inf for "
                "confident logits; use `log_softmax(x, dim)` (and `.exp()` it where probabilities are needed)",
                fix=self._log_softmax_fix(node, argument),
            )

    def _log_softmax_fix(self, log: cst.Call, argument: cst.BaseExpression) -> Replacement | None:
        """The log call replaced by its argument with the softmax function renamed `log_softmax` (same
        arguments in torch and torch.nn.functional): only for a softmax function named through its module,
        under selections that commute with an elementwise log."""
        if len(log.args) > 1 or any(arg.keyword is not None for arg in log.args):
            return None  # `out=`: the result goes elsewhere too
        softmax = argument
        while isinstance(softmax, cst.Subscript) or (
            isinstance(softmax, cst.Call) and isinstance(softmax.func, cst.Attribute) and softmax.func.attr.value in _SELECTIONS
        ):
            softmax = softmax.value if isinstance(softmax, cst.Subscript) else softmax.func.value
        if not (
            isinstance(softmax, cst.Call)
            and self.context.call_name(softmax) in _SOFTMAX_FUNCTIONS
            and isinstance(softmax.func, cst.Attribute)
        ):
            return None
        log_softmax = softmax.with_deep_changes(softmax.func.attr, value="log_softmax")
        return Replacement("Use log_softmax", log, argument.deep_replace(softmax, log_softmax))

    def _is_softmax(self, expression: cst.BaseExpression, follow: bool = True) -> bool:
        """A softmax output, also indexed or gathered (`F.softmax(x, 1).gather(1, a)`, `probs[:, -1]`)."""
        while isinstance(expression, cst.Subscript) or (
            isinstance(expression, cst.Call)
            and isinstance(expression.func, cst.Attribute)
            and expression.func.attr.value in _SELECTIONS
        ):
            expression = expression.value if isinstance(expression, cst.Subscript) else expression.func.value
        if isinstance(expression, cst.Call):
            if self.context.call_name(expression) in _SOFTMAX_FUNCTIONS:
                return True
            if isinstance(expression.func, cst.Call) and self.context.call_name(expression.func) == "torch.nn.Softmax":
                return True  # nn.Softmax(dim=1)(x)
            func = expression.func
            return isinstance(func, cst.Attribute) and func.attr.value == "softmax" and dotted_name(func.value) not in ("F", "torch")
        if follow and isinstance(expression, cst.Name):
            function = self.context.enclosing_function()
            if function is None:
                return False
            bindings = script_model(self.context).index.lookup(expression.value, function)
            return bool(bindings) and all(
                b.scope is function and b.value is not None and self._is_softmax(b.value, follow=False) for b in bindings
            )
        return False
