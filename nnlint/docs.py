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
        default = "" if rule.default_enabled else " (off by default)"
        rows.append(
            f"| [{rule.code}]({link_prefix}#{anchor(rule)}) | {rule.name} | {rule.severity}{default} | {rule.summary} |"
        )
    return "\n".join(rows)


def rules_markdown() -> str:
    """Every rule's documentation as one Markdown page."""
    parts = ["# nnlint rules", "", rules_table(link_prefix=""), ""]
    for rule in all_rules():
        parts += [f"## {rule.code} {rule.name}", "", f"*{rule.severity}* — {rule.summary}", ""]
        parts += [line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in rule.docs().splitlines()]
        parts.append("")
    return "\n".join(parts)
