"""Build the user's models and the inputs to probe them with (child side, imports torch).

A model is built as `[tool.nnlint.models.<Class>]` says, else with the
constant arguments the project's own code passes (`ViT(num_classes=10)`
found statically), else with no arguments. Its input comes from the config
(`input = "float[B,3,H,W]"`, `"long[B,T] < 1000"`) or from its first layer.
Probe sizes are asymmetric (DESIGN.md): the batch a small prime, every free
dimension a different odd prime, so that no swap of two dims can hide.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# Two probes per model: the second, with other sizes, before a shape verdict is final.
PROBE_BATCHES = (5, 3)
PROBE_FREE_SIZES = ((37, 29, 23, 19), (31, 17, 13, 11))
# A model that rejects the primes (a hard-coded flatten or position-embedding size) is tried square.
SQUARE_SIZES = (32, 28, 64, 224)
_SIZE_PARAMETERS = re.compile(r"^(image|img|input|in)_?(size|res|resolution)$|^resolution$")
_INPUT_SPEC = re.compile(r"^\s*(float|long|int)\s*\[([^\]]*)\]\s*(?:<\s*(\d+))?\s*$")


class BuildError(Exception):
    """Why a model could not be built or probed; becomes an `unverifiable` reason."""


@dataclass
class InputSpec:
    """The probe input: dims are ints (fixed) or letters (free: B the batch, others probe sizes)."""

    dtype: str  # "float" or "long"
    dims: list[int | str]
    high: int | None = None  # token ids are drawn below this
    origin: str = ""  # how it was found, for the evidence

    @property
    def batch_dim(self) -> int:
        return self.dims.index("B") if "B" in self.dims else 0

    def sizes(self, probe: int, square: int | None = None) -> list[int]:
        """Concrete sizes for probe 0 or 1; `square` gives every free dim but the batch that size."""
        free = iter(PROBE_FREE_SIZES[probe])
        sizes = []
        for dim in self.dims:
            if isinstance(dim, int):
                sizes.append(dim)
            elif dim == "B":
                sizes.append(PROBE_BATCHES[probe])
            else:
                sizes.append(square if square is not None else next(free))
        return sizes

    def make(self, sizes: list[int], generator: torch.Generator) -> torch.Tensor:
        if self.dtype == "long":
            return torch.randint(0, self.high or 2, sizes, generator=generator)
        return torch.randn(sizes, generator=generator)

    def describe(self, sizes: list[int]) -> str:
        bound = f" < {self.high}" if self.high else ""
        return f"{self.dtype}[{', '.join(map(str, sizes))}]{bound}"


def parse_input_spec(text: str) -> InputSpec:
    match = _INPUT_SPEC.match(text)
    if match is None:
        raise BuildError(f'input = "{text}" is not of the form "float[B,3,H,W]" or "long[B,T] < 1000"')
    dtype, dims_text, high = match.groups()
    dims: list[int | str] = [int(d) if d.strip().isdigit() else d.strip() for d in dims_text.split(",") if d.strip()]
    return InputSpec("float" if dtype == "float" else "long", dims, int(high) if high else None, "from config")


def infer_input(model: nn.Module) -> InputSpec:
    """The input the model's first layer takes (DESIGN.md "Input inference")."""
    for name, layer in model.named_modules():
        where = f"from its first layer {name} ({type(layer).__name__})"
        if isinstance(layer, nn.modules.conv._ConvNd):
            spatial = len(layer.kernel_size)
            return InputSpec("float", ["B", layer.in_channels, *"HWD"[:spatial]], origin=where)
        if isinstance(layer, nn.Linear):
            return InputSpec("float", ["B", layer.in_features], origin=where)
        if isinstance(layer, nn.Embedding):
            return InputSpec("long", ["B", "T"], high=layer.num_embeddings, origin=where)
        if isinstance(layer, nn.RNNBase):
            dims: list[int | str] = ["B", "T", layer.input_size] if layer.batch_first else ["T", "B", layer.input_size]
            return InputSpec("float", dims, origin=where)
    raise BuildError("its input cannot be inferred (no Conv, Linear, Embedding or RNN layer found)")


