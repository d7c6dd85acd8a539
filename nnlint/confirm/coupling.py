"""The per-sample gradient probes (child side, imports torch): how a model's outputs depend on other
samples of the batch (NN102) and on later steps (NN103). The probe session (nnlint.confirm.session) runs
each once per model and keeps the result; nnlint.confirm.per_sample turns the results into findings.


NN102. In eval mode, output i must not depend on input j != i. Back-propagating
each output alone would cost B passes. Instead each sample gets a distinct
half-size subset of n passes (a Sperner family: C(n, n//2) >= B, so n = 4 for
B = 5, never more than 2*ceil(log2 B)); pass p back-propagates the outputs
whose subset holds p and reads the gradient on the samples whose subset lacks
it. Any i != j has some p in i's subset and not in j's, so the n passes, all
on one forward, see every dependence between two samples. One more backward,
from a single output the passes point at, names the worst pair. Outputs are
weighted randomly (a plain sum can cancel: softmax outputs sum to 1). Token
inputs have no gradient: it is taken at the embedding output instead.

NN103. Output t must not depend on input s > t (`causal = true`), nor on
s = t (`causal = "strict"`: the output at t predicts input t itself).
Grouping steps like samples fails: a pass that back-propagates several steps
sees, at input s, the legitimate dependence of the later outputs on it. The
batch dimension, which the NN102 probe has just shown keeps samples apart,
carries the thresholds instead: row m holds a copy of one sample and
back-propagates its outputs at steps <= m, so any gradient on its inputs at
steps > m (>= m when strict) is a leak. One forward and one backward test
every threshold, and the first row that sees step s names the earliest
output that depends on it. Strict needs a row per step, T; it gets T+1 (the
last tests nothing) so that no output's batch dim can be taken for its time
dim of the same size.

Gradients across samples (or from the future) are exactly zero in a correct
model; a leak counts when it exceeds LEAK_TOLERANCE of the largest legitimate
gradient, so that rounding dust (an additive mask of -100 lets exp(-100)
through) is not a finding.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from nnlint.confirm.intercept import CallWatcher, Site, call_name, tensors_in
from nnlint.confirm.models import ProbeModel


class ProbedModel(Protocol):
    """A built model as the probes see it (nnlint.confirm.session.ModelRecord)."""

    @property
    def probe(self) -> ProbeModel: ...

    @property
    def name(self) -> str: ...


class ProbeRun(Protocol):
    """What a probe needs of the file's probe session (nnlint.confirm.session.ProbeSession): the user's
    files, whose calls it watches; the seed; and the tally of forward and backward passes it spends."""

    user_files: set[str]
    seed: int

    def count_pass(self, record: Any, kind: str) -> None: ...


LEAK_TOLERANCE = 1e-6
# A gradient map in the evidence has at most this many rows and columns (larger ones are max-pooled in blocks).
MAP_LIMIT = 64
_EMBEDDINGS = frozenset({"embedding", "embedding_bag"})
# Calls that combine values along a dim (their `dim` argument, or every dim when none is given).
_REDUCTIONS = frozenset({
    "sum", "mean", "nansum", "nanmean", "prod", "std", "var", "std_mean", "var_mean", "amax", "amin", "max", "min",
    "median", "logsumexp", "norm", "vector_norm", "softmax", "log_softmax", "normalize", "cumsum", "cumprod",
    "logcumsumexp", "layer_norm",
})  # fmt: skip
_DIM_REQUIRED = frozenset({"cumsum", "cumprod", "logcumsumexp", "logsumexp"})
_DIM_AFTER_P = frozenset({"norm", "vector_norm", "normalize"})  # f(input, p, dim)
# Products of two tensors: when both come from the input, one position attends to the others (q @ k^T).
_PRODUCTS = frozenset({"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "einsum", "baddbmm", "scaled_dot_product_attention"})
_NO_DIM = object()


# -- what the probe forward saw ---------------------------------------------------------------


@dataclass
class Reduction:
    """A reduction the user's code made during the probe forward."""

    site: Site
    call: str
    input_shape: tuple[int, ...]
    dims: tuple[int, ...]
    over_batch: bool  # reduces the batch dim of a tensor computed from the probe input
    results: list[torch.Tensor] = field(default_factory=list, repr=False)  # dropped after the passes
    reached: bool = False  # the checked outputs have a gradient on its result

    def describe(self) -> str:
        dims = "every dim" if len(self.dims) == len(self.input_shape) else f"dim {', '.join(map(str, self.dims))}"
        return f"`{self.call}` over {dims} of a {tuple(self.input_shape)} tensor"


