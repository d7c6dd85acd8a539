"""The probes run on every model the confirm pass can build, found or not by a static rule (child side).

Eval randomness (NN301: in eval(), a dropout call that still draws), stuck
constant inits (NN201), reshape decoding (NN101: reorders at the user's line
even where no static pattern matched, e.g. sizes computed at run time,
reshapes spread over helpers), and the per-sample gradient probes
(nnlint.confirm.per_sample): batch mixing (NN102) and, for models declared
causal, look-ahead (NN103). Each probe runs on its own: one the model fails
is reported as failed, and the others still report. A line a static finding
points at is that finding's to judge, not reported again.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from nnlint.confirm.eval_randomness import eval_randomness
from nnlint.confirm.intercept import LayoutCall, Site
from nnlint.confirm.per_sample import per_sample_findings
from nnlint.confirm.protocol import RuntimeFinding
from nnlint.confirm.reshape import REORDER, combine, decode
from nnlint.confirm.session import ModelRecord, ProbeSession
from nnlint.confirm.stuck_init import stuck_findings

_DECODED = ("view", "reshape")  # flatten/unflatten merge and split in order by construction


def reshapes_by_site(session: ProbeSession, record: ModelRecord) -> dict[Site, list[LayoutCall]]:
    """Every view/reshape call of both probes, by the user's line."""
    calls: dict[Site, list[LayoutCall]] = defaultdict(list)
    for probe in (0, 1):
        for call in session.layout_trace(record, probe):
            if call.call in _DECODED:
                calls[call.site].append(call)
    return calls


def site_verdict(calls: list[LayoutCall]) -> tuple[str, LayoutCall | None]:
    """(fine/reorder/ambiguous, the first call decoded as a reorder) for one line's reshapes."""
    decodings = [(call, decode(call.input_shape, call.output_shape)) for call in calls]
    kind = combine([decoding.kind for _, decoding in decodings])
    example = next((call for call, decoding in decodings if decoding.kind == REORDER), None)
    return kind, example


def describe_reorder(record: ModelRecord, call: LayoutCall) -> tuple[str, dict]:
    decoding = decode(call.input_shape, call.output_shape)
    permutation = decoding.permutation(len(call.input_shape))
    sentence = (
        f"on {record.name}'s probe, {call.call}() turns {call.input_shape} into {call.output_shape}: "
        f"{decoding.explain(call.input_shape, call.output_shape)}; that reorders dims, "
        f"which a {call.call} cannot do: {decoding.fix(call.call, len(call.input_shape))}"
    )
    data = {
        "model": record.name, "call": call.call, "input_shape": list(call.input_shape),
        "output_shape": list(call.output_shape), "permutation": list(permutation),
    }  # fmt: skip
    if decoding.split:  # the input dims split first: `permutation` orders the split shape's dims
        data["split_shape"] = list(decoding.split)
    return sentence, data


def reorders(session: ProbeSession, record: ModelRecord) -> list[RuntimeFinding]:
    """NN101 at each line of the session's files whose reshapes reorder dims on the record's probes."""
    found = []
    for site, calls in reshapes_by_site(session, record).items():
        kind, example = site_verdict(calls)
        if kind == REORDER and session.owns(site.path):  # a reshape in another file is that file's job's finding
            evidence, data = describe_reorder(record, example)
            message = f"{example.call}() reorders dims instead of merging or splitting them in order"
            found.append(RuntimeFinding("NN101", site.path, site.line, message, evidence, data))
    return found


# By model, in this order: eval randomness copies the model, which a forward with gradients on can
# make impossible (it leaves graph tensors in some models' caches: timm's LeViT attention biases).
MODEL_PROBES = {
    "eval randomness": ("NN301", eval_randomness),
    "stuck constant init": ("NN201", stuck_findings),
    "reshape decoding": ("NN101", reorders),
}


def runtime_findings(session: ProbeSession, static_findings: list[dict]) -> tuple[list[RuntimeFinding], list[str]]:
    """What the probes found on the session's models, one finding per line, and the probes that failed."""
    found: list[RuntimeFinding] = []
    failed: list[str] = []

    def run(name: str, code: str, probe, record: ModelRecord, *args) -> None:
        with session.charging(code):
            try:
                found.extend(probe(session, record, *args))
            except Exception as error:  # the model fails under this probe (Inception's train-mode aux head
                # on small inputs): the other probes still report
                reason = f"the {name} probe raised {type(error).__name__} on {record.name}: {str(error)[:200]}"
                record.failed_probes.append(name)
                if reason not in failed:
                    failed.append(reason)

    for record in session.models:
        session.on_model(record.name)
        if record.probe.shapes_only:  # built on the meta device: no numbers for the other probes
            run("reshape decoding", "NN101", reorders, record)
            failed.append(record.probe.shapes_only)
            continue
        for name, (code, probe) in MODEL_PROBES.items():
            run(name, code, probe, record)
    for record in session.models:
        if not record.probe.shapes_only:
            run("per-sample gradient", "NN102", per_sample_findings, record, static_findings)
    failed.extend(need for need in session.missing.values() if need not in failed)  # NN902: a package not installed
    judged = {(f["code"], f["path"], f["line"]) for f in static_findings}
    unique = {(f.code, f.path, f.line): f for f in reversed(found) if (f.code, f.path, f.line) not in judged}
    return sorted(unique.values(), key=lambda f: (Path(f.path).name, f.line, f.code)), failed
