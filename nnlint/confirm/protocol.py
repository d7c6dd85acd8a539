"""What a rule's `runtime_check` receives and returns. Torch-free: rule files import it.

A rule opts into confirmation by defining

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict: ...

The confirm pass calls it inside the sandboxed child process with the static
finding and the file's `ProbeSession` (nnlint.confirm.session): built models,
probe inputs and the cached probe results every check shares.
"""

from __future__ import annotations

import re

from dataclasses import asdict, dataclass, field
from typing import Any

from nnlint.confirm.safe_load import STOOD_IN

CONFIRMED, REFUTED, UNVERIFIABLE = "confirmed", "refuted", "unverifiable"

# A class named like this runs dropout at inference on purpose (Monte-Carlo dropout): NN301's
# static check and the probe's runtime-only dropout check both leave it alone.
MONTE_CARLO_CLASS = re.compile(r"mc_?dropout|monte_?carlo|bayes", re.IGNORECASE)


@dataclass(frozen=True)
class ProbeFinding:
    """The static finding as the runtime check sees it (`path` is absolute)."""

    code: str
    path: str
    line: int
    message: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The confirm pass's judgement: `evidence` is the one sentence a user reads, `data` the same for JSON."""

    status: str
    evidence: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _say_stand_ins(self)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _say_stand_ins(judgement) -> None:
    """A verdict reached with stand-ins for packages that are not installed (safe_load) says which."""
    if STOOD_IN and "stand_ins" not in judgement.data:
        judgement.data["stand_ins"] = list(STOOD_IN)
        names = ", ".join(f"`{name}`" for name in STOOD_IN)
        object.__setattr__(judgement, "evidence", f"{judgement.evidence} (stand-ins for {names}: not installed)")


def listed(names: list[str], most: int = 4) -> str:
    """`a, b, c, d and 3 more`: evidence names what it found without running on for a line."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def confirmed(evidence: str, **data: Any) -> Verdict:
    return Verdict(CONFIRMED, evidence, data)


def refuted(evidence: str, **data: Any) -> Verdict:
    return Verdict(REFUTED, evidence, data)


def unverifiable(reason: str, **data: Any) -> Verdict:
    return Verdict(UNVERIFIABLE, reason, data)


@dataclass(frozen=True)
class RuntimeFinding:
    """A problem only the probes saw (e.g. a reorder in a reshape no static pattern matched)."""

    code: str
    path: str
    line: int
    message: str
    evidence: str
    data: dict[str, Any] = field(default_factory=dict)
    status: str = CONFIRMED  # an R-only check also says what it refuted (shown with --show-refuted)

    def __post_init__(self) -> None:
        _say_stand_ins(self)
