"""The structure probes behind NN203 and NN204's runtime checks, run in-process on small models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from nnlint.confirm.structure import fresh_layers, unregistered_in  # noqa: E402

HERE = __file__


class Rebuilt(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 8)

    def forward(self, x):
        return nn.Linear(8, 2)(self.encoder(x))  # BUILT_HERE


class Fixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 8)

    def forward(self, x):
        return self.encoder(x)


def _record(module):
    probe = SimpleNamespace(module=module, probe_input=lambda index, seed: torch.ones(3, 4))
    return SimpleNamespace(probe=probe, name=type(module).__name__)


def _session():
    return SimpleNamespace(seed=0, count_pass=lambda record, kind: None)


def _line(marker: str) -> int:
    return next(n for n, text in enumerate(open(HERE).read().splitlines(), 1) if text.endswith(f"# {marker}"))


def test_a_layer_built_in_forward_is_seen_at_its_line_and_changes_the_output():
    run = fresh_layers(_session(), _record(Rebuilt()), HERE)
    assert run.built[_line("BUILT_HERE")] == ["Linear.weight (16)", "Linear.bias (2)"]
    assert run.max_difference > 0 and run.parameters_before == run.parameters_after == 40
    assert _line("BUILT_HERE") in run.lines_run


def test_a_model_without_one_builds_nothing_and_agrees_with_itself():
    run = fresh_layers(_session(), _record(Fixed()), HERE)
    assert run.built == {} and run.max_difference == 0.0


def test_unregistered_modules_are_named_with_their_parameters_and_registered_ones_are_not():
    model = Fixed()
    model.__dict__["hidden"] = [nn.Linear(2, 2), model.encoder, {"head": nn.Linear(3, 1)}]
    names, parameters = unregistered_in(model, model, "hidden")
    assert names == ["hidden[0] (Linear)", "hidden[2]['head'] (Linear)"]
    assert parameters == 6 + 4
