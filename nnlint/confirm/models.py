"""Build the user's models and the inputs to probe them with (child side, imports torch).

A model is built as `[tool.nnlint.models.<Class>]` says (its arguments, or
a `factory = "pkg.module:make_model"` to call instead of the class), else
with the constant arguments the project's own code passes
(`ViT(num_classes=10)` found statically), else with no arguments. Its input
comes from the config (`input = "float[B,3,H,W]"`, `"long[B,T] < 1000"`) or
from its first layer.
Probe sizes are asymmetric (DESIGN.md): the batch a small prime, every free
dimension a different odd prime, so that no swap of two dims can hide.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnlint.confirm.project import NAME_ARGUMENT
from nnlint.confirm.safe_load import MissingModuleUsed, is_stand_in

# Two probes per model: the second, with other sizes, before a shape verdict is final.
PROBE_BATCHES = (5, 3)
PROBE_FREE_SIZES = ((37, 29, 23, 19), (31, 17, 13, 11))
# The second probe of a model too deep for its sizes (five stride-2 stages and a 3x3 pool need more than 17).
LARGER_FREE_SIZES = (43, 41, 31, 29)
# A model that rejects the primes (a hard-coded flatten or position-embedding size) is tried square.
SQUARE_SIZES = (32, 28, 64, 224)
_SIZE_PARAMETERS = re.compile(r"^(image|img|input|in)_?(size|res|resolution)$|^resolution$")
Watch = Callable[[int], AbstractContextManager]  # what runs around the forward of probe 0 or 1
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

    def sizes(self, probe: int, square: int | None = None, free_sizes: tuple[int, ...] | None = None) -> list[int]:
        """Concrete sizes for probe 0 or 1; `square` gives every free dim but the batch that size,
        `free_sizes` replaces the probe's own free sizes."""
        free = iter(free_sizes or PROBE_FREE_SIZES[probe])
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


_LAZY_CHANNELS, _LAZY_FEATURES = 3, 16  # the input assumed for a first layer that is lazy (nn.LazyConv2d, nn.LazyLinear)


def infer_input(model: nn.Module, user_files: frozenset[str] | set[str] = frozenset()) -> InputSpec:
    """The input the model's first layer takes (DESIGN.md "Input inference")."""
    for name, layer in model.named_modules():
        where = f"from its first layer {name} ({type(layer).__name__})"
        lazy = isinstance(layer, nn.modules.lazy.LazyModuleMixin) and layer.has_uninitialized_params()
        if lazy:  # its input size is set by the first forward: any will do (0, its placeholder, would not)
            where += f", its input size assumed ({_LAZY_CHANNELS} channels, {_LAZY_FEATURES} features)"
        if isinstance(layer, nn.modules.conv._ConvNd):
            spatial = len(layer.kernel_size)
            channels = _LAZY_CHANNELS if lazy else layer.in_channels
            return InputSpec("float", ["B", channels, *"HWD"[:spatial]], origin=where)
        if isinstance(layer, nn.Linear):
            return InputSpec("float", ["B", _LAZY_FEATURES if lazy else layer.in_features], origin=where)
        if isinstance(layer, nn.Embedding):
            return InputSpec("long", ["B", "T"], high=layer.num_embeddings, origin=where)
        if isinstance(layer, nn.RNNBase):
            dims: list[int | str] = ["B", "T", layer.input_size] if layer.batch_first else ["T", "B", layer.input_size]
            return InputSpec("float", dims, origin=where)
    from nnlint.confirm.first_parameter import first_parameter_input  # raw nn.Parameters: a cheap trace

    found = first_parameter_input(model, frozenset(user_files))
    if found is not None:
        rank, features, how = found
        return InputSpec("float", ["B", *["T"][: rank - 2], features], origin=f"from the first parameter its input meets: {how}")
    raise BuildError(
        "its input cannot be inferred (no Conv, Linear, Embedding or RNN layer found, "
        "and no product of its input with a parameter on a trial forward)"
    )


def as_sequence(spec: InputSpec) -> InputSpec | None:
    """For an input inferred from a first Linear, float[B, F]: the same features as a sequence,
    float[B, T, F] (a Linear reads the last dim: taggers and transformers take (B, T, F)); else None."""
    if spec.origin.startswith("from its first layer") and spec.dtype == "float" and len(spec.dims) == 2:
        if spec.dims[0] == "B" and isinstance(spec.dims[1], int):
            return InputSpec("float", ["B", "T", spec.dims[1]], origin=f"{spec.origin}, as a sequence")
    return None