def reduced_dims(name: str, args: tuple, kwargs: dict) -> tuple[int, ...] | None:
    """The dims `name(*args, **kwargs)` reduces (all of them for a full reduction); None: not a reduction."""
    tensor = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if tensor is None or tensor.dim() == 0:
        return None
    ndim = tensor.dim()
    if name == "layer_norm":
        shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
        count = len(shape) if isinstance(shape, (tuple, list, torch.Size)) else 1
        return tuple(range(ndim - count, ndim))
    position = 2 if name in _DIM_AFTER_P else 1
    dim = kwargs.get("dim", args[position] if len(args) > position else _NO_DIM)
    if dim is _NO_DIM or dim is None:
        if name in _DIM_REQUIRED:
            return None
        if name in ("softmax", "log_softmax"):
            dim = 0 if ndim in (1, 3) else 1  # torch's legacy implicit dim
        elif name == "normalize":
            dim = 1
        else:
            return tuple(range(ndim))
    if isinstance(dim, torch.Tensor):
        return None  # max(x, other): elementwise
    if isinstance(dim, bool):
        return tuple(range(ndim))  # std(x, unbiased)
    dims = (dim,) if isinstance(dim, int) else tuple(dim) if isinstance(dim, (tuple, list)) else None
    if dims is None or not all(isinstance(d, int) for d in dims):
        return None  # named dims
    return tuple(sorted({d % ndim for d in dims})) if dims else tuple(range(ndim))


def unique_dim(
    shape: tuple[int, ...], size: int, preferred: int | None = None, exclude: int | None = None
) -> int | None:
    """The dim of `shape` that has `size`: `preferred` if it does, else the only one that does."""
    if preferred is not None and preferred < len(shape) and preferred != exclude and shape[preferred] == size:
        return preferred
    matches = [d for d, s in enumerate(shape) if s == size and d != exclude]
    return matches[0] if len(matches) == 1 else None


class ProbeTracer(CallWatcher):
    """Follows which tensors are computed from the probe input through every torch call, records the
    reductions written in the user's code, and turns embedding outputs into gradient leaves."""

    def __init__(self, user_files, probe_input: torch.Tensor, batch_size: int):
        super().__init__(user_files, on_call=None, written_by_user=True)
        self.batch_size = batch_size
        self._carrying: dict[int, torch.Tensor] = {}  # id -> tensor, kept alive so that ids stay unique
        self._carry(probe_input)
        self.reductions: list[Reduction] = []
        self.embedding_outputs: list[torch.Tensor] = []
        self.sites_run: set[Site] = set()
        self.content_products: list[tuple[str, Site | None]] = []  # products of two tensors from the input

    def _carry(self, value: Any) -> None:
        for tensor in tensors_in(value):
            self._carrying[id(tensor)] = tensor

    def _carries(self, value: Any) -> bool:
        return any(id(tensor) in self._carrying for tensor in tensors_in(value))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = call_name(func)
        site = self._user_site()
        if site is not None:
            self.sites_run.add(site)
            if name in _REDUCTIONS:
                self._record_reduction(name, args, kwargs, result, site)
        if self._carries([list(args), kwargs]):
            if name in _PRODUCTS and sum(id(t) in self._carrying for t in tensors_in([list(args), kwargs])) >= 2:
                self.content_products.append((name, site))
            if name in _EMBEDDINGS and isinstance(result, torch.Tensor) and result.is_floating_point():
                # The gradient is read at this leaf; the model goes on with a copy it may modify in place.
                leaf = result.detach().requires_grad_(True)
                self.embedding_outputs.append(leaf)
                result = leaf.clone()
            self._carry(result)
            if name.endswith("_") or name == "__setitem__":
                self._carry(args[0])  # written in place
        return result

    def _record_reduction(self, name: str, args: tuple, kwargs: dict, result: Any, site: Site) -> None:
        dims = reduced_dims(name, args, kwargs)
        if dims is None:
            return
        tensor = args[0]
        # Only a dim that is unmistakably the batch counts: a 5x5 attention map is not evidence.
        batch = unique_dim(tuple(tensor.shape), self.batch_size)
        over_batch = id(tensor) in self._carrying and batch is not None and batch in dims
        results = [t for t in tensors_in(result) if t.requires_grad] if over_batch else []
        self.reductions.append(Reduction(site, name, tuple(tensor.shape), dims, over_batch, results))


