"""Init symmetry (NN201), child side: which weights set to a constant at a user's line stay stuck.

A weight matrix (two dims of size > 1 or more) that the user's code set to a
constant is stuck if, after one probe forward and backward, it gets no
gradient, or identical gradient rows (its units stay interchangeable). At
step 0 a weight also gets no gradient when a constant weight after it blocks
the way (a zero-initialised head, a residual branch's zero gamma), which the
first update lifts; so the backward runs with the other blockers (all-zero
parameters that multiply) re-drawn. The suspects stay constant together; a line still stuck while other lines' weights were kept
constant (a zero head learns, yet blocks the LoRA B before it) is judged
again with only its own kept.

Vectors (biases, norm scales, gates, a conv's (C, 1, 1, 1) gain) set to a
constant are judged but never stuck: they have no rows to keep symmetric, and a vector without gradient is
blocked or dead, not badly initialised.

Cost: one forward and backward, plus one per line stuck beside other lines' suspects.
The static rule's runtime check (rules/nn201_zero_weight_init.py) and the
model-wide probe (`stuck_findings`) share these verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from nnlint.confirm.intercept import Site, tensors_in
from nnlint.confirm.protocol import RuntimeFinding

if TYPE_CHECKING:
    from nnlint.confirm.session import ModelRecord, ProbeSession

LEARNS = "learns"
# Added, not multiplied: a zero bias blocks nothing (`bias`, and raw parameters named `b1`, `fc_b`, `bias_hh`).
_BIAS = re.compile(r"^(bias\w*|\w*_bias|b\d*|\w*_b\d*)$")
Gradients = dict[str, "torch.Tensor | None"]


@dataclass
class InitVerdict:
    """The parameters one line set to a constant, how each did, and those that stay stuck."""

    site: Site
    set_here: dict[str, str]  # parameter -> "learns" / "no gradient" / "identical gradient rows"
    stuck: dict[str, str]  # the weight matrices among them that stay so, judged alone where it mattered
    unused: set[str]  # parameters the forward never used: no verdict
    traced: str = ""  # the probe input, when it was traced from the first parameter it meets (said in the evidence)

    def evidence(self, model: str) -> str:
        model = f"{model} on {self.traced}" if self.traced else model
        if not self.stuck:
            return f"after one backward of {model}, all {len(self.set_here)} weights set here learn and differ by unit"
        examples = ", ".join(f"{name} ({how})" for name, how in list(self.stuck.items())[:3])
        return (
            f"after one backward of {model} (the other all-zero weights re-drawn), "
            f"{len(self.stuck)} of {len(self.set_here)} weights set here are stuck: {examples}"
        )


def init_verdicts(session: ProbeSession, record: ModelRecord) -> dict[Site, InitVerdict]:
    """A verdict for every user line that set some of the model's parameters to a constant, computed once."""
    if record.init_verdicts is None:
        with session.charging("NN201"):
            record.init_verdicts = _judge(session, record)
    return record.init_verdicts


def _judge(session: ProbeSession, record: ModelRecord) -> dict[Site, InitVerdict]:
    set_at = _constant_parameters_by_site(record)
    if not set_at:
        return {}
    suspects = {site: {name for name in names if _is_matrix(record.initial_parameters[name])} for site, names in set_at.items()}
    with _redrawn_except(record, session.seed, set().union(*suspects.values())):
        gradients = _backward(session, record)
    verdicts = {}
    for site, names in set_at.items():
        how = {name: _how(gradients[name]) for name in names}
        stuck = {
            name: how[name] for name in names  # in the model's order: the evidence must not vary between runs
            if name in suspects[site] and how[name] != LEARNS and gradients[name] is not None
        }  # fmt: skip
        verdicts[site] = InitVerdict(site, how, stuck, {name for name in names if gradients[name] is None})
        if record.probe.spec.origin.startswith("from the first parameter"):
            verdicts[site].traced = record.probe.describe_input()
    every_suspect = set().union(*suspects.values())
    alone: dict[frozenset[str], Gradients] = {}  # by the suspects kept: lines that set the same weights share it
    for verdict in verdicts.values():
        kept = frozenset(suspects[verdict.site])
        if verdict.stuck and kept != every_suspect:  # another line's weight, kept constant, may block this one
            if kept not in alone:
                with _redrawn_except(record, session.seed, kept):
                    alone[kept] = _backward(session, record)
            verdict.stuck = {name: how for name in verdict.stuck if (how := _how(alone[kept][name])) != LEARNS}
    return verdicts


