"""What a model's output is at runtime: probabilities, values in (0, 1), log-probabilities or none of
these (child side, imports torch). NN501, NN503 and NN504's runtime checks share it.

One eval-mode forward of the model the script feeds to the loss, built from the class that builds it
there (`session.model_named(facts["built_by"])`), on its probe input, under `torch.no_grad()`. An output
that is a tuple or list is read by its first element (`(logits, aux)`: the first is the prediction, as
nnlint.confirm.initial_loss reads it); a dict, a non-tensor, an integer tensor or a 0-d tensor cannot be
read (unverifiable, saying what it is). The values are compared in float64.

The class dim is the one the losses read: dim 1 of a (B, C, ...) output, as `CrossEntropyLoss` and
`NLLLoss` take it; a model that normalises over its last dim instead (a (B, T, C) sequence output) is
read there too. A 1-d output has one dim to read.

Tolerances (absolute, on float64 copies of a float32 output; one softmax of 1000 classes sums to 1
within ~1e-6, a float16 one within ~5e-4):
- probabilities: every value >= -PROBABILITY_TOLERANCE and every sum over the class dim within
  PROBABILITY_TOLERANCE of 1;
- (0, 1): every value in [-PROBABILITY_TOLERANCE, 1 + PROBABILITY_TOLERANCE] (a float32 sigmoid
  saturates to exactly 0 or 1 beyond |z| ~ 17, so the interval is read closed);
- log-probabilities: every logsumexp over the class dim within PROBABILITY_TOLERANCE of 0.
Random-initialised logits on a unit-scale probe miss each of these by far more (their logsumexp is
about log(C) or above); a tiny one-output head whose 5 probe logits all happen to fall in [0, 1] would
read as sigmoid outputs (the evidence gives the values).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nnlint.confirm.protocol import ProbeFinding
from nnlint.confirm.session import ModelRecord, ProbeSession

PROBABILITY_TOLERANCE = 1e-3


@dataclass
class ProbedOutput:
    """The model's eval-mode output on its probe input, as float64, and what to say about it."""

    record: ModelRecord
    output: torch.Tensor
    where: str  # "Net on float[5, 16]", for the evidence
    first_of: str = ""  # " (the first of its tuple of 2)" when the output was a tuple

    @property
    def data(self) -> dict:
        return {"model": self.record.name, "output_shape": list(self.output.shape)}

    def class_dims(self) -> list[int]:
        """Dim 1 (as the losses read (B, C, ...)), then the last dim if it differs; dim 0 of a 1-d output."""
        last = self.output.dim() - 1
        return [0] if last == 0 else list(dict.fromkeys([1, last]))

    def range(self) -> str:
        return f"values in [{float(self.output.min()):.4g}, {float(self.output.max()):.4g}]"


def probe_output(finding: ProbeFinding, session: ProbeSession, activation: str) -> tuple[ProbedOutput | None, str]:
    """(the output of the model the finding's loss receives, "") or (None, why it cannot be read)."""
    facts = finding.facts
    if facts.get("applied_by") == "script":
        return None, (
            f"the {activation} is applied by the training code, not inside the model: the probe judges what "
            "models return (the static finding stands on its own)"
        )
    record, why = session.model_named(facts.get("built_by"))
    if record is None:
        return None, why
    if record.probe.shapes_only:
        return None, record.probe.shapes_only
    torch.manual_seed(session.seed)
    with torch.no_grad():
        output = session.forward(record)  # eval mode: the loss's input in training differs only by dropout
    first_of = ""
    if isinstance(output, (tuple, list)) and output:
        first_of = f" (the first of its {type(output).__name__} of {len(output)})"
        output = output[0]
    where = f"{record.name} on {record.probe.describe_input()}"
    if isinstance(output, dict):
        return None, f"{where} returns a dict (keys {', '.join(map(str, list(output)[:4]))}): which entry the loss gets is not known"
    if not isinstance(output, torch.Tensor):
        return None, f"{where} returns a {type(output).__name__}{first_of}, not a tensor"
    if not output.is_floating_point() or output.dim() == 0 or output.numel() == 0:
        return None, f"{where} returns a {output.dtype} tensor of shape {tuple(output.shape)}{first_of}: no class scores to read"
    return ProbedOutput(record, output.detach().to("cpu", torch.float64), where, first_of), ""


def probabilities(probed: ProbedOutput) -> tuple[int | None, float, dict]:
    """(the class dim along which the output is a probability distribution, or None; the largest
    |sum - 1| over dim 1, the losses' class dim; measurements for the evidence)."""
    output = probed.output
    errors = {dim: float((output.sum(dim) - 1).abs().max()) for dim in probed.class_dims()}
    found = next((dim for dim, error in errors.items() if error <= PROBABILITY_TOLERANCE), None)
    if float(output.min()) < -PROBABILITY_TOLERANCE:
        found = None
    measured = {"min": float(output.min()), "max": float(output.max()), "max_sum_error": errors}
    return found, errors[probed.class_dims()[0]], measured


def in_unit_interval(probed: ProbedOutput) -> bool:
    output = probed.output
    return float(output.min()) >= -PROBABILITY_TOLERANCE and float(output.max()) <= 1 + PROBABILITY_TOLERANCE


def log_probabilities(probed: ProbedOutput) -> tuple[int | None, dict]:
    """(the class dim along which exp(output) sums to 1, or None; the logsumexp range over each dim)."""
    ranges = {}
    for dim in probed.class_dims():
        lse = torch.logsumexp(probed.output, dim)
        ranges[dim] = (float(lse.min()), float(lse.max()))
    found = next((dim for dim, (low, high) in ranges.items() if max(abs(low), abs(high)) <= PROBABILITY_TOLERANCE), None)
    return found, {"logsumexp_range": {dim: list(bounds) for dim, bounds in ranges.items()}}


def dim_name(probed: ProbedOutput, dim: int) -> str:
    """`dim 1 (10 classes)`."""
    return f"dim {dim} ({probed.output.shape[dim]} entries)"
