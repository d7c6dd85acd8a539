"""Schedule simulation (NN401, NN402): the real torch scheduler, built with the arguments the source gives,
on a dummy optimizer, stepped as often as the code steps it. Child side: imports torch.

The optimizer starts at lr=1, so every LR here is a fraction of the initial LR: the rules judge a
schedule's shape, which the source's base LR does not change.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch

# How many batches an epoch has, when the source does not say (a loader's length is a run-time fact).
BATCHES_PER_EPOCH = 100
# A simulation longer than this (a million-epoch loop read from the source) is not worth the seconds.
MAX_STEPS = 1_000_000
# Two LRs differ materially when one is more than twice the other: LRs are tuned on a log scale.
MATERIAL_FACTOR = 2.0
# Arguments that say where a resumed run starts or how loud the scheduler is, not the schedule's shape:
# the simulation always starts at the schedule's beginning.
_NOT_SHAPE = ("last_epoch", "verbose")
_RECORD_ONLY = ("scheduler", "written", "unresolved", *_NOT_SHAPE)  # keys of a schedule record that are no argument
# An LR curve in the evidence keeps every point where the LR changes, or the lowest and highest LR of each
# of this many equal stretches of the run (a cosine stepped every batch still shows its full swing).
CURVE_BUCKETS = 120
# Below this, an LR is zero (a cosine's closed form leaves rounding dust at its minimum).
_ZERO = 1e-12


class ScheduleError(ValueError):
    """The schedule cannot be simulated: an argument the source gives no number for, or one torch rejects."""


def describe(schedule: dict) -> str:
    """`StepLR(step_size=30, gamma=0.1)`; a LambdaLR or hand-written decay with the StepLR it equals."""
    given = _arguments(schedule)
    order = list(inspect.signature(getattr(torch.optim.lr_scheduler, schedule["scheduler"], object)).parameters)
    in_order = sorted(given, key=lambda name: order.index(name) if name in order else len(order))
    arguments = ", ".join(f"{name}={given[name]}" for name in in_order)
    built = f"{schedule['scheduler']}({arguments})"
    return f"{schedule['written']} as {built}" if "written" in schedule else built


def simulate(schedule: dict, steps: int) -> list[float]:
    """The LR in force after 0, 1, ..., `steps` scheduler steps (`lrs[k]`: after k steps)."""
    if steps > MAX_STEPS:
        raise ScheduleError(f"{steps:,} scheduler steps are too many to simulate (at most {MAX_STEPS:,})")
    unknown = {name: code for name, code in schedule.get("unresolved", {}).items() if name not in _NOT_SHAPE}
    if unknown:
        named = ", ".join(f"{name} (`{code}`)" for name, code in unknown.items())
        raise ScheduleError(f"the source gives no number for {named}, so the schedule cannot be simulated")
    optimizer = _LrHolder()
    try:
        scheduler = getattr(torch.optim.lr_scheduler, schedule["scheduler"])(optimizer, **_arguments(schedule))
    except (AttributeError, TypeError, ValueError) as error:
        raise ScheduleError(f"torch rejects {describe(schedule)}: {error}") from error
    optimizer.step()  # tells the scheduler the optimizer has stepped first, as in training
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def changes(lrs: list[float]) -> list[int]:
    """The steps after which the LR differs from the step before: a step schedule's decays."""
    return [k for k in range(1, len(lrs)) if not math.isclose(lrs[k], lrs[k - 1])]


def curve(lrs: list[float], label: str, unit: str, per_unit: int = 1) -> dict:
    """The LR curve for pictures (text sparkline, HTML report): [x, LR] points, each LR in force from its x
    until the next point's x (the last until `end`, where the run ends), x in `unit`s of `per_unit` steps.
    A step schedule keeps every change (exact); a smooth one the extremes of CURVE_BUCKETS stretches."""
    last = len(lrs) - 1
    kept = {0, last, *changes(lrs)}
    if len(kept) > 2 * CURVE_BUCKETS:
        bounds = [round(n * len(lrs) / CURVE_BUCKETS) for n in range(CURVE_BUCKETS + 1)]
        stretches = [range(start, end) for start, end in zip(bounds, bounds[1:]) if end > start]
        kept = {0, last} | {pick(stretch, key=lrs.__getitem__) for stretch in stretches for pick in (min, max)}
    points = [[_at(k, per_unit), float(f"{lrs[k]:.4g}")] for k in sorted(kept)]
    return {"label": label, "unit": unit, "points": points, "end": _at(len(lrs), per_unit)}


