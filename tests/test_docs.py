"""The documentation is generated from the rules; these fail when someone forgets to regenerate it."""

from pathlib import Path

from nnlint.docs import rules_markdown, rules_table
from nnlint.rule import all_rules

ROOT = Path(__file__).resolve().parent.parent


def test_docs_rules_md_is_up_to_date():
    written = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert written.strip() == rules_markdown().strip(), "regenerate: nnlint rules --format markdown > docs/rules.md"


def test_readme_rule_table_lists_every_rule():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert rules_table() in readme
    for rule in all_rules():
        assert f"[{rule.code}](docs/rules.md#{rule.code.lower()}-{rule.name})" in readme


def test_each_rule_has_a_section_in_the_docs():
    markdown = rules_markdown()
    for rule in all_rules():
        assert f"## {rule.code} {rule.name}" in markdown
        assert "### What it does" in markdown.split(f"## {rule.code} {rule.name}")[1]
