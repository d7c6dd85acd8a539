"""NN102 and NN103 findings from the per-sample gradient probes (child side, imports torch).

The probes themselves, and how they work, are in nnlint.confirm.coupling; the probe session runs them
once per model. This module reads their results against the static findings: a reduction over the
batch dim that mixes samples, a forward() that does, a model declared causal that looks ahead.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from nnlint.confirm.coupling import BatchCoupling
from nnlint.confirm.intercept import Site
from nnlint.confirm.protocol import RuntimeFinding

if TYPE_CHECKING:
    from nnlint.confirm.session import ModelRecord, ProbeSession

_CUMULATIVE = frozenset({"cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"})  # a scan reads a dim as time


# -- NN102 on a 2-d probe: is dim 0 the batch? ------------------------------------------------


def _batch_certain(spec) -> bool:
    """Whether dim B of the probe can only be the batch. A 2-d input inferred from a Linear or an
    Embedding may be a sequence that attention or an RNN reads unbatched (or time-major), so that
    dependence "across samples" is dependence across steps; a configured or conv/RNN input is not."""
    return spec.origin == "from config" or len(spec.dims) >= 3


def _features_2d(spec) -> bool:
    """An inferred float[B, F] input (a first Linear, or the first parameter the input meets): dim 0 is
    the batch or, for a model fed one unbatched sequence, time. `two_d_reading` decides which."""
    return spec.origin != "from config" and spec.dtype == "float" and spec.dims[:1] == ["B"] and len(spec.dims) == 2


_SEQUENCE_LAYERS = (nn.RNNBase, nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder,
                    nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)  # fmt: skip


def two_d_reading(module: nn.Module, coupling: BatchCoupling) -> tuple[bool, str]:
    """(batch?, why) for a float[B, F] probe whose rows depend on each other.

    Rows that mix are a bug of a (batch, features) model and the design of a model fed one (time,
    features) sequence. What the model does with dim 0 tells them apart: a sequence model reads it
    with a layer made for sequences (an RNN, attention), with a product of two tensors both computed
    from the input (q @ k^T: positions attending to each other) or with a scan (cumsum); a
    (batch, features) model that mixes rows does so only by a reduction over dim 0 (x.mean(0),
    softmax(dim=0)). Only the second reading is reported, at those reductions."""
    layers = [f"{name} ({type(layer).__name__})" for name, layer in module.named_modules() if isinstance(layer, _SEQUENCE_LAYERS)]
    if layers:
        return False, f"read as one (time, features) sequence: {layers[0]} reads dim 0 as time"
    if coupling.content_products:
        call, site = coupling.content_products[0]
        where = f" at line {site.line}" if site is not None else ""
        return False, f"read as one (time, features) sequence: `{call}` of two tensors from the input{where} lets rows attend to each other"
    scans = [r for r in coupling.reductions if r.over_batch and r.call in _CUMULATIVE]
    if scans:
        return False, f"read as one (time, features) sequence: {scans[0].describe()} at line {scans[0].site.line} scans dim 0"
    if not coupling.mixing_calls:
        return False, "rows mix through no reduction over dim 0 written in the model's code"
    return True, (
        "read as (batch, features): the rows mix only through reductions over dim 0, "
        "with no sequence layer, attention-like product or scan that would read dim 0 as time"
    )



# -- findings no static pattern saw ---------------------------------------------------------------


def forward_site(module: nn.Module) -> Site | None:
    """Where the model's forward is defined, for a finding that no single call explains."""
    forward = type(module).forward
    try:
        return Site(inspect.getsourcefile(forward), inspect.getsourcelines(forward)[1])
    except (OSError, TypeError):
        return None


def _judged_in_forward(module: nn.Module, judged: set[tuple[str, int]]) -> bool:
    """A static NN102 finding inside the model's forward (a wrong re-split) already names the cause."""
    forward = type(module).forward
    try:
        lines, start = inspect.getsourcelines(forward)
        path = inspect.getsourcefile(forward)
    except (OSError, TypeError):
        return False
    return any(where == path and start <= line < start + len(lines) for where, line in judged)


def _suspect_layers(module: nn.Module) -> str:
    """Layers that mix samples in eval by their settings: the likely cause when no call of the user's does."""
    suspects = [
        f"{name} ({type(layer).__name__}, track_running_stats=False: batch statistics in eval too)"
        for name, layer in module.named_modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and not layer.track_running_stats
    ] + [
        f"{name} ({type(layer).__name__}, batch_first=False: it reads dim 1 as the batch)"
        for name, layer in module.named_modules()
        if isinstance(layer, (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer))
        and not getattr(layer, "batch_first", False)
    ]  # fmt: skip
    return f"; suspects: {', '.join(suspects[:3])}" if suspects else ""


def per_sample_findings(session: ProbeSession, record: ModelRecord, static_findings: list[dict]) -> list[RuntimeFinding]:
    """On one model: NN102 at each reduction over the batch that the outputs depend on (else at
    forward()), when the probe's batch dim is certain; NN103 at forward() of a model declared causal
    that looks ahead."""
    judged = {(f["path"], f["line"]) for f in static_findings if f["code"] == "NN102"}
    found: dict[tuple[str, Site], RuntimeFinding] = {}

    def add(code: str, site: Site | None, message: str, evidence: str, data: dict) -> None:
        # A site in another file is that file's job's finding.
        if site is not None and session.owns(site.path) and (code, site) not in found:
            found[code, site] = RuntimeFinding(code, site.path, site.line, message, evidence, data)

    # On a 2-d probe, dim 0 may not be the batch at all (one unbatched sequence that attention reads
    # over dim 0): what the model does with dim 0 decides (`two_d_reading`).
    spec, reading = record.probe.spec, ""
    two_d = not _batch_certain(spec) and _features_2d(spec)
    coupling = session.batch_coupling(record) if _batch_certain(spec) or two_d else None
    if coupling is not None and coupling.mixes and two_d:
        batch, why = two_d_reading(record.probe.module, coupling)
        coupling, reading = (coupling if batch else None), f" ({spec.describe(spec.sizes(0))} {why})"
    if coupling is not None and coupling.mixes:
        for call in coupling.mixing_calls:
            if (call.site.path, call.site.line) not in judged:
                evidence = f"{coupling.evidence()}, through {call.describe()} at this line{reading}"
                message = f"`{call.call}` over the batch dim mixes samples"
                add("NN102", call.site, message, evidence, coupling.data())
        if not coupling.mixing_calls and not _judged_in_forward(record.probe.module, judged):
            evidence = coupling.evidence() + _suspect_layers(record.probe.module)
            message = "forward() mixes samples of the batch"
            add("NN102", forward_site(record.probe.module), message, evidence, coupling.data())
    if record.probe.causal:
        leak = session.causal_leak(record)
        if leak.leaks:
            add("NN103", forward_site(record.probe.module), leak.message(), leak.evidence(), leak.data())
    return [found[key] for key in sorted(found, key=lambda key: (Path(key[1].path).name, key[1].line, key[0]))]
