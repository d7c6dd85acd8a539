"""Rule documentation rendered from the rules themselves, so the docs cannot drift from the code.

`nnlint rules --format markdown` prints `docs/rules.md`; the README's rule
table is `rules_table()`. Tests check both files are up to date.
"""

from __future__ import annotations

from nnlint.rule import Rule, all_rules


def anchor(rule: type[Rule]) -> str:
    """The heading anchor GitHub derives for a rule's section in docs/rules.md."""
    return f"{rule.code}-{rule.name}".lower()


def rules_table(link_prefix: str = "docs/rules.md") -> str:
    rows = [
        "| code | name | severity | what it finds |",
        "|---|---|---|---|",
    ]
    for rule in all_rules():
        rows.append(
            f"| [{rule.code}]({link_prefix}#{anchor(rule)}) | {rule.name} | {severity(rule)} | {rule.summary} |"
        )
    return "\n".join(rows)


def severity(rule: type[Rule]) -> str:
    """`error`, `info (off by default)`, `warning (fixable)`: what a reader of the rule table needs."""
    notes = [note for note, holds in (("off by default", not rule.default_enabled), ("fixable", rule.fixable())) if holds]
    return f"{rule.severity} ({', '.join(notes)})" if notes else rule.severity


def rules_markdown() -> str:
    """Every rule's documentation as one Markdown page."""
    parts = ["# nnlint rules", "", rules_table(link_prefix=""), ""]
    for rule in all_rules():
        parts += [f"## {rule.code} {rule.name}", "", f"*{severity(rule)}* — {rule.summary}", ""]
        parts += [line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in rule.docs().splitlines()]
        parts.append("")
    return "\n".join(parts)
