"""The LR curve of a schedule finding as one line of text: `LR stepped every batch over 2000 batches: █▇▆...`."""

from __future__ import annotations

import math

from nnlint.report.evidence_pictures import curve_words, log10_or_floor, log_scale, segments

BLOCKS = "▁▂▃▄▅▆▇█"
ASCII_BLOCKS = "_.-:=+*#"  # for an output whose encoding has no block characters (a cp1252 console or file)
WIDTH = 40  # characters at most; a short run gets one per unit (a 20-epoch run: one per epoch)


def blocks_for(stream) -> str:
    """BLOCKS where `stream` can encode them, else ASCII_BLOCKS: a sparkline is never worth a crash."""
    try:
        BLOCKS.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return ASCII_BLOCKS
    return BLOCKS


def sparkline(curve: dict, blocks: str = BLOCKS) -> str:
    """The curve in block characters, the highest LR at █ and 0 at ▁ (on a log scale, when the LR spans
    decades: the lowest LR at ▁).

    A character stands for the mean LR over its stretch of the run (the mean log10 on a log scale), so that
    a schedule that swings faster than the characters can show averages out instead of drawing a false wave."""
    pieces = segments(curve)
    values = [lr for _, _, lr in pieces]
    logarithmic = log_scale([curve])
    if logarithmic:
        values = log10_or_floor(values)
    start, end = pieces[0][0], pieces[-1][1]
    count = max(1, min(WIDTH, math.ceil(end - start)))
    width = (end - start) / count
    columns = []
    for c in range(count):
        low, high = start + c * width, start + (c + 1) * width
        overlap = [(min(high, x1) - max(low, x0), value) for (x0, x1, _), value in zip(pieces, values)]
        columns.append(sum(length * value for length, value in overlap if length > 0) / width)
    low, high = min(values) if logarithmic else min(0.0, *values), max(values)
    if math.isclose(low, high, rel_tol=1e-9, abs_tol=1e-12):
        return blocks[0] * count  # an LR of 0 throughout (a log-scale curve always spans decades)
    # Block k is (k + 1) eighths high: the block whose height is nearest the value's (never none: ▁ for 0).
    levels = len(blocks)
    return "".join(
        blocks[min(levels - 1, max(0, round((value - low) / (high - low) * levels) - 1))] for value in columns
    )


def lr_line(curve: dict, blocks: str = BLOCKS) -> str:
    """`LR stepped once per epoch over 20 epochs: ████ 1x -> 1x`, with `(log scale)` when it is."""
    head, ends = curve_words(curve)
    return f"{head}: {sparkline(curve, blocks)} {ends}" + (" (log scale)" if log_scale([curve]) else "")
