"""`nnlint --confirm --report DIR`: DIR/index.html, one static page with the LR curve of each schedule finding
(NN401, NN402) and the gradient map of each batch-mixing or causal-leak finding (NN102, NN103), for the
reader who would rather look than read, and a table of every finding.

The page has no script and links nothing outside itself: its PNGs are inline (data: URIs), so it is one file
to open, attach or archive, and a second run leaves no stale image behind. Only DIR/index.html is written.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import struct
from collections import Counter
from pathlib import Path

from nnlint import __version__
from nnlint.finding import Diagnostic, Finding
from nnlint.report.evidence_pictures import curve_words, gradient_map, lr_curves, plural
from nnlint.runner import RunResult

PAGE = "index.html"
MARK = '<meta name="generator" content="nnlint'  # how a page nnlint wrote, and may replace, is known
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
code { font-family: ui-monospace, monospace; }
section { border-top: 1px solid #ccc; margin-top: 1.5em; }
figure { margin: 1em 0; }
figcaption { font-size: 0.9em; color: #555; max-width: 48em; }
img { max-width: 100%; height: auto; }
.error { color: #b00020; } .warning { color: #a15c00; } .info { color: #0b5394; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.3em; vertical-align: top; }
"""


class ReportError(Exception):
    """DIR cannot take the report, or matplotlib is missing: said before the confirm pass spends its minutes."""


