"""The parent's side of the sandbox: start the child, feed it the request, collect what each worker left.

Never imports torch. The child's own stdout carries one JSON line per model
built and per finished job (used for progress); everything the user's code prints goes to
per-job log files, whose tail explains an NN902.
"""

from __future__ import annotations

import json
import math
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Room for the child to start and import torch, beyond the jobs' own time.
_STARTUP_SECONDS = 60
_STOP_SECONDS = 10  # for the child to kill its workers' groups once told to stop
_TAIL_LINES = 40  # a crash dump's stack reaches the user's frame within this


@dataclass
class JobOutcome:
    outcome: str  # done, crashed, timeout, error
    reason: str = ""
    result: dict[str, Any] | None = None
    output_tail: str = ""


class SandboxError(Exception):
    """The child itself could not run (torch missing or broken); the whole confirm pass stops."""


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_TAIL_LINES:])


def run_jobs(
    request: dict[str, Any],
    on_done: Callable[[int], None] = lambda index: None,
    on_model: Callable[[int, str], None] = lambda index, model: None,
) -> list[JobOutcome]:
    """Run the request's jobs in the child; `on_model(job, name)` as each model is built, `on_done(job)`
    as each job ends."""
    jobs = request["jobs"]
    with tempfile.TemporaryDirectory(prefix="nnlint-confirm-") as workdir:
        request = request | {"workdir": workdir}
        deadline = time.monotonic() + _STARTUP_SECONDS + request["timeout"] * math.ceil(len(jobs) / request["parallel"])
        child_log = Path(workdir) / "child.log"
        with child_log.open("wb") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", "nnlint.confirm.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
            )
        reports: dict[int, dict] = {}
        buffered = b""
        try:
            child.stdin.write(json.dumps(request).encode())
            child.stdin.close()
            while len(reports) < len(jobs) and time.monotonic() < deadline:
                ready, _, _ = select.select([child.stdout], [], [], 0.2)
                if not ready:
                    continue
                chunk = child.stdout.read1(65536)
                if not chunk:
                    break  # the child ended
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    report = json.loads(line)
                    if "model" in report:
                        on_model(report["job"], report["model"])
                        continue
                    reports[report["job"]] = report
                    on_done(report["job"])
        finally:
            _stop(child, finished=len(reports) == len(jobs))
        if not reports and jobs:
            raise SandboxError("the confirm child process failed: " + _tail(child_log).replace("\n", " | "))
        return [_outcome(index, reports.get(index), Path(workdir)) for index in range(len(jobs))]


def _stop(child: subprocess.Popen, finished: bool) -> None:
    """End the child: when its jobs are done it ends by itself, once it has killed what the user's code
    left; else SIGTERM, so that it kills its workers' process groups (and what they started), then
    SIGKILL if it does not end."""
    if finished:
        try:
            child.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
    child.wait()


def _outcome(index: int, report: dict | None, workdir: Path) -> JobOutcome:
    tail = _tail(workdir / f"{index}.log")
    if report is None:
        return JobOutcome("timeout", "the confirm pass ran out of time before probing this file", output_tail=tail)
    if report["outcome"] != "done":
        return JobOutcome(report["outcome"], report["reason"], output_tail=tail)
    result = json.loads((workdir / f"{index}.json").read_text())
    if "error" in result:
        return JobOutcome("error", result["error"], output_tail=tail)
    return JobOutcome("done", result=result["ok"], output_tail=tail)