@dataclass
class ProbeModel:
    """A built model, its probe input and the sizes it accepts."""

    name: str
    module: nn.Module
    built_with: str  # e.g. "ViT(num_classes=10), as in train.py:42"
    spec: InputSpec | None = None
    square: int | None = None  # set when the model only accepts one square size
    causal: bool = False
    note: str = ""  # what was assumed, for the evidence
    inputs: dict[int, torch.Tensor] = field(default_factory=dict)

    def probe_input(self, probe: int = 0, seed: int = 0) -> torch.Tensor:
        if probe not in self.inputs:
            generator = torch.Generator().manual_seed(seed + probe)
            self.inputs[probe] = self.spec.make(self.spec.sizes(probe, self.square), generator)
        return self.inputs[probe]

    def describe_input(self, probe: int = 0) -> str:
        square = " (square: it rejects other sizes)" if self.square else ""
        return self.spec.describe(self.spec.sizes(probe, self.square)) + square


def _arguments_text(args: list, kwargs: dict) -> str:
    return ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])


def constructions(cls: type, configured: dict[str, Any], seen_calls: list[dict]) -> list[tuple[list, dict, str]]:
    """(args, kwargs, description) to try, in order: config, the project's own calls, no arguments."""
    name = cls.__name__
    options = []
    if "args" in configured or "kwargs" in configured:
        args, kwargs = list(configured.get("args", [])), dict(configured.get("kwargs", {}))
        options.append((args, kwargs, f"{name}({_arguments_text(args, kwargs)}) from [tool.nnlint.models.{name}]"))
    for call in seen_calls:
        described = f"{name}({_arguments_text(call['args'], call['kwargs'])}), as in {call['where']}"
        options.append((call["args"], call["kwargs"], described))
    options.append(([], {}, f"{name}()"))
    return options


def build(cls_or_factory, configured: dict[str, Any], seen_calls: list[dict], seed: int) -> tuple[nn.Module, str]:
    """The first construction that works; BuildError naming the config entry to add when none does."""
    name = getattr(cls_or_factory, "__name__", str(cls_or_factory))
    failures = []
    for args, kwargs, described in constructions(cls_or_factory, configured, seen_calls):
        torch.manual_seed(seed)
        try:
            model = cls_or_factory(*args, **kwargs)
        except TypeError as error:
            failures.append(f"{described}: {error}")
            continue
        if not isinstance(model, nn.Module):
            raise BuildError(f"{described} returned a {type(model).__name__}, not an nn.Module")
        return model, described
    needs = failures[-1].split(": ", 1)[-1] if failures else ""
    raise BuildError(
        f"{name} cannot be built ({needs}): add [tool.nnlint.models.{name}] with args = [...] / kwargs = {{...}}"
    )


def _square_candidates(model: nn.Module) -> list[int]:
    """Square sizes to try: the model's own `image_size`-like defaults first."""
    sizes = []
    try:
        parameters = inspect.signature(type(model).__init__).parameters.values()
    except (TypeError, ValueError):
        parameters = []
    for parameter in parameters:
        if _SIZE_PARAMETERS.match(parameter.name) and isinstance(parameter.default, int):
            sizes.append(parameter.default)
    return sizes + [size for size in SQUARE_SIZES if size not in sizes]


def fit_input(probe_model: ProbeModel, seed: int) -> None:
    """Find probe sizes the model accepts: the asymmetric primes, else a square size (said in `note`)."""
    model, spec = probe_model.module, probe_model.spec
    model.eval()
    first_error = None
    has_free_spatial = sum(1 for dim in spec.dims if isinstance(dim, str) and dim != "B") > 0
    for square in [None, *(_square_candidates(model) if has_free_spatial else [])]:
        probe_model.square, probe_model.inputs = square, {}
        try:
            with torch.no_grad():
                model(probe_model.probe_input(0, seed))
        except Exception as error:  # the user's forward rejects these sizes, whatever its exception
            first_error = first_error or error
            continue
        if square is not None:
            probe_model.note = (
                f"it rejects asymmetric sizes ({type(first_error).__name__}: {str(first_error)[:120]}), "
                f"so the probe is square {square}x{square}"
            )
        return
    raise BuildError(
        f"its forward rejects the probe {spec.describe(spec.sizes(0))} ({type(first_error).__name__}: "
        f"{str(first_error)[:200]}): add input = \"...\" to [tool.nnlint.models.{probe_model.name}]"
    )
