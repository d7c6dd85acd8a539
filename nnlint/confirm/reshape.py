"""Decode a view/reshape from its input and output shapes (torch-free, pure).

A reshape is *fine* when its output dims are its input dims merged and split
in order; it is a *reorder* (NN101) when the only whole-dim reading of the
sizes changes the dims' order, e.g. (5, 192, 37, 29) -> (5, 1073, 192) reads
as (b, h*w, c) of a (b, c, h, w) tensor. When equal sizes allow both readings
the call is ambiguous and nothing is concluded from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

FINE, REORDER, AMBIGUOUS = "fine", "reorder", "ambiguous"
_MAX_DIMS = 10  # beyond this, enumerating readings costs more than a verdict is worth


@dataclass(frozen=True)
class Decoding:
    kind: str
    # For a reorder: for each output dim (non-1 only), the input dims it is made of.
    reading: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def explain(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> str:
        parts = []
        for out, ins in self.reading:
            made_of = "x".join(f"{input_shape[i]}" for i in ins)
            parts.append(f"output dim {out} ({output_shape[out]}) is input dim{'s' if len(ins) > 1 else ''} "
                         f"{'x'.join(map(str, ins))} ({made_of})")  # fmt: skip
        return "; ".join(parts)

    def permutation(self, rank: int) -> tuple[int, ...]:
        """The permute() that puts the input dims in the order this reading takes them (size-1 dims last)."""
        taken = [i for _, ins in self.reading for i in ins]
        return tuple(taken + [i for i in range(rank) if i not in taken])


def _boundaries(sizes: list[int]) -> list[int]:
    running, points = 1, []
    for size in sizes:
        running *= size
        points.append(running)
    return points


def _merges_and_splits_in_order(ins: list[int], outs: list[int]) -> bool:
    """Between common running-product boundaries, one side must have a single dim."""
    in_points, out_points = _boundaries(ins), _boundaries(outs)
    previous_i = previous_o = 0
    for boundary in sorted(set(in_points) & set(out_points)):
        i, o = in_points.index(boundary) + 1, out_points.index(boundary) + 1
        if i - previous_i > 1 and o - previous_o > 1:
            return False
        previous_i, previous_o = i, o
    return True


def _whole_dim_readings(ins: list[int], outs: list[int]):
    """Every partition of the input dims into the output dims with matching products."""
    assignment = [0] * len(ins)

    def place(index: int, remaining: list[int]):
        if index == len(ins):
            if all(r == 1 for r in remaining):
                yield tuple(assignment)
            return
        for slot, left in enumerate(remaining):
            if left % ins[index] == 0:
                assignment[index] = slot
                remaining[slot] = left // ins[index]
                yield from place(index + 1, remaining)
                remaining[slot] = left

    yield from place(0, list(outs))


def decode(input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Decoding:
    in_dims = [i for i, size in enumerate(input_shape) if size != 1]
    out_dims = [o for o, size in enumerate(output_shape) if size != 1]
    ins, outs = [input_shape[i] for i in in_dims], [output_shape[o] for o in out_dims]
    if prod(ins) != prod(outs) or len(ins) > _MAX_DIMS or len(outs) > _MAX_DIMS:
        return Decoding(AMBIGUOUS)
    in_order = _merges_and_splits_in_order(ins, outs)
    reorders = [r for r in _whole_dim_readings(ins, outs) if list(r) != sorted(r)]
    if not reorders:
        return Decoding(FINE if in_order else AMBIGUOUS)
    if in_order:
        return Decoding(AMBIGUOUS)  # equal sizes: both readings fit
    reading = tuple(
        (out_dims[slot], tuple(in_dims[k] for k, s in enumerate(reorders[0]) if s == slot)) for slot in range(len(outs))
    )
    return Decoding(REORDER, reading)


def combine(kinds: list[str]) -> str:
    """One verdict for a call site from every decoding of it (both probes, every time it ran)."""
    decided = {kind for kind in kinds if kind != AMBIGUOUS}
    if len(decided) == 1:
        return decided.pop()
    return AMBIGUOUS