@dataclass
class ProbeModel:
    """A built model, its probe input and the sizes it accepts."""

    name: str
    module: nn.Module
    built_with: str  # e.g. "ViT(num_classes=10), as in train.py:42"
    spec: InputSpec | None = None
    square: int | None = None  # set when the model only accepts one square size
    causal: bool | str = False  # true, or "strict" (see coupling.causal_leak)
    note: str = ""  # what was assumed, for the evidence
    inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    second_sizes: tuple[int, ...] | None = None  # the second probe's free sizes, when its own are rejected
    shapes_only: str = ""  # why it was built on the meta device (no numbers: only shape checks run)

    def probe_input(self, probe: int = 0, seed: int = 0) -> torch.Tensor:
        if probe not in self.inputs:
            generator = torch.Generator().manual_seed(seed + probe)
            made = self.spec.make(self._sizes(probe), generator)
            self.inputs[probe] = made.to("meta") if self.shapes_only else made
        return self.inputs[probe]

    def describe_input(self, probe: int = 0) -> str:
        square = " (square: it rejects other sizes)" if self.square else ""
        traced = f" ({self.spec.origin})" if self.spec.origin.startswith("from the first parameter") else ""
        return self.spec.describe(self._sizes(probe)) + square + traced

    def _sizes(self, probe: int) -> list[int]:
        return self.spec.sizes(probe, self.square, self.second_sizes if probe == 1 else None)


def _arguments_text(args: list, kwargs: dict) -> str:
    text = [*map(_argument_text, args), *(f"{k}={_argument_text(v)}" for k, v in kwargs.items())]
    return ", ".join(text)


def _argument_text(value: Any) -> str:
    return value[NAME_ARGUMENT] if _is_name(value) else repr(value)


def _is_name(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == [NAME_ARGUMENT]


def _with_names_resolved(maker: Callable, args: list, kwargs: dict) -> tuple[list, dict] | None:
    """The call's arguments, its names (`BasicBlock`) looked up in the module that defines `maker`;
    None when one is not found there (a local variable of the calling function) or is a stand-in for
    a package that is not installed (`vocab_size = len(vocab)`, a torchtext vocabulary: the call says
    nothing about the model then)."""
    module = sys.modules.get(getattr(maker, "__module__", ""))
    namespace = vars(module) if module is not None else {}
    names = [value[NAME_ARGUMENT] for value in [*args, *kwargs.values()] if _is_name(value)]
    if any(name not in namespace or is_stand_in(namespace[name]) for name in names):
        return None

    def resolve(value: Any) -> Any:
        return namespace[value[NAME_ARGUMENT]] if _is_name(value) else value

    return [resolve(value) for value in args], {key: resolve(value) for key, value in kwargs.items()}


def resolve_callable(target: str) -> Callable:
    """`pkg.module:make_model` (or `pkg.module:Outer.make`), imported; BuildError saying which part is missing.

    The module is imported by the caller's importer: with safe loading on, a
    project module runs its definitions only.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise BuildError(f"{target!r} is not of the form pkg.module:ClassOrFactory")
    try:
        found = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not (module_name == error.name or module_name.startswith(error.name + ".")):
            raise  # the module exists; something it imports is missing: the module's own failure
        raise BuildError(f"no module named {error.name!r} (from {target!r})") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise BuildError(f"{module_name} has no attribute {attribute!r} (from {target!r})")
        found = getattr(found, part)
    if isinstance(found, nn.Module):
        raise BuildError(f"{target} is a built {type(found).__name__}: name its class or a function that builds it")
    if not callable(found):
        kind = type(found).__name__
        raise BuildError(f"{target} is not a class or a function that builds a model (its type is {kind})")
    return found


def constructions(
    maker: Callable, configured: dict[str, Any], seen_calls: list[dict], entry: str
) -> list[tuple[list, dict, str]]:
    """(args, kwargs, description) to try, in order: config, the project's own calls, no arguments."""
    name = getattr(maker, "__name__", str(maker))
    options = []
    if "args" in configured or "kwargs" in configured:
        args, kwargs = list(configured.get("args", [])), dict(configured.get("kwargs", {}))
        options.append((args, kwargs, f"{name}({_arguments_text(args, kwargs)}) from [tool.nnlint.models.{entry}]"))
    for call in seen_calls:
        resolved = _with_names_resolved(maker, call["args"], call["kwargs"])
        if resolved is not None:
            described = f"{name}({_arguments_text(call['args'], call['kwargs'])}), as in {call['where']}"
            options.append((*resolved, described))
    options.append(([], {}, f"{name}()"))
    return options


def build(
    cls: Callable, configured: dict[str, Any], seen_calls: list[dict], seed: int, device: str | None = None
) -> tuple[nn.Module, str]:
    """The first construction that works; BuildError naming the config entry to add when none does.

    `cls` is the class (or function) the config entry is named after; a
    `factory` in the entry is called instead, with the entry's arguments only
    (the project's calls of the class say nothing about the factory's).
    `device="meta"` builds it without memory: parameters with shapes and no data.
    """
    entry = getattr(cls, "__name__", str(cls))
    maker = resolve_callable(configured["factory"]) if "factory" in configured else cls
    failures = []
    for args, kwargs, described in constructions(maker, configured, [] if maker is not cls else seen_calls, entry):
        torch.manual_seed(seed)
        try:
            with torch.device(device) if device else nullcontext():
                model = maker(*args, **kwargs)
        except TypeError as error:
            failures.append(f"{described}: {error}")
            continue
        if not isinstance(model, nn.Module):
            raise BuildError(f"{described} returned a {type(model).__name__}, not an nn.Module")
        return model, described
    needs = failures[-1].split(": ", 1)[-1] if failures else ""
    raise BuildError(
        f"{entry} cannot be built ({needs}): add [tool.nnlint.models.{entry}] with args = [...] / kwargs = {{...}}"
    )


def out_of_memory(error: BaseException) -> bool:
    """The allocator refused (the probe process's memory cap, or the machine's)."""
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and "allocate" in str(error) and "memory" in str(error)
    )


