"""What of a finding's evidence can be drawn: the simulated LR curves (NN401, NN402) and the gradient maps
(NN102, NN103). The text sparkline and the HTML report both read the evidence through here.

A curve is {"label", "unit", "points": [[x, lr], ...], "end"}: each LR is in force from its x until the next
point's (the last until `end`). A map is {"kind": "samples" | "steps", "values": rows of max |grad|, "block", ...}.
"""

from __future__ import annotations

import math

from nnlint.finding import Finding

# A curve whose highest LR is this many times its lowest (two decades) may need a log scale (`log_scale`).
LOG_SCALE_RATIO = 100.0


def lr_curves(finding: Finding) -> list[dict]:
    evidence = finding.evidence
    return list(evidence.get("lr_curves") or []) if isinstance(evidence, dict) else []


def gradient_map(finding: Finding) -> dict | None:
    evidence = finding.evidence
    return evidence.get("gradient_map") if isinstance(evidence, dict) else None


def segments(curve: dict) -> list[tuple[float, float, float]]:
    """(from x, to x, LR) for each stretch of the run at one LR."""
    points = curve["points"]
    ends = [x for x, _ in points[1:]] + [curve["end"]]
    return [(x, end, lr) for (x, lr), end in zip(points, ends)]


def plural(word: str, count: float) -> str:
    """`epoch` for 1, else `epochs`; `batches`."""
    return word if count == 1 else {"batch": "batches"}.get(word, word + "s")


def curve_words(curve: dict) -> tuple[str, str]:
    """(`LR stepped every batch over 2000 batches`, `1x -> 1e-66x`): what a picture of the curve shows."""
    length = curve["end"] - curve["points"][0][0]
    head = f"LR {curve['label']} over {length:g} {plural(curve['unit'], length)}"
    return head, f"{curve['points'][0][1]:.3g}x -> {curve['points'][-1][1]:.3g}x"


def log_scale(curves: list[dict]) -> bool:
    """Whether the LRs span decades (two or more) and most of the run is a decade or more below the highest,
    where a linear axis would flatten every decay after the first. A cosine to 0 stays linear: it spans
    decades only at its very bottom."""
    pieces = [piece for curve in curves for piece in segments(curve)]
    positive = [lr for _, _, lr in pieces if lr > 0]
    if not positive or max(positive) < LOG_SCALE_RATIO * min(positive):
        return False
    half, run = sum(end - x for x, end, _ in pieces) / 2, 0.0
    for x, end, lr in sorted(pieces, key=lambda piece: piece[2]):
        run += end - x
        if run >= half:
            return lr <= max(positive) / 10  # the median LR over the run
    return False


def log10_or_floor(values: list[float]) -> list[float]:
    """log10 of each LR, a zero LR at the lowest positive one's (a log axis has no zero)."""
    floor = min((value for value in values if value > 0), default=1.0)
    return [math.log10(max(value, floor)) for value in values]
