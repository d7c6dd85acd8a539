"""NN508's runtime check: one backward on the configured training step; do the parameters get gradients?
(child side, imports torch)

`[tool.nnlint.confirm] training-step = "pkg.module:function"` names a function
that takes no arguments and returns `(model, loss)`: the model being trained
and the loss of one batch as the training step computes it, before
`backward()`. It is imported as configured model factories are (safe loading,
see ProbeSession.resolve), called with the session's seed, and `loss.backward()`
runs once. The graph is broken when no parameter tensor of the model gets a
gradient (None or all zeros); a loss that does not even require grad is
broken before `backward()` could run.
"""

from __future__ import annotations

import torch
from torch import nn

from nnlint.confirm.models import BuildError
from nnlint.confirm.protocol import Verdict, confirmed, refuted, unverifiable

CONFIGURE = (
    'add training-step = "pkg.module:function" to [tool.nnlint.confirm]: a function that takes no arguments and '
    "returns (model, loss), the model being trained and the loss of one batch computed as the training step "
    "computes it, before backward()"
)


def gradient_reach(session) -> Verdict:
    """Confirmed when one backward of the configured step's loss gives no parameter of its model a
    gradient, refuted when some get one; unverifiable when no step is configured or it cannot run."""
    target = session.training_step
    if not target:
        return unverifiable(f"the confirm pass judges NN508 by running one training step: {CONFIGURE}")
    outcome = _run_step(session, target)
    if isinstance(outcome, str):
        return unverifiable(outcome)
    model, loss = outcome
    names = [name for name, _ in model.named_parameters()]
    value = float(loss.detach().float())
    data = {"training_step": target, "model": type(model).__name__, "parameters": len(names), "loss": value}
    step, model_name = f"the loss {value:.4g} that {target}() returns", type(model).__name__
    if not loss.requires_grad:
        return confirmed(
            f"{step} does not require grad: it is off the autograd graph, so loss.backward() raises and none of "
            f"{model_name}'s {len(names)} parameter tensors can get a gradient",
            requires_grad=False, with_gradient=0, **data,
        )
    model.zero_grad(set_to_none=True)  # only this backward's gradients count
    try:
        loss.backward()
    except RuntimeError as error:
        return unverifiable(f"loss.backward() on {step} raised RuntimeError: {str(error)[:200]}", **data)
    learning = [name for name, p in model.named_parameters() if p.grad is not None and bool(p.grad.ne(0).any())]
    data.update(requires_grad=True, with_gradient=len(learning))
    if learning:
        return refuted(
            f"after loss.backward() on {step}, {len(learning)} of {model_name}'s {len(names)} parameter tensors "
            "have a non-zero gradient",
            **data,
        )
    return confirmed(
        f"after loss.backward() on {step}, none of {model_name}'s {len(names)} parameter tensors has a gradient "
        "(each is None or zero): the loss does not reach the model",
        **data,
    )


def _run_step(session, target: str) -> tuple[nn.Module, torch.Tensor] | str:
    """(model, loss) from the configured function, or why it could not be had."""
    try:
        step = session.resolve(target)
    except BuildError as error:
        return f"training-step {target}: {error}"
    except Exception as error:  # the module exists; importing it failed
        return f"importing training-step {target} raised {type(error).__name__}: {str(error)[:200]}"
    torch.manual_seed(session.seed)
    try:
        returned = step()
    except Exception as error:  # the user's step failed: say how
        return f"training-step {target}() raised {type(error).__name__}: {str(error)[:200]}"
    if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
        return f"training-step {target}() returned a {type(returned).__name__}, not (model, loss)"
    model, loss = returned
    if not isinstance(model, nn.Module) or not isinstance(loss, torch.Tensor):
        return f"training-step {target}() returned ({type(model).__name__}, {type(loss).__name__}), not (model, loss)"
    if loss.numel() != 1:
        return f"training-step {target}() returned a loss of shape {tuple(loss.shape)}: return the scalar backward() runs on"
    if not any(True for _ in model.parameters()):
        return f"training-step {target}() returned a {type(model).__name__} without parameters"
    return model, loss
