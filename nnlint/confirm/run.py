"""The parent's confirm pass: choose the files to probe, run them in the sandbox, apply the verdicts."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from nnlint.config import Settings
from nnlint.confirm.protocol import REFUTED, UNVERIFIABLE
from nnlint.confirm.project import read_project
from nnlint.confirm.sandbox import JobOutcome, SandboxError, run_jobs
from nnlint.confirm.settings import ConfirmSettings, model_entries
from nnlint.finding import Diagnostic, Finding
from nnlint.notebook import is_notebook
from nnlint.rule import rule_by_code
from nnlint.runner import display_path
from nnlint.suppress import noqa_codes_by_line

PROBE_FAILED = "NN902"


def sandbox_project(settings: Settings, options: ConfirmSettings, files: list[str], calls: dict) -> dict[str, Any]:
    """What every probe process needs to know of the project (`files`: absolute paths of the user's code)."""
    return {
        "root": str(settings.root.resolve()),
        "files": files,
        "seed": options.seed,
        "full_import": options.full_import,
        "training_step": options.training_step,
        "models": model_entries(settings.models),
        "constructor_calls": calls,
    }


@dataclass
class Confirmation:
    findings: list[Finding]
    diagnostics: list[Diagnostic]
    passes: dict[str, dict[str, dict[str, int]]]  # file -> model -> forward/backward counts (for the bench)
    costs: dict[str, dict[str, dict]] = field(default_factory=dict)  # file -> model -> passes by check, fit forwards
    stats: dict[str, int] = field(default_factory=dict)  # the JSON report's `stats.confirm` (`confirm_stats`)


def torch_available() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # sys.modules["torch"] is None: imports of torch are blocked
        return False


def confirm(
    findings: list[Finding],
    files: list[Path],
    settings: Settings,
    display: dict[Path, str],
    show_refuted: bool = False,
    progress: bool = False,
) -> Confirmation:
    """Judge `findings` (from the static pass over `files`) and add what the universal probes find."""
    options = ConfirmSettings.from_table(settings.confirm)
    files = [path for path in files if not is_notebook(path)]  # not probed: their findings stay suspected
    by_absolute = {str(path.resolve()): path for path in files}
    model_files, calls = read_project(files, display)
    checked = [
        (index, finding) for index, finding in enumerate(findings)
        if getattr(rule_by_code(finding.code), "runtime_check", None) is not None and finding.cell is None
    ]  # fmt: skip
    paths = {shown: str(path.resolve()) for path, shown in display.items()}
    job_paths = sorted({str(path.resolve()) for path in model_files} | {paths[f.path] for _, f in checked})
    jobs = [
        {
            "path": path,
            "universal": by_absolute.get(path) in model_files,
            "findings": [
                {"index": index, "code": f.code, "path": path, "line": f.line, "message": f.message, "facts": f.facts}
                for index, f in checked
                if paths[f.path] == path
            ],
        }
        for path in job_paths
    ]
    request = {
        "project": sandbox_project(settings, options, sorted(by_absolute), calls),
        "jobs": jobs,
        "timeout": options.timeout,
        "memory_mb": options.memory,
        "parallel": max(1, min(2, os.cpu_count() or 1)),
    }

    shown_path = {index: display.get(by_absolute.get(job["path"]), job["path"]) for index, job in enumerate(jobs)}
    status = _Progress(len(jobs), shown_path, shown=progress and bool(jobs))
    outcomes = run_jobs(request, status.done, status.probing) if jobs else []
    status.finish()
    judged = list(findings)
    diagnostics, passes, costs, extra = [], {}, {}, []
    for job, outcome in zip(jobs, outcomes):
        shown = display.get(by_absolute.get(job["path"]), job["path"])
        if outcome.result is None:
            diagnostics.append(_probe_failed(shown, Path(job["path"]).name, outcome))
            for record in job["findings"]:
                index = record["index"]
                judged[index] = _judged(judged[index], UNVERIFIABLE, f"the probe failed ({PROBE_FAILED})", {})
            continue
        passes[shown] = outcome.result["passes"]
        costs[shown] = outcome.result["costs"]
        for index, verdict in outcome.result["verdicts"].items():
            judged[int(index)] = _judged(judged[int(index)], verdict["status"], verdict["evidence"], verdict["data"])
        extra.extend(_runtime_finding(record, by_absolute, display) for record in outcome.result["runtime_findings"])
        if outcome.result.get("failure"):  # the universal probes failed after the checks gave their verdicts
            failed = JobOutcome("error", outcome.result["failure"], None, outcome.output_tail)
            diagnostics.append(_probe_failed(shown, Path(job["path"]).name, failed))
    for found in wanted_findings(filter(None, extra), settings, Path.cwd()):
        # A probe that saw what a static rule suspected at the same line confirms it instead of repeating it.
        same = [i for i, f in enumerate(judged) if (f.code, f.path, f.line, f.status) == (found.code, found.path, found.line, "suspected")]
        if same:
            judged[same[0]] = _judged(judged[same[0]], found.status, found.evidence["summary"], found.evidence)
        else:
            judged.append(found)
    judged = [f for f in judged if show_refuted or f.status != REFUTED]
    judged.sort(key=lambda f: f.sort_key)
    found = sum(model_files.get(by_absolute.get(job["path"]), 0) for job in jobs)
    return Confirmation(judged, diagnostics, passes, costs, confirm_stats(len(jobs), found, outcomes))


def confirm_stats(files: int, found: int, outcomes: list[JobOutcome]) -> dict[str, int]:
    """How far the pass got: files probed, model classes they define (`project.model_classes`), models
    built (fitted to a probe input) and probed (every universal probe ran); a file whose probe failed
    (NN902) counts none built."""
    counts = [outcome.result.get("models", {}) for outcome in outcomes if outcome.result is not None]
    built, probed = (sum(count.get(key, 0) for count in counts) for key in ("built", "probed"))
    return {"files": files, "models": found, "built": built, "probed": probed}


class _Progress:
    """One status line on stderr (a terminal only): the model being probed, and the files done."""

    def __init__(self, total: int, shown_path: dict[int, str], shown: bool) -> None:
        self.total, self.shown_path, self.shown, self.finished = total, shown_path, shown, 0

    def probing(self, job: int, model: str) -> None:
        self._show(f"probing {model} ({self.shown_path[job]})")

    def done(self, job: int) -> None:
        self.finished += 1
        self._show(f"probed {self.shown_path[job]}")

    def finish(self) -> None:
        if self.shown:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)  # the report follows on a clean line

    def _show(self, text: str) -> None:
        if self.shown:
            print(f"\r\x1b[Knnlint: {self.finished}/{self.total} files, {text}", end="", file=sys.stderr, flush=True)


