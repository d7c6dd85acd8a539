"""Eval randomness (NN301) on a whole model, child side: where no finding pointed, in eval() two
forwards differ, first at a dropout call that does not pass `training` (random noise of other kinds
may be the model's design, and a call that passes `training` is deliberate, e.g. Monte-Carlo dropout).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from nnlint.confirm.intercept import Site
from nnlint.confirm.protocol import MONTE_CARLO_CLASS, RuntimeFinding
from nnlint.confirm.session import ModelRecord, ProbeSession


def eval_randomness(session: ProbeSession, record: ModelRecord) -> list[RuntimeFinding]:
    """The NN301 finding at each call whose output differs between two eval forwards of the record's model
    (the random calls before it replayed, see session._Replay), when that call is a dropout of the
    session's files that is not deliberate."""
    run = session.eval_determinism(record)
    found = []
    probe = f"{record.name} on {record.probe.describe_input()}"
    for index, (site, call, difference) in enumerate(run.random_sites):
        if "dropout" not in call or not session.owns(site.path) or _deliberate_dropout(site):
            continue
        if index == 0:
            evidence = f"in eval(), two forwards of {probe} differ by up to {difference:.3g}, first at this {call}()"
        else:
            first = run.random_sites[0][0]
            evidence = (
                f"in eval(), two forwards of {probe} differ at this {call}() by up to {difference:.3g}, "
                f"with the random calls before it (first at line {first.line}) replayed"
            )
        data = {"model": record.name, "input": record.probe.describe_input(), "max_difference": difference, "call": call}
        message = f"`{call}` stays on after model.eval(); pass training=self.training or use an nn.Dropout module"
        found.append(RuntimeFinding("NN301", site.path, site.line, message, evidence, data))
    return found


def _deliberate_dropout(site: Site) -> bool:
    """A dropout call at this line that passes `training` (any value: MC dropout writes True), or one inside
    a class named like MCDropout, as the static rule NN301 judges them."""
    tree = _parsed(site.path)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if not getattr(node, "lineno", 0) <= site.line <= (getattr(node, "end_lineno", 0) or 0):
            continue
        if isinstance(node, ast.ClassDef) and MONTE_CARLO_CLASS.search(node.name):
            return True
        if isinstance(node, ast.Call) and "dropout" in ast.unparse(node.func):
            # F.dropout(input, p, training, inplace): training is the third argument.
            if len(node.args) >= 3 or any(keyword.arg in ("training", "train") for keyword in node.keywords):
                return True
    return False


@cache
def _parsed(path: str) -> ast.Module | None:
    try:
        return ast.parse(Path(path).read_bytes(), path)
    except (OSError, SyntaxError, ValueError):
        return None
