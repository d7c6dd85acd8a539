"""Train/eval mode at runtime (child side, imports torch): NN302 and NN305.

A model's output depends on its mode through its layers (dropout, batch norm with running statistics,
RReLU, RNN and attention dropout) or through its own code reading `self.training`. Listing the layers
names the cause; comparing a train-mode and an eval-mode forward on the same input catches the rest.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from nnlint.confirm.intercept import tensors_in
from nnlint.confirm.session import ModelRecord, ProbeSession


def mode_dependent_layers(module: nn.Module) -> list[str]:
    """`features.3 (Dropout p=0.5)`, `bn1 (BatchNorm2d)`: the submodules whose output depends on the mode."""
    found = []
    for name, layer in module.named_modules():
        what = _mode_dependence(layer)
        if what:
            found.append(f"{name or type(module).__name__} ({what})")
    return found


def _mode_dependence(layer: nn.Module) -> str | None:
    kind = type(layer).__name__
    if isinstance(layer, nn.modules.dropout._DropoutNd) and layer.p > 0:
        return f"{kind} p={layer.p:g}"
    if isinstance(layer, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
        return kind if layer.track_running_stats else None
    if isinstance(layer, nn.RReLU):
        return kind
    if isinstance(layer, (nn.RNNBase, nn.MultiheadAttention)) and getattr(layer, "dropout", 0) > 0:
        return f"{kind} dropout={layer.dropout:g}"
    return None


def train_eval_difference(session: ProbeSession, record: ModelRecord) -> float:
    """The largest difference between a train-mode and an eval-mode forward of a copy on the probe input."""
    module = copy.deepcopy(record.probe.module)
    outputs = []
    for train in (True, False):
        torch.manual_seed(session.seed)
        with torch.no_grad():
            outputs.append(tensors_in(module.train(train)(record.probe.probe_input(0, session.seed))))
        session.count_pass(record, "forward")
    return max((float((a - b).abs().max()) for a, b in zip(*outputs) if a.shape == b.shape and a.numel()), default=0.0)


def running_statistics_drift(session: ProbeSession, record: ModelRecord, part: str) -> tuple[list[str], list[str]]:
    """(the batch norms under `part` whose running statistics move, all of them) in one train-mode forward of
    a copy with that part frozen as the script freezes it (`part` a submodule path, "" for the whole model).
    `requires_grad = False` does not stop the statistics; eval(), a frozen norm, or a `train()` override
    that keeps them in eval does."""
    module = copy.deepcopy(record.probe.module)
    frozen = module.get_submodule(part) if part else module
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    norms = {
        name: layer for name, layer in frozen.named_modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.running_mean is not None
    }  # fmt: skip
    before = {name: layer.running_mean.clone() for name, layer in norms.items()}
    module.train()
    torch.manual_seed(session.seed)
    with torch.no_grad():
        module(record.probe.probe_input(0, session.seed))
    session.count_pass(record, "forward")
    prefix = f"{part}." if part else ""
    moved = [prefix + name for name, layer in norms.items() if not torch.equal(before[name], layer.running_mean)]
    return moved, [prefix + name for name in norms]
