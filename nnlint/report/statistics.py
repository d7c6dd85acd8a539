"""`--statistics`: how many findings of each rule, instead of the findings (ruff's table and JSON)."""

from __future__ import annotations

import json
from collections import Counter

from nnlint.runner import RunResult

# Diagnostics are counted beside the rules, under a name that says what happened to the file.
_DIAGNOSTIC_NAMES = {"NN900": "internal-error", "NN901": "file-not-checked", "NN902": "probe-failed"}


def statistics(result: RunResult) -> list[dict]:
    """One row per rule code (diagnostics included): code, name, count and, for findings, the count of
    each status; most frequent first, then by code."""
    rows: dict[str, dict] = {}

    def count(code: str, name: str) -> dict:
        row = rows.setdefault(code, {"code": code, "name": name, "count": 0, "statuses": Counter()})
        row["count"] += 1
        return row

    for finding in result.findings:
        count(finding.code, finding.name)["statuses"][finding.status] += 1
    for diagnostic in result.diagnostics:
        count(diagnostic.code, _DIAGNOSTIC_NAMES.get(diagnostic.code, "diagnostic"))
    return [
        row | {"statuses": dict(sorted(row["statuses"].items()))}
        for row in sorted(rows.values(), key=lambda row: (-row["count"], row["code"]))
    ]


def render_text(result: RunResult) -> str:
    """`count<TAB>code<TAB>name`, aligned as ruff aligns them; the statuses once the confirm pass has
    judged some. Nothing at all when there is nothing to count (as ruff)."""
    rows = statistics(result)
    if not rows:
        return ""
    count_width = max(len(str(row["count"])) for row in rows)
    code_width = max(len(row["code"]) for row in rows)
    lines = []
    for row in rows:
        judged = {status: n for status, n in row["statuses"].items() if status != "suspected"}
        statuses = " (" + ", ".join(f"{n} {status}" for status, n in row["statuses"].items()) + ")" if judged else ""
        lines.append(f"{row['count']:>{count_width}}\t{row['code']:<{code_width}}\t{row['name']}{statuses}")
    return "\n".join(lines)


def render_json(result: RunResult) -> str:
    """The rows as a JSON array (`[]` when there is nothing to count: always a document to parse)."""
    return json.dumps(statistics(result), indent=2)


STATISTICS_FORMATS = {"text": render_text, "json": render_json}