def _judged(finding: Finding, status: str, sentence: str, data: dict) -> Finding:
    """The finding with its verdict: the sentence in the message (text output), everything in `evidence` (JSON)."""
    return finding.with_status(status, {"summary": sentence, **data}, message=f"{finding.message} -- {sentence}")


def _probe_failed(shown: str, filename: str, outcome: JobOutcome) -> Diagnostic:
    lines = outcome.output_tail.strip().splitlines()
    # The file's own frame, when a crash dump names one, says more than the dump's last line.
    user_frames = [line.strip() for line in lines if f'{filename}"' in line]
    last = (user_frames or lines)[-1:] if lines else []
    message = f"probe failed: {outcome.reason}" + (f" (last output: {last[0][:200]})" if last else "")
    return Diagnostic(shown, PROBE_FAILED, message, extra={"reason": outcome.reason, "output_tail": outcome.output_tail})


def _runtime_finding(record: dict, by_absolute: dict[str, Path], display: dict[Path, str]) -> Finding | None:
    rule = rule_by_code(record["code"])
    if rule is None:
        return None  # the rule is not shipped in this build
    shown = display.get(by_absolute.get(record["path"]), record["path"])
    return Finding(
        rule.code, rule.name, rule.severity, f"{record['message']}: {record['evidence']}", shown,
        record["line"], 1, record["line"] + 1, 1, status=record.get("status", "confirmed"),
        evidence={"summary": record["evidence"], **record["data"]},
    )  # fmt: skip


def wanted_findings(findings: Iterable[Finding], settings: Settings, cwd: Path) -> list[Finding]:
    """Of the findings only the probes saw, those `check` would show: rules selected
    (per-file-ignores included) and no `# noqa: CODE` on the line."""
    selected = settings.selected_rules()
    kept = []
    for finding in findings:
        path = (cwd / finding.path).resolve()
        relative = display_path(path, settings.root.resolve())
        if finding.code not in {rule.code for rule in settings.rules_for(relative, selected)}:
            continue
        if finding.code in _noqa(path).get(finding.line, set()):
            continue
        kept.append(finding)
    return kept


@cache
def _noqa(path: Path) -> dict[int, set[str]]:
    try:
        return noqa_codes_by_line(path.read_text(errors="replace"))
    except OSError:
        return {}


__all__ = ["Confirmation", "PROBE_FAILED", "SandboxError", "confirm", "torch_available"]


def confirm_run(result, files: list[Path], settings: Settings, cwd: Path, show_refuted: bool, progress: bool):
    """The static pass's RunResult with the confirm pass applied (the CLI's `--confirm`); its seconds
    count both passes."""
    started = time.perf_counter()
    display = {path: display_path(path, cwd) for path in files}
    confirmation = confirm(result.findings, files, settings, display, show_refuted, progress)
    result.seconds += time.perf_counter() - started
    result.findings = confirmation.findings
    result.confirm = confirmation.stats
    result.diagnostics = sorted(result.diagnostics + confirmation.diagnostics, key=lambda d: d.sort_key)
    return result
