"""Decode a view/reshape from its input and output shapes (torch-free, pure).

A reshape is *fine* when its output dims are its input dims merged and split
in order; it is a *reorder* (NN101) when the only reading of the sizes by
whole input dims, or by input dims split into factors, changes the dims'
order: (5, 192, 37, 29) -> (5, 1073, 192) reads as (b, h*w, c) of a
(b, c, h, w) tensor, and (5, 37, 32) -> (5, 4, 37, 8) as the heads split
off the channels (32 = 4x8) and moved before the tokens (37): the
`view(5, 37, 4, 8).transpose(1, 2)` that was meant. When equal sizes allow
both an in-order and a reordering reading, or the sizes fit no reading, the
call is ambiguous here; the caller decodes it again on the second probe,
whose sizes differ (`combine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import prod

FINE, REORDER, AMBIGUOUS = "fine", "reorder", "ambiguous"
_MAX_DIMS = 10  # beyond this, enumerating readings costs more than a verdict is worth
_MAX_READINGS = 64  # a reorder needs one reading; more only say the sizes coincide
_MAX_STEPS = 2000  # placements tried per search: equal small sizes make the readings many and alike


@dataclass(frozen=True)
class Decoding:
    kind: str
    # For a reorder: for each output dim (non-1 only), the dims of `split` it is made of.
    reading: tuple[tuple[int, tuple[int, ...]], ...] = ()
    # The input shape with each dim the reading splits replaced by its factors (empty: nothing split).
    split: tuple[int, ...] = ()
    # For each dim of `split`: (input dim, factor index, number of factors); empty: nothing split.
    origin: tuple[tuple[int, int, int], ...] = ()

    def explain(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> str:
        shape = self.split or input_shape
        parts = []
        for out, pieces in self.reading:
            made_of = " x ".join(self._piece(p, input_shape) for p in pieces) if self.split else None
            if made_of is None:
                made_of = f"input dim{'s' if len(pieces) > 1 else ''} {'x'.join(map(str, pieces))} ({'x'.join(str(shape[i]) for i in pieces)})"
            parts.append(f"output dim {out} ({output_shape[out]}) is {made_of}")
        return "; ".join(parts)

    def _piece(self, piece: int, input_shape: tuple[int, ...]) -> str:
        dim, index, count = self.origin[piece]
        if count == 1:
            return f"input dim {dim} ({input_shape[dim]})"
        factors = "x".join(str(self.split[p]) for p, (d, _, _) in enumerate(self.origin) if d == dim)
        return f"part {index + 1} of {count} of input dim {dim} ({input_shape[dim]} = {factors})"

    def permutation(self, rank: int) -> tuple[int, ...]:
        """The permute() that puts the (split) input dims in the order this reading takes them (size-1 dims last)."""
        rank = len(self.split) if self.split else rank
        taken = [i for _, ins in self.reading for i in ins]
        return tuple(taken + [i for i in range(rank) if i not in taken])

    def fix(self, call: str, rank: int) -> str:
        """The fix: `permute(0, 2, 3, 1) first`, or `write view(5, 37, 4, 8).transpose(1, 2) instead`."""
        order = self.permutation(rank)
        moved = [i for i, o in enumerate(order) if i != o]
        step = (
            f"transpose({moved[0]}, {moved[1]})" if len(moved) == 2 else f"permute({', '.join(map(str, order))})"
        )
        if self.split:  # the dims are split, then moved: the call as it was meant
            return f"write {call}({', '.join(map(str, self.split))}).{step} instead"
        return f"{step} first"


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


def _regroups_in_order(ins: list[int], outs: list[int]) -> bool:
    """Whether some factors, in order, make both the input dims and the output dims (each a product of
    consecutive factors): every boundary of either side divides the next. (5, 80, 4, 2) -> (800, 2, 2)
    does (b*c*n_h, p_h, w: mobilevit's unfold), so a reading that splits and moves dims is only the sizes
    coinciding there; (5, 37, 32) -> (5, 4, 37, 8) does not (185 is no multiple of 20)."""
    points = sorted(set(_boundaries(ins)) | set(_boundaries(outs)))
    return all(later % earlier == 0 for earlier, later in zip(points, points[1:]))


def _readings(ins: list[int], outs: list[int], splits: bool):
    """Every reading of the output dims as input dims: each input dim goes whole into one output dim
    (with other whole dims: a merge), or, with `splits`, into two or more output dims of its own whose
    product it is (its factors, outer first). Yields, per input dim, the output slots it fills."""
    remaining = list(outs)
    whole = [False] * len(outs)  # holds whole input dims
    own = [False] * len(outs)  # one input dim's factor
    assignment: list[tuple[int, ...]] = [()] * len(ins)
    steps = [0]

    def place(index: int):
        steps[0] += 1
        if steps[0] > _MAX_STEPS:  # many equal small sizes: the readings coincide anyway
            raise _TooMany
        if index == len(ins):
            if all(r == 1 for r in remaining):
                yield tuple(assignment)
            return
        size = ins[index]
        for slot, left in enumerate(remaining):
            if not own[slot] and left % size == 0:
                was = whole[slot]
                assignment[index], remaining[slot], whole[slot] = (slot,), left // size, True
                yield from place(index + 1)
                remaining[slot], whole[slot] = left, was
        if not splits:
            return
        free = [slot for slot in range(len(outs)) if not whole[slot] and not own[slot] and size % outs[slot] == 0]
        for count in range(2, len(free) + 1):
            for slots in combinations(free, count):
                if prod(outs[slot] for slot in slots) != size:
                    continue
                for slot in slots:
                    own[slot], remaining[slot] = True, 1
                assignment[index] = slots
                yield from place(index + 1)
                for slot in slots:
                    own[slot], remaining[slot] = False, outs[slot]

    yield from place(0)


def _in_order(reading: tuple[tuple[int, ...], ...]) -> bool:
    taken = [slot for slots in reading for slot in slots]
    return taken == sorted(taken)


class _TooMany(Exception):
    """The search for readings ran past _MAX_STEPS."""


def _first(readings, limit: int = _MAX_READINGS) -> list | None:
    """Up to `limit` readings; None when finding them took too long to say."""
    found = []
    try:
        for reading in readings:
            found.append(reading)
            if len(found) >= limit:
                break
    except _TooMany:
        return None
    return found


def decode(input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Decoding:
    in_dims = [i for i, size in enumerate(input_shape) if size != 1]
    out_dims = [o for o, size in enumerate(output_shape) if size != 1]
    ins, outs = [input_shape[i] for i in in_dims], [output_shape[o] for o in out_dims]
    if prod(ins) != prod(outs) or len(ins) > _MAX_DIMS or len(outs) > _MAX_DIMS:
        return Decoding(AMBIGUOUS)
    if _merges_and_splits_in_order(ins, outs):
        # In order; equal sizes may also allow a whole-dim reorder ((5, 64, 8, 8) -> (5, 64, 64)).
        readings = _first(_readings(ins, outs, splits=False))
        reorders = None if readings is None else [r for r in readings if not _in_order(r)]
        return Decoding(FINE if reorders == [] else AMBIGUOUS)
    readings = _first(_readings(ins, outs, splits=False))
    if readings == [] and not _regroups_in_order(ins, outs):
        readings = _first(_readings(ins, outs, splits=True))
    reorders = [r for r in readings or [] if not _in_order(r)]
    if not reorders or len({tuple(map(len, r)) for r in reorders}) > 1:
        return Decoding(AMBIGUOUS)  # no reading, or readings that split different dims: the sizes coincide
    return _reorder(input_shape, output_shape, in_dims, out_dims, reorders[0])


def _reorder(input_shape, output_shape, in_dims: list[int], out_dims: list[int], reading) -> Decoding:
    """The Decoding of one reordering reading: by input dims, or by the split shape when it splits some."""
    if all(len(slots) == 1 for slots in reading):
        by_slot = tuple(
            (out_dims[slot], tuple(in_dims[k] for k, slots in enumerate(reading) if slots == (slot,)))
            for slot in range(len(out_dims))
        )
        return Decoding(REORDER, by_slot)
    split, origin, piece_of = [], [], {}
    for dim, size in enumerate(input_shape):
        k = in_dims.index(dim) if dim in in_dims else None
        slots = reading[k] if k is not None else ()
        if len(slots) > 1:
            for index, slot in enumerate(slots):
                piece_of.setdefault(slot, []).append(len(split))
                origin.append((dim, index, len(slots)))
                split.append(output_shape[out_dims[slot]])
        else:
            if slots:
                piece_of.setdefault(slots[0], []).append(len(split))
            origin.append((dim, 0, 1))
            split.append(size)
    return Decoding(
        REORDER,
        tuple((out_dims[slot], tuple(piece_of[slot])) for slot in range(len(out_dims))),
        tuple(split),
        tuple(origin),
    )


def combine(kinds: list[str]) -> str:
    """One verdict for a call site from every decoding of it (both probes, every time it ran): a tie on
    one probe's sizes is broken by the other's."""
    decided = {kind for kind in kinds if kind != AMBIGUOUS}
    if len(decided) == 1:
        return decided.pop()
    return AMBIGUOUS
