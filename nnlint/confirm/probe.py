"""The parent's side of `nnlint probe MODULE:CALLABLE` (torch-free): one model, no finding needed.

The target is built and probed in the same sandbox as `--confirm` (child
side: nnlint.confirm.target); what the probes find comes back as confirmed
findings in a RunResult, so that every report format prints it as `check`
does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from nnlint.config import Settings
from nnlint.confirm.project import read_project
from nnlint.confirm.run import (
    PROBE_FAILED,
    _probe_failed,
    _runtime_finding,
    sandbox_project,
    wanted_findings,
)
from nnlint.confirm.sandbox import run_jobs
from nnlint.confirm.settings import ConfirmSettings
from nnlint.discover import FileFinder
from nnlint.finding import Diagnostic
from nnlint.runner import RunResult, display_path

_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class ProbeError(Exception):
    """The target cannot be probed (bad name, not found, not buildable, rejects every input): exit 2."""


@dataclass
class Probed:
    result: RunResult
    model: dict[str, str] | None  # name, built_with, input: what was probed, for the text report


def probe(target: str, cli_input: str | None, settings: Settings, cwd: Path) -> Probed:
    """Build `target` in the sandbox and run every probe that needs no finding on it."""
    if not _TARGET.fullmatch(target):
        raise ProbeError(f"{target!r} is not of the form pkg.module:ClassOrFactory")
    started = time.monotonic()
    [outcome] = run_jobs(_request(target, cli_input, settings, cwd))
    if outcome.result is None:  # a crash, hang, exit or exception: the same NN902 as `--confirm` gives
        module_file = target.partition(":")[0].rpartition(".")[2] + ".py"
        result = RunResult(diagnostics=[_probe_failed(target, module_file, outcome)])
        model = None
    elif "target_error" in outcome.result:
        raise ProbeError(outcome.result["target_error"])
    else:
        result, model = _reported(outcome.result, settings, cwd), outcome.result["model"]
        failed = [Diagnostic(target, PROBE_FAILED, f"probe failed: {why}") for why in outcome.result["failed"]]
        result.diagnostics.extend(failed)
    result.seconds = time.monotonic() - started
    return Probed(result, model)


def _request(target: str, cli_input: str | None, settings: Settings, cwd: Path) -> dict:
    """The sandbox request: one job, the target, in the project whose files are the code to watch."""
    options = ConfirmSettings.from_table(settings.confirm)
    files = FileFinder(settings.root, settings.exclude_spec()).find([settings.root])
    _, calls = read_project(files, {path: display_path(path, cwd) for path in files})
    project = sandbox_project(settings, options, sorted({str(path.resolve()) for path in files}), calls)
    source_layout = settings.root / "src"  # `src/pkg/...`: the target is `pkg.module:Name`
    search_path = [cwd, settings.root, *([source_layout] if source_layout.is_dir() else [])]
    project["search_path"] = list(dict.fromkeys(str(path.resolve()) for path in search_path))
    return {
        "project": project,
        "jobs": [{"target": target, "input": cli_input, "universal": True, "findings": []}],
        "timeout": options.timeout,
        "memory_mb": options.memory,
        "parallel": 1,
    }


def _reported(child_result: dict, settings: Settings, cwd: Path) -> RunResult:
    """What the probes found, as `check` would report it (paths shown relative to the current directory;
    the code may lie outside the project, in an installed package)."""
    found, files_run = child_result["runtime_findings"], child_result["files_run"]
    located = {Path(path) for path in [*files_run, *(record["path"] for record in found)]}
    shown = {path: display_path(path, cwd.resolve()) for path in located}
    findings = (_runtime_finding(record, {str(path): path for path in located}, shown) for record in found)
    return RunResult(
        findings=sorted(wanted_findings(filter(None, findings), settings, cwd), key=lambda finding: finding.sort_key),
        files=len(files_run),
        lines=sum(_line_count(Path(path)) for path in files_run),
    )


def _line_count(path: Path) -> int:
    try:
        return len(path.read_bytes().splitlines())
    except OSError:
        return 0
