"""SARIF 2.1.0, the format GitHub code scanning (and most CI dashboards) ingest.

Findings are results; files nnlint could not check (NN901), probes that failed (NN902) and internal
errors (NN900) are tool execution notifications, as SARIF has them: problems of the run, not of the
code. tests/test_sarif.py validates the output against the official OASIS schema.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from nnlint import __version__
from nnlint.finding import DOCS_URL, Finding
from nnlint.report.source_lines import SourceLines
from nnlint.rule import all_rules
from nnlint.notebook import cell_prefix
from nnlint.runner import INTERNAL_ERROR, RunResult

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# partialFingerprints key, versioned as SARIF recommends: a change of the recipe must change the key.
FINGERPRINT = "nnlint/v1"


def _rule_descriptor(rule) -> dict:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.docs()},
        "helpUri": DOCS_URL.format(code=rule.code.lower(), name=rule.name),
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
    }


def _uri(path: str) -> str:
    """A URI reference for a report path: percent-encoded (a space is not allowed in a URI), and a
    `file://` URI for an absolute path (a file outside the current directory)."""
    return Path(path).as_uri() if Path(path).is_absolute() else quote(path)


def _location(path: str, region: dict | None) -> dict:
    physical: dict = {"artifactLocation": {"uri": _uri(path)}}
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def fingerprints(findings: list[Finding], lines: SourceLines) -> list[str]:
    """One fingerprint per finding, stable across runs and across edits elsewhere in the file: a hash
    of the rule, the path and the finding's line with its whitespace normalised (not the line
    number, which any edit above shifts), then the occurrence index among the file's findings of
    that rule on identical lines, in source order."""
    order = sorted(range(len(findings)), key=lambda index: findings[index].sort_key)
    seen: Counter = Counter()
    prints = [""] * len(findings)
    for index in order:
        finding = findings[index]
        # A notebook's line is in a cell, not in the file: its message (which quotes the code) stands in.
        text = finding.message if finding.cell is not None else " ".join(lines.line(finding.path, finding.line).split())
        key = "\0".join((finding.code, finding.path, text))
        prints[index] = f"{hashlib.sha256(key.encode()).hexdigest()[:32]}:{seen[key]}"
        seen[key] += 1
    return prints


def _result(finding: Finding, fingerprint: str) -> dict:
    region = {
        "startLine": finding.line, "startColumn": finding.column,
        "endLine": finding.end_line, "endColumn": finding.end_column,
    }  # fmt: skip
    properties: dict = {"status": finding.status}
    message = finding.message
    if finding.cell is not None:
        # Code scanning requires a region: a notebook's result points at line 1, plainly a stand-in,
        # and its message and properties say the cell and the line in it (as ruff does).
        properties.update(cell=finding.cell, cellRegion=region)
        region, message = {"startLine": 1}, cell_prefix(finding.cell, finding.line, finding.column) + message
    result = {
        "ruleId": finding.code,
        "level": _LEVEL[finding.severity],
        "message": {"text": message},
        "locations": [_location(finding.path, region)],
        "partialFingerprints": {FINGERPRINT: fingerprint},
        "properties": properties,
    }
    if finding.status == "refuted":  # shown with --show-refuted: the probes found no problem
        result.update(kind="pass", level="none")
    return result


def render(result: RunResult, color: bool = False) -> str:
    lines = SourceLines()
    results = [_result(f, fingerprint) for f, fingerprint in zip(result.findings, fingerprints(result.findings, lines))]
    notifications = [
        {
            "descriptor": {"id": d.code},
            "level": "error",
            "message": {"text": cell_prefix(d.cell, d.line) + d.message},
            "locations": [_location(d.path, {"startLine": d.line} if d.line and d.cell is None else None)],
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
                        "informationUri": "https://github.com/nnlint/nnlint",
                        "rules": [_rule_descriptor(rule) for rule in all_rules()],
                    }
                },
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": not any(d.code == INTERNAL_ERROR for d in result.diagnostics),
                        "toolExecutionNotifications": notifications,
                    }
                ],
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
