import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.timeline import BACKWARD, CLIP, STEP, events, loss_expression

_CLAMPS = ("torch.clamp", "torch.clip")


class ClippedLossNotGradients(Rule):
    """
    ## What it does
    Flags gradient clipping done on the wrong thing or at the wrong time:
    - `torch.clamp(loss, max=...)` / `loss.clamp(max=...)` on the loss that
      is back-propagated, or `clip_grad_norm_(loss, ...)`;
    - `clip_grad_norm_` / `clip_grad_value_` before `backward()` or after
      `optimizer.step()` in a training iteration, with no clipping between
      the two.

    ## Why is this bad?
    Clamping the loss does not bound the gradients: it sets them to *zero*
    for every batch whose loss is above the bound, so the hardest batches
    stop training. Clipping before `backward()` clips the previous (or
    zeroed) gradients and after `step()` clips gradients that are about to
    be discarded: either way the update is not clipped at all.

    ## Example
    ```python
    loss = torch.clamp(criterion(model(x), y), max=10.0)
    loss.backward()
    optimizer.step()
    ```

    ## Use instead
    ```python
    loss = criterion(model(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    ```
    A hinge written with `clamp(min=0)` is not clipping and is not flagged.
    """

    code = "NN406"
    name = "clipped-loss-not-gradients"
    severity = "error"
    summary = "The loss is clamped instead of the gradients, or gradients are clipped before backward() or after step()"
    triggers = ("clamp", "clip")

    bad = [
        Example(
            """
import torch

for x, y in loader:
    optimizer.zero_grad()
    loss = torch.clamp(criterion(model(x), y), max=10.0)  # <--
    loss.backward()
    optimizer.step()
""",
            message="zero",
        ),
        Example(
            """
import torch
from torch.nn.utils import clip_grad_norm_

for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    clip_grad_norm_(loss, 1.0)  # <--
    loss.backward()
    optimizer.step()
""",
            note="the loss passed to clip_grad_norm_",
        ),
        Example(
            """
import torch

for x, y in loader:
    optimizer.zero_grad()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)  # <--
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
""",
            message="before",
        ),
        Example(
            """
import torch

for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)  # <--
""",
            message="after",
        ),
    ]
    good = [
        Example(
            """
import torch

for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()
"""
        ),
        Example(
            """
import torch

for a, p, n in loader:
    optimizer.zero_grad()
    loss = torch.clamp(dist(model(a), model(p)) - dist(model(a), model(n)) + margin, min=0).mean()
    loss.backward()
    optimizer.step()
""",
            note="a hinge: clamp(min=0) is part of the loss",
        ),
        Example(
            """
import torch

probs = torch.clamp(torch.sigmoid(logits), 1e-7, 1 - 1e-7)
loss = -(y * probs.log()).mean()
loss.backward()
""",
            note="clamping an input of the loss for numerical safety",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        losses = {(event.function, _name(loss_expression(event.node))) for root in script.timeline.roots
                  for event in events(root.body) if event.kind == BACKWARD}
        found = []
        self._bound_to = None  # the binding each value is assigned by, indexed on the first clamp that asks
        for call, function in script.index.calls:
            clamped = self._clamped_loss(call, function, losses, script)
            if clamped is not None:
                found.append((call, clamped))
        for iteration in script.training.iterations:
            found += self._misplaced_clips(iteration.events)
        for call, message in script.reports(found):
            self.report(call, message)

    def _clamped_loss(self, call, function, losses, script) -> str | None:
        qualified = self.context.call_name(call) or ""
        func = call.func
        if qualified.rsplit(".", 1)[-1] in ("clip_grad_norm_", "clip_grad_value_") and call.args:
            if _name(call.args[0].value) is not None and (function, _name(call.args[0].value)) in losses:
                return (f"`{script.code(call)}` clips the loss, not the gradients: pass model.parameters() and "
                        "call it after loss.backward()")
            return None
        if qualified in _CLAMPS and call.args:
            clamped = call.args[0].value
            bounded_above = len(call.args) >= 3 or any(a.keyword and a.keyword.value == "max" for a in call.args)
        elif isinstance(func, cst.Attribute) and func.attr.value in ("clamp", "clip", "clamp_", "clip_"):
            clamped = func.value
            bounded_above = len(call.args) >= 2 or any(a.keyword and a.keyword.value == "max" for a in call.args)
        else:
            return None
        if not bounded_above or not self._feeds_backward(call, clamped, function, losses, script):
            return None
        return (f"`{script.code(call)}` clamps the loss: every batch whose loss is above the bound gets zero "
                "gradient and stops training; clip the gradients after backward() with clip_grad_norm_")

    def _feeds_backward(self, call, clamped, function, losses, script) -> bool:
        """The clamp's result is what backward() runs on, and what it clamps is a loss, not an input."""
        if self._bound_to is None:
            self._bound_to = {}
            for bindings in script.index.bindings.values():
                for binding in bindings:
                    self._bound_to.setdefault(id(binding.value), binding)
        statement = self._bound_to.get(id(call))
        if statement is None or statement.name is None or (function, statement.name) not in losses:
            return False
        inner = clamped
        if isinstance(inner, cst.Call):
            role = script.roles.of(inner.func, function) if dotted_name(inner.func) else None
            qualified = self.context.call_name(inner) or ""
            return (role is not None and role.role == "criterion") or "loss" in qualified.lower()
        return "loss" in (_name(inner) or "").lower()

    @staticmethod
    def _misplaced_clips(ordered) -> list:
        kinds = [event.kind for event in ordered]
        if CLIP not in kinds or BACKWARD not in kinds or STEP not in kinds:
            return []
        first_backward = kinds.index(BACKWARD)
        last_step = len(kinds) - 1 - kinds[::-1].index(STEP)
        if any(kind == CLIP for kind in kinds[first_backward:last_step]):
            return []  # a clip between backward and step: the update is clipped
        found = []
        for index, event in enumerate(ordered):
            if event.kind == CLIP and index < first_backward:
                found.append((event.node, f"`{_short(event)}` runs before backward() in the iteration: it clips "
                              "stale or zeroed gradients, and the update is not clipped; call it after backward() and "
                              "before optimizer.step()"))
            elif event.kind == CLIP and index > last_step:
                found.append((event.node, f"`{_short(event)}` runs after optimizer.step(): the update it should "
                              "bound has already been applied; call it after backward() and before optimizer.step()"))
        return found


def _short(event) -> str:
    return dotted_name(event.node.func) + "(...)" if dotted_name(event.node.func) else "clip"



def _name(expr) -> str | None:
    return dotted_name(expr) if expr is not None else None