def shapes_only_reason(name: str, module: nn.Module, memory_mb: int | None) -> str:
    """Why a model built on the meta device gets shape checks only, with its size."""
    count = sum(parameter.numel() for parameter in module.parameters())
    gib = sum(parameter.numel() * parameter.element_size() for parameter in module.parameters()) / 2**30
    cap = f" over the probe's memory cap of {memory_mb} MiB" if memory_mb else " more than the probe process may allocate"
    return (
        f"{name} has {count:,} parameters ({gib:.1f} GiB),{cap}: only its shapes were checked, on the meta "
        f"device (raise `memory` in [tool.nnlint.confirm] or configure a smaller {name} in [tool.nnlint.models.{name}])"
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


def _accepts(probe_model: ProbeModel, probe: int, seed: int, watch: Watch) -> Exception | None:
    """None if the model's eval forward runs on the probe's input, else what it raised."""
    probe_model.inputs.pop(probe, None)
    try:
        with torch.no_grad(), watch(probe):
            probe_model.module(probe_model.probe_input(probe, seed))
    except MissingModuleUsed:  # it needs a package that is not installed: no size will do
        raise
    except Exception as error:  # the user's forward rejects these sizes, whatever its exception
        return error
    return None


def fit_input(probe_model: ProbeModel, seed: int, watch: Watch = lambda probe: nullcontext()) -> int:
    """Find probe sizes the model accepts: the asymmetric primes, else a square size (said in `note`);
    then sizes for the second probe: its own, else larger primes, else the first probe's with its batch.

    Each try runs inside `watch(probe)`: the last one of each probe is the eval forward on the sizes
    kept, which a check can observe instead of paying for its own.
    Returns the number of forwards it ran."""
    model, spec = probe_model.module, probe_model.spec
    model.eval()
    first_error = None
    has_free_spatial = sum(1 for dim in spec.dims if isinstance(dim, str) and dim != "B") > 0
    for tried, square in enumerate([None, *(_square_candidates(model) if has_free_spatial else [])], start=1):
        probe_model.square = square
        error = _accepts(probe_model, 0, seed, watch)
        if error is not None:
            first_error = first_error or error
            continue
        if square is not None:
            probe_model.note = (
                f"it rejects asymmetric sizes ({type(first_error).__name__}: {str(first_error)[:120]}), "
                f"so the probe is square {square}x{square}"
            )
        # A square probe gives every free dim its size: only the batch differs between the two.
        for second_sizes in (None,) if square else (None, LARGER_FREE_SIZES, PROBE_FREE_SIZES[0]):
            probe_model.second_sizes = second_sizes
            tried += 1
            if _accepts(probe_model, 1, seed, watch) is None:
                break
        return tried
    raise BuildError(
        f"its forward rejects the probe {spec.describe(spec.sizes(0))} ({type(first_error).__name__}: "
        f"{str(first_error)[:200]}): add input = \"...\" to [tool.nnlint.models.{probe_model.name}]"
    )
