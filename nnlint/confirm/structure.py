"""Probes of a built model's structure (child side, imports torch): what NN203 and NN204 check.

NN203: modules held in a plain list/dict/tuple attribute but missing from `named_modules()`.
NN204: parameters created during `forward` (layers built there), and whether the output changes call to call.
"""

from __future__ import annotations

import copy
import inspect
import sys
from dataclasses import dataclass, field

import torch
from torch import nn


def instances_at(model: nn.Module, path: str, line: int) -> list[nn.Module]:
    """The submodules of `model` (itself included) whose class's source spans path:line."""
    found = []
    for module in model.modules():
        try:
            if inspect.getsourcefile(type(module)) != path:
                continue
            lines, start = inspect.getsourcelines(type(module))
        except (OSError, TypeError):
            continue
        if start <= line < start + len(lines):
            found.append(module)
    return found


def unregistered_in(model: nn.Module, holder: nn.Module, attribute: str) -> tuple[list[str], int]:
    """Modules and parameters inside `holder.<attribute>` (a list/tuple/dict, nested ones too) that `model`
    does not register: their names as `attribute[i]`, and how many parameters they hold in all."""
    registered_modules = {id(m) for m in model.modules()}
    registered_parameters = {id(p) for p in model.parameters()}
    names: list[str] = []
    counted: set[int] = set()
    parameters = 0

    def visit(value, name: str) -> None:
        nonlocal parameters
        if isinstance(value, nn.Module) and id(value) not in registered_modules:
            names.append(f"{name} ({type(value).__name__})")
            for parameter in value.parameters():
                if id(parameter) not in registered_parameters and id(parameter) not in counted:
                    counted.add(id(parameter))
                    parameters += parameter.numel()
        elif isinstance(value, nn.Parameter) and id(value) not in registered_parameters:
            names.append(f"{name} (Parameter)")
            if id(value) not in counted:
                counted.add(id(value))
                parameters += value.numel()
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                visit(item, f"{name}[{index}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{name}[{key!r}]")

    visit(holder.__dict__.get(attribute), attribute)
    return names, parameters


@dataclass
class FreshLayers:
    """Two eval forwards of a model: the parameters created during them, by line of the file, and more."""

    built: dict[int, list[str]] = field(default_factory=dict)  # line -> ["Linear.weight (32)", ...]
    lines_run: set[int] = field(default_factory=set)  # the lines of the file that ran
    parameters_before: int = 0
    parameters_after: int = 0
    max_difference: float = 0.0


def fresh_layers(session, record, path: str) -> FreshLayers:
    """Two eval forwards of a copy of the model on one input, with no reseeding between them, watching
    every parameter registered meanwhile (a layer constructed in `forward` registers its own) with the
    line of `path` that built it, and which lines of `path` ran. A layer built in `forward` gets new
    random weights each call, so the two outputs differ."""
    if getattr(record, "fresh_layers", None) is not None:  # one probe per model, however many findings
        return record.fresh_layers
    model = copy.deepcopy(record.probe.module).eval()
    result = record.fresh_layers = FreshLayers(parameters_before=sum(p.numel() for p in model.parameters()))

    def registered(module, name, parameter):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != path:
            frame = frame.f_back
        if frame is not None and parameter is not None and parameter.numel() and len(outputs) == 0:  # first call
            result.built.setdefault(frame.f_lineno, []).append(f"{type(module).__name__}.{name} ({parameter.numel():,})")

    def lines(frame, event, arg):
        if event == "line":
            result.lines_run.add(frame.f_lineno)
        return lines

    def calls(frame, event, arg):
        return lines if frame.f_code.co_filename == path else None

    outputs: list = []
    handle = nn.modules.module.register_module_parameter_registration_hook(registered)
    previous = sys.gettrace()
    try:
        sys.settrace(calls)
        with torch.no_grad():
            for _ in range(2):
                outputs.append(model(record.probe.probe_input(0, session.seed)))
                session.count_pass(record, "forward")
    finally:
        sys.settrace(previous)
        handle.remove()
    first, second = (_tensors(output) for output in outputs)
    result.max_difference = max(
        (float((a - b).abs().max()) for a, b in zip(first, second) if a.numel() and a.shape == b.shape), default=0.0
    )
    result.parameters_after = sum(p.numel() for p in model.parameters())
    return result


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value.detach().double()]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []
