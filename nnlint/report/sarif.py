"""SARIF 2.1.0, the format GitHub code scanning (and most CI dashboards) ingest."""

from __future__ import annotations

import json

from nnlint import __version__
from nnlint.rule import all_rules
from nnlint.finding import Finding
from nnlint.notebook import cell_prefix
from nnlint.runner import RunResult

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rule_descriptor(rule) -> dict:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.docs()},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
    }


def _location(path: str, region: dict) -> dict:
    return {"physicalLocation": {"artifactLocation": {"uri": path}, "region": region}}


def _result(f: Finding) -> dict:
    region = {"startLine": f.line, "startColumn": f.column, "endLine": f.end_line, "endColumn": f.end_column}
    properties: dict = {"status": f.status}
    message = f.message
    if f.cell is not None:
        # Code scanning requires a region: a notebook's result points at line 1, plainly a stand-in,
        # and its message and properties say the cell and the line in it (as ruff does).
        properties.update(cell=f.cell, cellRegion=region)
        region, message = {"startLine": 1}, cell_prefix(f.cell, f.line, f.column) + message
    return {
        "ruleId": f.code,
        "level": _LEVEL[f.severity],
        "message": {"text": message},
        "locations": [_location(f.path, region)],
        "properties": properties,
    }


def render(result: RunResult, color: bool = False) -> str:
    results = [_result(f) for f in result.findings]
    notifications = [
        {
            "descriptor": {"id": d.code},
            "level": "error",
            "message": {"text": cell_prefix(d.cell, d.line) + d.message},
            "locations": [_location(d.path, {"startLine": d.line} if d.line and d.cell is None else {})],
        }
        for d in result.diagnostics
    ]
    document = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nnlint",
                        "version": __version__,
                        "rules": [_rule_descriptor(rule) for rule in all_rules()],
                    }
                },
                "results": results,
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