def stuck_findings(session: ProbeSession, record: ModelRecord) -> list[RuntimeFinding]:
    """NN201 where no finding pointed: each line of the session's own files whose constant weights are stuck."""
    found = []
    for site, verdict in init_verdicts(session, record).items():
        if not verdict.stuck or not session.owns(site.path):
            continue
        calls = sorted({call.call for call in record.init_calls if call.site == site})
        message = f"{'/'.join(calls)}() sets weights to a constant that never learn or never break symmetry"
        data = {"model": record.name, "parameters": {**verdict.set_here, **verdict.stuck}}
        found.append(RuntimeFinding("NN201", site.path, site.line, message, verdict.evidence(record.name), data))
    return found


def _constant_parameters_by_site(record: ModelRecord) -> dict[Site, list[str]]:
    """The parameters each init call of the user's set, among those still constant when the model was built."""
    names_by_pointer: dict[int, list[str]] = {}
    for name, parameter in record.probe.module.named_parameters():
        initial = record.initial_parameters[name]
        if _constant(initial):
            names_by_pointer.setdefault(parameter.data_ptr(), []).append(name)
    set_at: dict[Site, list[str]] = {}
    for call in record.init_calls:
        for name in names_by_pointer.get(call.data_ptr, []):
            if name not in set_at.setdefault(call.site, []):
                set_at[call.site].append(name)
    ordered = sorted(set_at, key=lambda site: (site.path, site.line))
    return {site: set_at[site] for site in ordered if set_at[site]}


def _is_matrix(tensor: torch.Tensor) -> bool:
    """Rows of units and columns of inputs: two dims of size > 1 (a (C, 1, 1, 1) gain is a vector)."""
    return sum(size > 1 for size in tensor.shape) >= 2


def _constant(tensor: torch.Tensor) -> bool:
    return bool((tensor == tensor.flatten()[0]).all())


def _how(gradient: torch.Tensor | None) -> str:
    if gradient is None or not bool(gradient.any()):
        return "no gradient"
    if gradient.dim() > 1 and gradient.shape[0] > 1 and bool((gradient == gradient[:1]).all()):
        return "identical gradient rows"
    return LEARNS


def _backward(session: ProbeSession, record: ModelRecord) -> Gradients:
    """Parameter gradients after one eval-mode forward and backward of a random projection of the
    output (a plain sum can cancel: softmax outputs sum to 1). Eval mode: dropout masks would make
    the rows of a symmetric layer differ by chance."""
    module: nn.Module = record.probe.module
    module.zero_grad(set_to_none=True)
    module.eval()
    torch.manual_seed(session.seed)
    session.count_pass(record, "forward")
    outputs = [t for t in tensors_in(module(record.probe.probe_input(0, session.seed))) if t.is_floating_point()]
    generator = torch.Generator().manual_seed(session.seed)
    loss = sum((t * torch.randn(t.shape, generator=generator)).sum() for t in outputs)
    loss.backward()
    session.count_pass(record, "backward")
    gradients = {name: p.grad for name, p in module.named_parameters()}
    module.zero_grad(set_to_none=True)
    return gradients


@contextmanager
def _redrawn_except(record: ModelRecord, seed: int, kept: set[str]) -> Iterator[None]:
    """The model with its blockers, but those in `kept`, re-drawn: the parameters that were all zero
    when built and multiply (a zero head, a zero gamma). Biases and non-zero constants let gradients
    through, and re-drawing them would break the very symmetry under test. Restored after (in place:
    a copy of the model costs memory, and some models refuse deepcopy)."""
    module = record.probe.module
    generator = torch.Generator().manual_seed(seed)
    redrawn = []
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            initial = record.initial_parameters[name]
            blocks = not bool(initial.any()) and not _BIAS.match(name.rpartition(".")[2])
            if name not in kept and blocks:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
                redrawn.append((parameter, initial))
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter, initial in redrawn:
                parameter.copy_(initial)
