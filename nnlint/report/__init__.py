"""Output formats. Each module renders a `RunResult` to a string; `FORMATS` maps the CLI names."""

from nnlint.report import github, json_report, sarif, text

FORMATS = {"text": text.render, "json": json_report.render, "github": github.render, "sarif": sarif.render}