def _at(step: int, per_unit: int) -> float | int:
    return step if per_unit == 1 else round(step / per_unit, 3)


def first_below(lrs: list[float], fraction: float) -> int | None:
    """The first step count whose LR is below `fraction` of the initial LR (0.1**3 is not below 1e-3)."""
    return next((k for k, lr in enumerate(lrs) if lr < fraction and not math.isclose(lr, fraction)), None)


def differ_materially(a: float, b: float) -> bool:
    """One LR more than MATERIAL_FACTOR times the other (a zero LR differs from any LR that is not zero)."""
    low, high = sorted((a if a > _ZERO else 0.0, b if b > _ZERO else 0.0))
    return high > MATERIAL_FACTOR * low


def lr(value: float) -> str:
    """An LR as a multiple of the initial one: `0.1x`, `1e-05x`."""
    return f"{value:.3g}x"


def falls(lrs: list[float], steps: list[int], unit: str, shown: int = 4) -> str:
    """"the LR falls to 0.1x at epoch 30, 0.01x at epoch 60": the LR after each of `steps`."""
    points = [f"{lr(lrs[k])} at {unit} {k}" for k in steps[:shown]]
    return "the LR falls to " + ", ".join(points) + (", ..." if len(steps) > shown else "")


def first_epoch(lrs: list[float], batches_per_epoch: int) -> str:
    """What a schedule stepped every batch does in the first epoch: its first change and where it ends."""
    changed = changes(lrs[: batches_per_epoch + 1])
    if not changed:
        return f"it stays at {lr(lrs[0])} for the whole first epoch"
    return f"it is at {lr(lrs[changed[0]])} after {changed[0]} batches and {lr(lrs[batches_per_epoch])} after one epoch"


@dataclass(frozen=True)
class PerBatchRun:
    """A schedule stepped every batch beside the same schedule stepped once per epoch."""

    per_batch: list[float]  # after k batches
    per_epoch: list[float]  # after e epochs
    batches_per_epoch: int
    compared: int  # how many batch counts (0, 1, ...) the comparison covers

    def intended(self, batches: int) -> float:
        """The LR stepping once per epoch gives after `batches` batches: the LR of the epoch they end in."""
        return self.per_epoch[batches // self.batches_per_epoch]

    def parting(self) -> int | None:
        """The first batch count at which stepping every batch has the LR materially off the per-epoch LR."""
        return next(
            (k for k in range(self.compared) if differ_materially(self.per_batch[k], self.intended(k))), None
        )


def per_batch_run(schedule: dict, epochs: int | None, batches_per_epoch: int = BATCHES_PER_EPOCH) -> PerBatchRun:
    """Over the run's `epochs` (the LRs its batches train with) or, when its length is unknown, over one epoch
    and the LR it ends with."""
    compared = epochs * batches_per_epoch if epochs else batches_per_epoch + 1
    per_batch = simulate(schedule, max(compared, batches_per_epoch))
    return PerBatchRun(per_batch, simulate(schedule, epochs or 1), batches_per_epoch, compared)


class _LrHolder(torch.optim.Optimizer):
    """The dummy optimizer a scheduler adjusts: one parameter group, at lr=1, with nothing to optimise.

    It skips Optimizer.__init__, whose add_param_group imports torch._dynamo: 1.5 s in every probe
    process, for a simulation that takes milliseconds.
    """

    def __init__(self) -> None:  # no super().__init__(): see the docstring
        self.defaults: dict = {}
        self.state: dict = {}
        self.param_groups = [{"params": [], "lr": 1.0}]

    def step(self, closure=None) -> None:
        return None


def _arguments(schedule: dict) -> dict:
    """The torch scheduler's keyword arguments: the schedule record without what only describes it."""
    return {name: value for name, value in schedule.items() if name not in _RECORD_ONLY}
