"""NN505 (R-only): the loss at initialisation of a model declared with `loss = "cross_entropy"` and
`classes = C` in `[tool.nnlint.models.<Class>]` should be close to log(C) (child side, imports torch).

One eval-mode forward of the model on its probe input (a batch of 5 samples,
standard normal or token ids, as every probe). The class dim of the output
is the last dim when it has C entries, else dim 1 (as `F.cross_entropy` reads
(B, C, ...)); every other dim is a sample. The loss compared is the expected
cross-entropy against uniformly random targets, computed exactly (the mean
over every class as the target, -mean(log_softmax)): what seeded random
targets would estimate, without their noise on 5 samples. It is at least
log(C), and equal to it when the output is uniform.

confirmed  the loss is more than TOLERANCE nats above log(C) (overconfident
           logits at init: a head scaled up, a bias set, a pretrained head
           of another class count), or the output has no dim of C classes
refuted    within TOLERANCE of log(C)
unverifiable  the model was built on the meta device, or its output is not a
           floating-point tensor
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F

from nnlint.confirm.per_sample import forward_site
from nnlint.confirm.protocol import CONFIRMED, REFUTED, UNVERIFIABLE, RuntimeFinding
from nnlint.confirm.session import ModelRecord, ProbeSession

TOLERANCE = 0.5  # nats above log(C): a default-initialised head is within ~0.2 on unit-scale features


def initial_loss_findings(session: ProbeSession) -> list[RuntimeFinding]:
    """NN505 at forward() of each model of the file declared with a loss and a class count."""
    found = [_unbuilt(session, name, why) for name, why in session.unbuilt.items()]
    found = [finding for finding in found if finding is not None]
    for record in session.models:
        declared = session.configured_models.get(record.name, {})
        site = forward_site(record.probe.module)
        if "loss" not in declared or site is None or not session.owns(site.path):
            continue
        try:
            with session.charging("NN505"):
                status, evidence, data = initial_loss(session, record, declared.get("classes"))
        except Exception as error:  # its forward fails in eval() on the probe: say so, judge the others
            status, data = UNVERIFIABLE, {"model": record.name, "classes": declared.get("classes")}
            evidence = f"{record.name}'s eval() forward on its probe raised {type(error).__name__}: {str(error)[:200]}"
        classes = data.get("classes") or "its"
        message = (
            f"{record.name}'s cross-entropy at initialisation is far from log({classes}), a uniform prediction's"
            if status == CONFIRMED else f"{record.name}'s cross-entropy at initialisation over {classes} classes"
        )
        found.append(RuntimeFinding("NN505", site.path, site.line, message, evidence, data, status))
    return found


def _unbuilt(session: ProbeSession, name: str, why: str) -> RuntimeFinding | None:
    """A declared model of the file that could not be built: unverifiable at its forward(), with why."""
    cls = getattr(session.module, name, None)
    if "loss" not in session.configured_models.get(name, {}) or not isinstance(cls, type):
        return None
    try:
        path, line = inspect.getsourcefile(cls.forward), inspect.getsourcelines(cls.forward)[1]
    except (OSError, TypeError):
        return None
    if not session.owns(path):
        return None
    classes = session.configured_models[name].get("classes") or "its"
    message = f"{name}'s cross-entropy at initialisation over {classes} classes"
    return RuntimeFinding("NN505", path, line, message, why, {"model": name, "classes": classes}, UNVERIFIABLE)


def initial_loss(session: ProbeSession, record: ModelRecord, classes: int | None) -> tuple[str, str, dict]:
    """(status, evidence, data) for one model declared with cross-entropy over `classes` classes (None: as
    many as its final layer gives, the last dim of its output)."""
    data = {"model": record.name, "classes": classes, "tolerance": TOLERANCE}
    if record.probe.shapes_only:
        return UNVERIFIABLE, record.probe.shapes_only, data
    with torch.no_grad():
        output = session.forward(record)
    if isinstance(output, (tuple, list)) and output:
        output = output[0]  # (logits, aux...): the first is the prediction
    if not isinstance(output, torch.Tensor) or not output.is_floating_point() or output.dim() < 1:
        kind = f"a {output.dtype} tensor" if isinstance(output, torch.Tensor) else f"a {type(output).__name__}"
        return UNVERIFIABLE, f"{record.name}'s output is {kind}, not logits", data
    shape = tuple(output.shape)
    where = f"{record.name} on {record.probe.describe_input()}"
    if classes is None:  # read from the final layer: the width of the output's last dim
        if output.dim() < 2 or shape[-1] < 2:
            return UNVERIFIABLE, f"{where} outputs {shape}: no class dim to read; declare `classes`", data
        classes = shape[-1]
        where += f", {classes} classes read from its output's last dim"
    expected = math.log(classes)
    data.update(classes=classes, expected=expected)
    dim = output.dim() - 1 if shape[-1] == classes else 1 if output.dim() > 1 and shape[1] == classes else None
    data["output_shape"] = list(shape)
    if dim is None:
        return CONFIRMED, (
            f"{where} outputs {shape}: no dim of {classes} classes, last or dim 1, for the declared "
            f"cross-entropy over {classes} classes (a head for another class count?)"
        ), data
    logits = output.movedim(dim, -1).reshape(-1, classes).double()
    loss = float(-F.log_softmax(logits, dim=-1).mean())
    data.update(loss=loss, class_dim=dim)
    measured = (
        f"in eval(), {where}: expected cross-entropy against uniformly random targets {loss:.3f} at "
        f"initialisation, against log({classes}) = {expected:.3f}"
    )
    if loss - expected > TOLERANCE:
        return CONFIRMED, (
            f"{measured}: {loss - expected:.2f} nats above (tolerance {TOLERANCE}); the initial logits are "
            f"overconfident (max |logit| {float(logits.abs().max()):.3g}): initialise the last layer smaller (scale its weight down, zero its bias)"
        ), data
    return REFUTED, f"{measured}: within {TOLERANCE} nats", data

