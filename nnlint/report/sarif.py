"""SARIF 2.1.0, the format GitHub code scanning (and most CI dashboards) ingest."""

from __future__ import annotations

import json

from nnlint import __version__
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


def render(result: RunResult, color: bool = False) -> str:
    from nnlint.rule import all_rules  # the rules' full documentation: only this format imports them

    results = [
        {
            "ruleId": f.code,
            "level": _LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [
                _location(
                    f.path,
                    {"startLine": f.line, "startColumn": f.column, "endLine": f.end_line, "endColumn": f.end_column},
                )
            ],
            "properties": {"status": f.status},
        }
        for f in result.findings
    ]
    notifications = [
        {
            "descriptor": {"id": d.code},
            "level": "error",
            "message": {"text": d.message},
            "locations": [_location(d.path, {"startLine": d.line} if d.line else {})],
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
