"""The JSON report: a public contract (DESIGN.md), changed only together with `version`."""

from __future__ import annotations

import json

from nnlint.runner import RunResult

VERSION = 1


def render(result: RunResult, color: bool = False) -> str:
    document = {
        "version": VERSION,
        "findings": [finding.to_json() for finding in result.findings],
        "errors": [diagnostic.to_json() for diagnostic in result.diagnostics],
        "stats": {"files": result.files, "lines": result.lines, "seconds": round(result.seconds, 3)},
    }
    if result.confirm is not None:
        document["stats"]["confirm"] = result.confirm
    return json.dumps(document, indent=2, ensure_ascii=False)