def prepare_target(directory: Path) -> None:
    """Before the run, not after its minutes: matplotlib is installed, DIR is a directory (created if need
    be), and an index.html in it is one nnlint wrote: a page of the user's is never overwritten."""
    if not _matplotlib_installed():
        raise ReportError("--report draws its pictures with matplotlib: pip install 'nnlint[report]'")
    page = directory / PAGE
    if page.is_dir() or (page.exists() and not _written_by_nnlint(page)):
        raise ReportError(f"--report {directory}: {page} exists and nnlint did not write it; name another directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ReportError(f"--report {directory}: not a directory") from None
    except OSError as error:
        raise ReportError(f"--report {directory}: {error.strerror or error}") from None


def write_report(result: RunResult, directory: Path) -> Path:
    """Write DIR/index.html and return its path."""
    page = directory / PAGE
    page.write_text(render(result), encoding="utf-8")
    return page


def render(result: RunResult) -> str:
    pictured = [(i, f, pictures) for i, f in enumerate(result.findings) if (pictures := _pictures(f))]
    statuses = Counter(finding.status for finding in result.findings)
    findings, files = len(result.findings), result.files
    summary = f"{findings} {plural('finding', findings)} in {files} {plural('file', files)}" + "".join(
        f", {count} {status}" for status, count in sorted(statuses.items())
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'{MARK} {__version__}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>nnlint report: {_e(summary)}</title><style>{_STYLE}</style></head><body>",
        "<h1>nnlint report</h1>",
        f"<p>{_e(summary)}. {len(pictured)} of them carry a picture of what the confirm pass measured.</p>",
    ]
    if pictured:
        links = "".join(f'<li><a href="#finding-{i}">{_title(finding)}</a></li>' for i, finding, _ in pictured)
        parts.append(f"<ul>{links}</ul>")
    for index, finding, pictures in pictured:
        parts.append(f'<section id="finding-{index}"><h2>{_title(finding)}</h2><p>{_e(finding.message)}</p>')
        parts.extend(_figure(png, alt, caption) for png, alt, caption in pictures)
        parts.append("</section>")
    parts.append(_table(result))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _pictures(finding: Finding) -> list[tuple[bytes, str, str]]:
    """(PNG, alt text, caption) for each picture the finding's evidence makes."""
    from nnlint.report import figures

    evidence, pictures = finding.evidence, []
    curves = lr_curves(finding)
    if curves:
        title = f"{evidence.get('simulated', 'the schedule')}, simulated"
        alt = "; ".join(": ".join(curve_words(curve)) for curve in curves)
        caption = (
            "The real torch scheduler, built with the source's arguments, stepped on a dummy optimizer at LR 1: "
            "every LR is a multiple of the initial one."
        )
        if evidence.get("batches_per_epoch_assumed") or (evidence.get("per_batch") or {}).get("assumed"):
            batches = evidence.get("batches_per_epoch") or evidence["per_batch"]["batches_per_epoch"]
            caption += f" Stepping every batch assumes {batches} batches per epoch (the source has no loader length)."
        pictures.append((figures.lr_curve_png(curves, title), alt, caption))
    found = gradient_map(finding)
    if found:
        title = f"{evidence.get('model', 'the model')} on {evidence.get('input', 'its probe')}, in eval()"
        pictures.append((figures.gradient_map_png(found, title, _marked(evidence)), *_map_words(found, evidence)))
    return pictures


def _marked(evidence: dict) -> tuple[int, int] | None:
    for row, column in (("output", "leaking_input"), ("output_step", "input_step")):
        if row in evidence and column in evidence:
            return evidence[row], evidence[column]
    return None


def _map_words(found: dict, evidence: dict) -> tuple[str, str]:
    """The alt text and the caption of a gradient map: how to read it, and how it was measured."""
    marked = _marked(evidence)
    if found["kind"] == "samples":
        alt = f"Gradient map: output sample by input sample; output {marked[0]} depends on sample {marked[1]}"
        exact = ", ".join(map(str, found.get("exact_rows", [])))
        caption = (
            "Each cell: the largest |gradient| of the outputs of sample i (row) on the input of sample j (column). "
            "Between the white lines is each sample's own input; every cell outside them should be 0 (grey). "
            f"Row {exact} was back-propagated alone (exact); the other rows are read off the "
            f"{found.get('grouped_passes', 'grouped')} grouped backward passes, each of which back-propagated "
            "several samples' outputs at once, so a cell there is the gradient of a group that includes sample i: "
            "grey still means sample i takes nothing from sample j. Red box: the pair the finding names."
        )
    else:
        alt = f"Gradient map: outputs by input step; the output at step {marked[0]} depends on input step {marked[1]}"
        caption = (
            "Row m: the outputs at steps 0 to m back-propagated together; column s: the largest |gradient| on the "
            "input at step s. Every cell right of the white line should be 0 (grey): "
            + ("no output may see later steps." if found["first_hidden"] else "no output may see its own step's input.")
            + " Red box: the first output that sees the step the finding names."
        )
    if found.get("block", 1) > 1:
        caption += f" Each cell is the largest of {found['block']} x {found['block']} cells of the probe."
    return alt, caption


def _figure(png: bytes, alt: str, caption: str) -> str:
    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="{source}" width="{width}" height="{height}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(result: RunResult) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(_where(f))}</code></td>"
        f'<td class="{_e(f.severity)}">{_e(f.code)}</td><td>{_e(f.status)}</td><td>{_e(f.message)}</td></tr>'
        for f in result.findings
    )
    rows += "".join(
        f"<tr><td><code>{_e(_where(d))}</code></td><td>{_e(d.code)}</td>"
        f"<td>not checked</td><td>{_e(d.message)}</td></tr>"
        for d in result.diagnostics
    )
    header = "<tr><th>where</th><th>code</th><th>status</th><th>message</th></tr>"
    return f"<h2>Every finding</h2><table>{header}{rows}</table>"


def _title(finding: Finding) -> str:
    return (
        f"<code>{_e(_where(finding))}</code> "
        f'<span class="{_e(finding.severity)}">{_e(finding.code)}</span> {_e(finding.name)} [{_e(finding.status)}]'
    )


def _where(record: Finding | Diagnostic) -> str:
    """`path:line:col`, as the text format locates it (`path:cell 3:2:5` in a notebook)."""
    cell = f"cell {record.cell}:" if record.cell is not None else ""
    column = f":{record.column}" if isinstance(record, Finding) else ""
    return f"{record.path}:{cell}{record.line}{column}" if record.line else record.path


def _matplotlib_installed() -> bool:
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # sys.modules["matplotlib"] is None: its import is blocked
        return False


def _written_by_nnlint(page: Path) -> bool:
    try:
        with page.open(encoding="utf-8", errors="replace") as file:
            return MARK in file.read(4096)
    except OSError:
        return False


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
