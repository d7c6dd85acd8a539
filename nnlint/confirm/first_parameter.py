"""The input of a model with no Conv/Linear/Embedding/RNN layer to read it from (child side, imports torch).

A model of raw `nn.Parameter`s (`h = x @ self.W1`, `F.linear(x, self.W, self.b)`,
`torch.einsum("bi,ih->bh", x, self.W)`) says what it takes at the first
product between its input and one of its parameters. A cheap trace finds it:
a forward on a stand-in input (float[5, 7], then float[5, 11, 7]) under a
TorchFunctionMode that follows which tensors come from the input and stops
the forward, before the product runs, at the first product of such a tensor
(of the input's own shape: reshaped on the way, it says nothing about the
input) with a parameter of the model (or a transposed view of one). The
parameter's extent on the contracted dim is the input's last dim. Nothing
runs past that product, so the stand-in's wrong size never matters; a
forward that fails before it (it checks the size itself) leaves the input
unknown, as before.
"""

from __future__ import annotations

import re
import sys
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.confirm.intercept import call_name, tensors_in, user_site

_STAND_INS = ((5, 7), (5, 11, 7))  # the batch, then free dims: 7 and 11 match no parameter by chance
_PRODUCTS = frozenset({"matmul", "__matmul__", "mm", "bmm", "linear", "einsum", "addmm", "baddbmm", "bilinear"})


class _Found(Exception):
    """Raised inside the trial forward to stop it at the product that says the input's size."""

    def __init__(self, features: int, how: str):
        super().__init__(how)
        self.features, self.how = features, how


class _FirstProduct(TorchFunctionMode):
    def __init__(self, stand_in: torch.Tensor, parameters: dict[int, str], user_files: frozenset[str]):
        super().__init__()
        self.shape = tuple(stand_in.shape)
        self.carrying = {id(stand_in): stand_in}
        self.parameters = parameters  # data_ptr -> name
        self.user_files = user_files

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = call_name(func)
        operands = tensors_in([list(args), kwargs])
        carried = [t for t in operands if id(t) in self.carrying]
        if carried and name in _PRODUCTS:
            self._inspect(name, args, carried[0])
        result = func(*args, **kwargs)
        if carried:
            for tensor in tensors_in(result):
                self.carrying[id(tensor)] = tensor
        return result

    def _inspect(self, name: str, args: tuple, data: torch.Tensor) -> None:
        if tuple(data.shape) != self.shape:
            return
        tensors = tensors_in(list(args[1:] if name == "einsum" else args))
        weights = [
            (t, self.parameters[t.data_ptr()]) for t in tensors
            if t is not data and t.dim() >= 2 and t.data_ptr() in self.parameters  # a bias says nothing
        ]  # fmt: skip
        if not weights:
            return
        weight, parameter = weights[0]
        features = _contracted(name, args, data, weight)
        if features is None:
            return
        site = user_site(sys._getframe(2), self.user_files)
        where = f" at {site.path.rpartition('/')[2]}:{site.line}" if site is not None else ""
        shown = "@" if name in ("matmul", "__matmul__", "mm", "bmm") else name
        raise _Found(features, f"`{parameter}` {tuple(weight.shape)} in its `{shown}` with the input{where}")


def _contracted(name: str, args: tuple, data: torch.Tensor, weight: torch.Tensor) -> int | None:
    """The size the input's last dim must have for `name(data, weight)`."""
    if name in ("linear", "bilinear"):
        return int(weight.shape[-1]) if name == "linear" else int(weight.shape[1])
    if name == "einsum":
        return _einsum_size(args, data, weight)
    if name in ("addmm", "baddbmm"):  # addmm(bias, x, W)
        return int(weight.shape[-2]) if len(args) > 2 and args[1] is data and weight.dim() >= 2 else None
    if args and args[0] is data and weight.dim() >= 2:  # x @ W: W's rows
        return int(weight.shape[-2])
    return None


def _einsum_size(args: tuple, data: torch.Tensor, weight: torch.Tensor) -> int | None:
    equation = args[0] if args and isinstance(args[0], str) else None
    operands = [t for a in args[1:] for t in tensors_in(a)]
    if equation is None or "..." in equation:
        return None
    inputs = re.sub(r"\s", "", equation).split("->")[0].split(",")
    if len(inputs) != len(operands):
        return None
    data_letters = next((s for s, t in zip(inputs, operands) if t is data), None)
    weight_letters = next((s for s, t in zip(inputs, operands) if t is weight), None)
    if not data_letters or not weight_letters or len(data_letters) != data.dim() or data_letters[-1] not in weight_letters:
        return None
    return int(weight.shape[weight_letters.index(data_letters[-1])])


def first_parameter_input(model: nn.Module, user_files: frozenset[str] = frozenset()) -> tuple[int, int, str] | None:
    """(rank, features, how) of the input the model's first parameter product takes, or None.

    rank 2: float[B, F]; rank 3: float[B, T, F]. Runs at most two aborted forwards under no_grad."""
    parameters: dict[int, str] = {}
    for name, parameter in model.named_parameters():
        parameters.setdefault(parameter.data_ptr(), f"self.{name}")
    if not parameters:
        return None
    was_training = model.training
    model.eval()
    try:
        for shape in _STAND_INS:
            stand_in = torch.randn(shape, generator=torch.Generator().manual_seed(0))
            try:
                with torch.no_grad(), _FirstProduct(stand_in, parameters, user_files):
                    model(stand_in)
            except _Found as found:
                return len(shape), found.features, found.how
            except Exception:  # the forward failed before any product with a parameter: try another rank
                continue
    finally:
        model.train(was_training)
    return None