# -- NN102: does any sample depend on another? ------------------------------------------------


def sample_groups(batch: int) -> list[frozenset[int]]:
    """The samples each pass back-propagates: sample i is in pass p when p is in i's subset."""
    if batch < 2:
        return []
    n = next(n for n in itertools.count(2) if math.comb(n, n // 2) >= batch)
    subsets = list(itertools.combinations(range(n), n // 2))[:batch]
    return [frozenset(i for i, subset in enumerate(subsets) if p in subset) for p in range(n)]


@dataclass
class BatchCoupling:
    """The NN102 probe's result for one model; `reason` set when it could not run."""

    model: str
    input: str = ""
    reason: str = ""
    mixes: bool = False
    pair: tuple[int, int] | None = None  # (output i, input j): the worst leak found
    leak: float = 0.0  # max |d(weighted output i) / d input j|
    own: float = 0.0  # the same from output i to its own input, for scale
    gradient_at: str = "input"
    reductions: list[Reduction] = field(default_factory=list)
    sites_run: set[Site] = field(default_factory=set)
    passes: int = 0
    content_products: list[tuple[str, Site | None]] = field(default_factory=list)  # see ProbeTracer
    # The passes' max |grad| per input sample: each grouped pass (with its outputs), and output pair[0] alone.
    grouped: list[tuple[frozenset[int], list[float]]] = field(default_factory=list)
    pinned: list[float] = field(default_factory=list)

    @property
    def mixing_calls(self) -> list[Reduction]:
        return [r for r in self.reductions if r.over_batch and r.reached]

    def evidence(self) -> str:
        i, j = self.pair
        ratio = f", {self.leak / self.own:.2g}x its gradient on sample {i}" if self.own else ""
        at = "" if self.gradient_at == "input" else f" {self.gradient_at}"
        return (
            f"in eval(), {self.model}'s output for sample {i} of {self.input} depends on sample {j}{at}: "
            f"max |grad| {self.leak:.3g}{ratio} ({self.passes - 1} grouped backward passes, one more for the pair)"
        )

    def data(self) -> dict[str, Any]:
        return {
            "model": self.model, "input": self.input, "output": self.pair[0], "leaking_input": self.pair[1],
            "max_gradient": self.leak, "own_gradient": self.own, "backward_passes": self.passes,
            "gradient_map": self.gradient_map(),
        }  # fmt: skip

    def gradient_map(self) -> dict[str, Any]:
        """Output sample i (row) by input sample j (column), read off the passes already run (no pass of its
        own): row pair[0], back-propagated alone, is exact; any other cell is the smallest gradient on input j
        of a grouped pass that back-propagated output i, so 0 means output i takes nothing from sample j."""
        batch = len(self.pinned)

        def decoded(i: int, j: int) -> float:  # over the passes of output i's that lack input j (all, if j is i)
            return min(m[j] for samples, m in self.grouped if i in samples and (i == j or j not in samples))

        rows = [self.pinned if i == self.pair[0] else [decoded(i, j) for j in range(batch)] for i in range(batch)]
        values = compact_map(torch.tensor(rows, dtype=torch.float64))
        return {
            "kind": "samples", "rows": "output sample", "columns": "input sample", **values,
            "exact_rows": [self.pair[0]], "grouped_passes": len(self.grouped),
        }  # fmt: skip


@dataclass
class _Probe:
    """One probe forward with grad: the gradient leaves, the outputs to weight and what the tracer saw."""

    inputs: list[tuple[torch.Tensor, list[int]]]  # leaf, (batch dim[, time dim])
    outputs: list[tuple[torch.Tensor, list[int], torch.Tensor]]  # output, (batch dim[, time dim]), random weights
    tracer: ProbeTracer
    gradient_at: str


def _probe(
    session: ProbeRun, record: ProbedModel, model_input: torch.Tensor, dims: dict[str, tuple[int, int]]
) -> _Probe | str:
    """Run one eval forward with grad; `dims` maps "batch" (and "time") to (input dim, size).

    Returns the probe, or why it cannot be read."""
    spec = record.probe.spec
    floating = model_input.is_floating_point()
    leaf = model_input.clone().requires_grad_(True) if floating else model_input
    fed = leaf.clone() if floating else leaf
    (batch_dim, batch), time = dims["batch"], dims.get("time")
    tracer = ProbeTracer(session.user_files, fed, batch)
    torch.manual_seed(session.seed)
    record.probe.module.eval()
    with torch.enable_grad(), tracer:
        output = record.probe.module(fed)
    session.count_pass(record, "forward")

    def dims_of(tensor: torch.Tensor) -> list[int] | None:
        found = [unique_dim(tuple(tensor.shape), batch, batch_dim)]
        if time is not None:
            found.append(unique_dim(tuple(tensor.shape), time[1], time[0], exclude=found[0]))
        return None if None in found else found

    candidates = [leaf] if floating else tracer.embedding_outputs
    inputs = [(t, d) for t in candidates if (d := dims_of(t)) is not None]
    if not inputs:
        return "its input has no batch dim" if floating else "its token input reaches no embedding that keeps the batch dim"
    generator = torch.Generator().manual_seed(session.seed)
    outputs = [
        (t, d, torch.randn(t.shape, generator=generator, dtype=t.dtype))
        for t in tensors_in(output)
        if t.is_floating_point() and t.requires_grad and (d := dims_of(t)) is not None
    ]
    wanted = "the batch dim" + (" and the time dim" if time else "")
    if not outputs:
        return f"no output of {record.name} has {wanted} ({spec.describe(list(model_input.shape))}) and a gradient"
    if not all(bool(torch.isfinite(t).all()) for t, _, _ in outputs):
        return f"{record.name}'s output on the probe is not finite"
    return _Probe(inputs, outputs, tracer, "input" if floating else "(gradient at the embedding output)")


def _backward(
    session: ProbeRun, record: ProbedModel, probe: _Probe, masks: list[torch.Tensor], extra: list[torch.Tensor]
):
    """One backward of the outputs weighted by `masks`: the input gradients and those of `extra`."""
    loss = sum((t * weights * mask).sum() for (t, _, weights), mask in zip(probe.outputs, masks))
    leaves = [t for t, _ in probe.inputs]
    grads = torch.autograd.grad(loss, [*leaves, *extra], retain_graph=True, allow_unused=True)
    session.count_pass(record, "backward")
    return grads[: len(leaves)], grads[len(leaves) :]


def _mask_over(tensor: torch.Tensor, dims: list[int], values: torch.Tensor) -> torch.Tensor:
    """`values` (indexed by the tensor's batch[, time] dims) shaped to broadcast against `tensor`."""
    shape = [1] * tensor.dim()
    for dim, size in zip(dims, values.shape):
        shape[dim] = size
    order = sorted(range(len(dims)), key=lambda k: dims[k])
    return values.permute(order).reshape(shape).to(tensor.dtype)


def _magnitudes(grads, inputs, sizes: tuple[int, ...]) -> torch.Tensor:
    """max |gradient| per sample (per sample and step for two dims), over every input leaf."""
    total = torch.zeros(sizes, dtype=torch.float64)
    for grad, (leaf, dims) in zip(grads, inputs):
        if grad is not None:
            moved = grad.detach().abs().double().movedim(dims, list(range(len(dims))))
            total = torch.maximum(total, moved.reshape(*sizes, -1).amax(-1))
    return total


def batch_coupling(session: ProbeRun, record: ProbedModel) -> BatchCoupling:
    """NN102's probe: the grouped passes, then the one that names the worst pair."""
    probe_model, spec = record.probe, record.probe.spec
    coupling = BatchCoupling(record.name, probe_model.describe_input())
    if "B" not in spec.dims:
        coupling.reason = f"its input {spec.describe(spec.sizes(0))} has no batch dim B"
        return coupling
    batch_dim = spec.batch_dim
    batch = spec.sizes(0, probe_model.square)[batch_dim]
    try:
        probe = _probe(session, record, probe_model.probe_input(0, session.seed), {"batch": (batch_dim, batch)})
    except Exception as error:  # the user's forward failed under grad: unverifiable, with why
        probe = f"the probe forward failed: {type(error).__name__}: {error}"
    if isinstance(probe, str):
        coupling.reason = probe
        return coupling
    coupling.reductions, coupling.sites_run = probe.tracer.reductions, probe.tracer.sites_run
    coupling.content_products = probe.tracer.content_products
    coupling.gradient_at = probe.gradient_at
    watched = [(r, t) for r in coupling.reductions for t in r.results]
    groups = sample_groups(batch)

    def backward(samples: frozenset[int]) -> torch.Tensor:
        chosen = torch.zeros(batch)
        chosen[list(samples)] = 1
        masks = [_mask_over(t, dims, chosen) for t, dims, _ in probe.outputs]
        grads, watched_grads = _backward(session, record, probe, masks, [t for _, t in watched])
        for (reduction, _), grad in zip(watched, watched_grads):
            reduction.reached |= grad is not None and bool(grad.any())
        coupling.passes += 1
        return _magnitudes(grads, probe.inputs, (batch,))

    per_pass = [(samples, backward(samples)) for samples in groups]
    coupling.grouped = [(samples, m.tolist()) for samples, m in per_pass]
    own = max(float(m[i]) for samples, m in per_pass for i in samples)
    leaks = [(float(m[j]), samples, j) for samples, m in per_pass for j in range(batch) if j not in samples]
    for reduction in coupling.reductions:
        reduction.results = []
    if not math.isfinite(own) or any(not math.isfinite(leak) for leak, _, _ in leaks):
        coupling.reason = "the gradients on the probe are not finite"
        return coupling
    if own == 0:
        coupling.reason = f"{record.name}'s outputs have no gradient on its input"
        return coupling
    tolerance = LEAK_TOLERANCE * own
    worst, samples, j = max(leaks, key=lambda leak: leak[0])
    if worst <= tolerance:
        return coupling
    # The outputs of the worst pass that no silent pass rules out as depending on input j.
    silent = [s for leak, s, k in leaks if k == j and leak <= tolerance]
    candidates = [i for i in sorted(samples) if not any(i in s for s in silent)] or sorted(samples)
    pinned = backward(frozenset(candidates[:1]))
    i = candidates[0]
    j = max((k for k in range(batch) if k != i), key=lambda k: float(pinned[k]))
    coupling.mixes, coupling.pair = True, (i, j)
    coupling.leak, coupling.own = float(pinned[j]), float(pinned[i])
    coupling.pinned = pinned.tolist()
    return coupling


# -- NN103: does an output depend on a later input? --------------------------------------------


@dataclass
class CausalLeak:
    """The NN103 probe's result for one model declared causal; `reason` set when it could not run."""

    model: str
    strict: bool = False  # causal = "strict": output t may not see input t either
    input: str = ""
    reason: str = ""
    leaks: bool = False
    pair: tuple[int, int] | None = None  # (output step t, input step s >= t)
    leak: float = 0.0
    allowed: float = 0.0  # the largest gradient from an output to an input it may see
    leaking_steps: int = 0  # input steps that some output which must not see them depends on
    checked_steps: int = 0  # input steps that some output must not see: all but step 0 unless strict
    rows: int = 0
    by_row_and_step: torch.Tensor | None = field(default=None, repr=False)  # |grad| on input step s of row m

    @property
    def setting(self) -> str:
        if self.strict:
            return 'causal = "strict": output t may see inputs before t only'
        return "causal = true: output t may see inputs up to t"

    def message(self) -> str:
        t, s = self.pair
        declared = 'declared causal = "strict"' if self.strict else "declared causal"
        seen = "its output at a step sees that step's input" if t == s else "its forward() looks ahead"
        return f"{self.model} is {declared}, but {seen}"

    def evidence(self) -> str:
        t, s = self.pair
        seen = f"sees step {s} itself" if t == s else f"depends on its input at step {s}"
        return (
            f"in eval(), {self.model}'s output at step {t} {seen} ({self.setting}); "
            f"max |grad| {self.leak:.3g}, {self.leak / self.allowed:.2g}x the largest allowed gradient; "
            f"{self.leaking_steps} of {self.checked_steps} input steps reach an output that must not see them "
            f"(one forward of {self.rows} copies of a sample, one backward)"
        )

    def data(self) -> dict[str, Any]:
        return {
            "model": self.model, "input": self.input, "causal": "strict" if self.strict else True,
            "output_step": self.pair[0], "input_step": self.pair[1], "max_gradient": self.leak,
            "allowed_gradient": self.allowed, "leaking_steps": self.leaking_steps,
            "gradient_map": {
                "kind": "steps", "rows": "outputs at steps up to", "columns": "input step",
                **compact_map(self.by_row_and_step), "first_hidden": 0 if self.strict else 1,
            },
        }  # fmt: skip


def compact_map(matrix: torch.Tensor) -> dict[str, Any]:
    """A gradient map as JSON evidence: 3 significant digits, and at most MAP_LIMIT rows and columns
    (`block`: each cell the max over block x block cells of the probe's)."""
    block = max(1, math.ceil(max(matrix.shape) / MAP_LIMIT))
    if block > 1:
        matrix = torch.nn.functional.max_pool2d(matrix[None].double(), block, ceil_mode=True)[0]
    return {"values": [[float(f"{value:.3g}") for value in row] for row in matrix.tolist()], "block": block}


def time_dim(spec) -> int | None:
    """The input dim that is time: the one named T, else the only free dim besides the batch."""
    if "T" in spec.dims:
        return spec.dims.index("T")
    free = [d for d, dim in enumerate(spec.dims) if isinstance(dim, str) and dim != "B"]
    return free[0] if len(free) == 1 else None


def causal_leak(session: ProbeRun, record: ProbedModel, coupling: BatchCoupling) -> CausalLeak:
    """NN103's probe: row m back-propagates its outputs at steps <= m; gradient at a later step leaks
    (at step m too when strict). `coupling` is the model's NN102 probe, which says whether rows are
    independent."""
    probe_model, spec = record.probe, record.probe.spec
    result = CausalLeak(record.name, strict=probe_model.causal == "strict")
    step_dim = time_dim(spec)
    if coupling.reason or coupling.mixes:
        mixing = "its samples depend on each other (NN102), so one row per step cannot be probed"
        result.reason = coupling.reason or mixing
        return result
    if step_dim is None:
        result.reason = f'its time dim is not known: name it T in input = "..." of [tool.nnlint.models.{record.name}]'
        return result
    sizes = spec.sizes(0, probe_model.square)
    steps, batch_dim = sizes[step_dim], spec.batch_dim
    first_hidden = 0 if result.strict else 1  # row m must not see input m + first_hidden and after
    rows = steps + 1 if result.strict else steps - 1  # never `steps`: see the module docstring
    if rows < 1:
        return result
    sample = probe_model.probe_input(0, session.seed).narrow(batch_dim, 0, 1)
    model_input = sample.expand(*[rows if d == batch_dim else -1 for d in range(sample.dim())]).contiguous()
    result.input, result.rows = spec.describe(list(model_input.shape)), rows
    try:
        probe = _probe(session, record, model_input, {"batch": (batch_dim, rows), "time": (step_dim, steps)})
        if isinstance(probe, str):
            result.reason = probe
            return result
        up_to_row = torch.tril(torch.ones(rows, steps))  # row m: outputs at steps <= m
        masks = [_mask_over(t, dims, up_to_row) for t, dims, _ in probe.outputs]
        grads, _ = _backward(session, record, probe, masks, [])
    except Exception as error:  # the user's forward failed under grad: unverifiable, with why
        result.reason = f"the probe failed: {type(error).__name__}: {error}"
        return result
    by_row_and_step = result.by_row_and_step = _magnitudes(grads, probe.inputs, (rows, steps))
    hidden = torch.triu(torch.ones(rows, steps, dtype=torch.bool), diagonal=first_hidden)
    result.checked_steps = int(hidden.any(0).sum())
    result.allowed = float(by_row_and_step[~hidden].max())
    if not math.isfinite(result.allowed) or result.allowed == 0:
        result.reason = f"{record.name}'s outputs have no finite gradient on the inputs they may see"
        return result
    leaking = (by_row_and_step > LEAK_TOLERANCE * result.allowed) & hidden
    if not bool(leaking.any()):
        return result
    per_step = torch.where(leaking, by_row_and_step, torch.zeros(())).amax(0)
    s = int(per_step.argmax())
    t = int(leaking[:, s].nonzero()[0, 0])  # the first row that sees step s: its last output depends on s
    result.leaks, result.pair, result.leak = True, (t, s), float(per_step[s])
    result.leaking_steps = int(leaking.any(0).sum())
    return result
