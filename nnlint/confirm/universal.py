"""The probes run on every model the confirm pass can build, found or not by a static rule (child side).

Reshape decoding, whose reorders are NN101 findings at the user's line even
where no static pattern matched (sizes computed at run time, reshapes spread
over helpers); the per-sample gradient probes (nnlint.confirm.per_sample):
batch mixing (NN102) and, for models declared causal, look-ahead (NN103).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from nnlint.confirm.intercept import LayoutCall, Site
from nnlint.confirm.per_sample import per_sample_findings
from nnlint.confirm.protocol import RuntimeFinding
from nnlint.confirm.reshape import REORDER, combine, decode
from nnlint.confirm.session import ModelRecord, ProbeSession

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
        f"which a {call.call} cannot do: permute({', '.join(map(str, permutation))}) first"
    )
    data = {
        "model": record.name, "call": call.call, "input_shape": list(call.input_shape),
        "output_shape": list(call.output_shape), "permutation": list(permutation),
    }  # fmt: skip
    return sentence, data


def runtime_findings(session: ProbeSession, static_findings: list[dict]) -> list[RuntimeFinding]:
    reported = {(f["path"], f["line"]) for f in static_findings if f["code"] == "NN101"}
    found: dict[Site, RuntimeFinding] = {}
    for record in session.models:
        for site, calls in reshapes_by_site(session, record).items():
            # A reshape in another file is that file's job's finding.
            if not session.owns(site.path) or site in found or (site.path, site.line) in reported:
                continue
            kind, example = site_verdict(calls)
            if kind == REORDER:
                evidence, data = describe_reorder(record, example)
                message = f"{example.call}() reorders dims instead of merging or splitting them in order"
                found[site] = RuntimeFinding("NN101", site.path, site.line, message, evidence, data)
    reorders = [found[site] for site in sorted(found, key=lambda s: (Path(s.path).name, s.line))]
    return reorders + per_sample_findings(session, static_findings)
