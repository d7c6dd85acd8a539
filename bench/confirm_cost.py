"""What does the confirm pass cost? Passes per check, the interception's overhead, and the wall time.

    python bench/confirm_cost.py [--fixtures DIR] [--rounds N] [--json PATH]

On the fixtures (default: this repository's fixtures/), in one run:

1. passes: `nnlint --confirm` runs in this process (its child does the probing) and reports,
   for each model, the forward and backward passes each check ran, the forwards spent fitting
   the probe input before any check, and the checks' total against the issue's budget of
   2*ceil(log2 B) + 6 passes per model (B: the probe batch).
2. interception overhead: each model's eval forward on its probe input, timed plain (torch as
   shipped), with the layout hooks installed but idle (every other forward of the probes), with
   the layout trace recording (the reshape decoding: the wrapped view/reshape/... record shapes
   and the user's line), and, for comparison, under a TorchFunctionMode that only passes calls
   on (the floor of tracing by a mode). Each round runs the four, each going first in turn; the
   median ratio to the plain forward is reported. Target: <= 1.15x. Each file is timed in a
   fresh process, as the confirm pass probes it (its modules must not meet another file's).
   (The layout trace is recorded during the forwards that fit the probe input, so it costs no
   pass of its own: passes and overhead are separate questions.)
3. wall time of `python -m nnlint --confirm FIXTURES` in a fresh process, interpreter start-up
   and torch import included. Target: <= 20 s.

Ratios come from the same run; absolute times depend on the machine and its load. Nothing is
asserted here: the tests check behaviour, this script reports cost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
OVERHEAD_TARGET = 1.15
WALL_TARGET_SECONDS = 20.0
SECONDS_PER_MODEL = 2.0  # timing budget per model; at least MIN_ROUNDS rounds whatever it costs
MIN_ROUNDS = 10


def pass_costs(fixtures: Path) -> tuple[dict, dict]:
    """(costs, totals) by file and model, from the confirm pass run as `nnlint --confirm FIXTURES` runs it."""
    from nnlint.config import find_config, load_settings
    from nnlint.confirm.run import confirm
    from nnlint.discover import FileFinder
    from nnlint.runner import display_path, run

    cwd = fixtures.parent
    settings = load_settings(find_config(fixtures), cwd)
    files = FileFinder(settings.root, settings.exclude_spec()).find([fixtures])
    static = run(files, settings, cwd, os.cpu_count() or 1)
    confirmation = confirm(static.findings, files, settings, {path: display_path(path, cwd) for path in files})
    return confirmation.costs, confirmation.passes


def pass_budget() -> tuple[int, int]:
    from nnlint.confirm.models import PROBE_BATCHES

    batch = PROBE_BATCHES[0]
    return batch, 2 * math.ceil(math.log2(batch)) + 6


def wall_time(fixtures: Path) -> tuple[float, int]:
    """Seconds and exit code of `python -m nnlint --confirm FIXTURES`, from spawn to exit."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nnlint", "--confirm", fixtures.name, "--format", "json"],
        cwd=fixtures.parent, capture_output=True, text=True,
    )  # fmt: skip
    return time.perf_counter() - started, done.returncode


def interception_overhead(fixtures: Path, shown_path: str, rounds: int) -> list[dict]:
    """Time one file's models in a fresh process (this script with --time-file)."""
    from nnlint.config import find_config, load_settings
    from nnlint.confirm.project import read_project
    from nnlint.confirm.run import sandbox_project
    from nnlint.confirm.settings import ConfirmSettings
    from nnlint.discover import FileFinder

    settings = load_settings(find_config(fixtures), fixtures.parent)
    files = FileFinder(settings.root, settings.exclude_spec()).find([fixtures])
    _, calls = read_project(files, {path: str(path) for path in files})
    options = ConfirmSettings.from_table(settings.confirm)
    project = sandbox_project(settings, options, sorted(str(path.resolve()) for path in files), calls)
    request = {"path": str((fixtures.parent / shown_path).resolve()), "project": project, "rounds": rounds}
    done = subprocess.run(
        [sys.executable, __file__, "--time-file"], input=json.dumps(request), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        return [{"file": shown_path, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}]
    return [{"file": shown_path, **row} for row in json.loads(done.stdout)]


def _time_file(request: dict) -> list[dict]:
    """The --time-file process: build the file's models as the confirm child does, then time them."""
    import torch
    from torch.overrides import TorchFunctionMode

    from nnlint.confirm.intercept import LAYOUT_CALLS, recording_layout
    from nnlint.confirm.session import ProbeSession

    torch.set_num_threads(1)  # as in the confirm child
    session = ProbeSession(request["path"], request["project"])  # installs the layout hooks
    hooked = {name: getattr(torch.Tensor, name) for name in LAYOUT_CALLS}

    @contextmanager
    def unhooked():
        """torch as shipped: the tensor methods the user's forward calls restored (the plain forward)."""
        for name, wrapper in hooked.items():
            setattr(torch.Tensor, name, wrapper.__wrapped__)
        try:
            yield
        finally:
            for name, wrapper in hooked.items():
                setattr(torch.Tensor, name, wrapper)

    class EmptyMode(TorchFunctionMode):
        """A mode that only passes every call on: the floor of any TorchFunctionMode (for comparison)."""

        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            EmptyMode.calls += 1
            return func(*args, **kwargs) if kwargs else func(*args)

    rows = []
    for record in session.models:
        module, probe_input = record.probe.module.eval(), record.probe.probe_input(0, session.seed)
        modes = {
            "plain": unhooked,
            "idle": nullcontext,  # hooks installed, nothing recorded: every forward of the other checks
            "traced": lambda: recording_layout(session.user_files),
            "mode": EmptyMode,
        }
        times: dict[str, list[float]] = {label: [] for label in modes}

        def timed(label: str) -> float:
            with modes[label]():
                module(probe_input)  # untimed: swapping methods on torch.Tensor empties the type's lookup cache
                started = time.perf_counter()
                module(probe_input)
                return time.perf_counter() - started

        with torch.no_grad():
            for label in [*modes] * 3:  # warm-up
                timed(label)
            EmptyMode.calls = 0
            with EmptyMode():
                module(probe_input)
            calls = EmptyMode.calls
            with recording_layout(session.user_files) as traced_calls:
                module(probe_input)
            deadline = time.perf_counter() + SECONDS_PER_MODEL
            rounds = 0
            while rounds < MIN_ROUNDS or (rounds < request["rounds"] and time.perf_counter() < deadline):
                labels = list(modes)[rounds % 4 :] + list(modes)[: rounds % 4]  # each goes first in turn
                for label in labels:
                    times[label].append(timed(label))
                rounds += 1
        ratio = {
            label: statistics.median(spent / plain for spent, plain in zip(times[label], times["plain"]))
            for label in ("idle", "traced", "mode")
        }
        rows.append({
            "model": record.name, "input": record.probe.describe_input(), "torch_calls": calls,
            "layout_calls": len(traced_calls), "rounds": rounds, "plain_ms": statistics.median(times["plain"]) * 1e3,
            "traced_ms": statistics.median(times["traced"]) * 1e3, "ratio": ratio["traced"],
            "idle_ratio": ratio["idle"], "mode_ratio": ratio["mode"],
        })  # fmt: skip
    return rows


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def passes_table(costs: dict, totals: dict, budget: int) -> str:
    rows = [["file", "model", "fit fwd", "check", "fwd", "bwd", "total", f"budget {budget}"]]
    for path, models in sorted(costs.items()):
        for model, cost in models.items():
            first = [path, model, str(cost["fit_forwards"])]
            for check, passes in sorted(cost["by_check"].items()) or [("(none)", {"forward": 0, "backward": 0})]:
                rows.append([*first, check, str(passes["forward"]), str(passes["backward"]), "", ""])
                first = ["", "", ""]
            forward, backward = totals[path][model]["forward"], totals[path][model]["backward"]
            within = "ok" if forward + backward <= budget else "OVER"
            rows.append(["", "", "", "all checks", str(forward), str(backward), str(forward + backward), within])
    return _table(rows)


def overhead_table(timed: list[dict]) -> str:
    header = ["file", "model", "probe input", "torch calls", "layout calls", "plain ms", "traced ms", "ratio"]
    rows = [[*header, "hooks idle", "empty mode", "rounds"]]
    for row in timed:
        if "error" in row:
            rows.append([row["file"], f"(not timed: {row['error'][:80]})", *[""] * (len(rows[0]) - 2)])
            continue
        over = "" if row["ratio"] <= OVERHEAD_TARGET else " >"
        rows.append([
            row["file"], row["model"], row["input"], str(row["torch_calls"]), str(row["layout_calls"]),
            f"{row['plain_ms']:.3f}", f"{row['traced_ms']:.3f}", f"{row['ratio']:.3f}{over}",
            f"{row['idle_ratio']:.3f}", f"{row['mode_ratio']:.3f}", str(row["rounds"]),
        ])  # fmt: skip
    return _table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", type=Path, default=REPOSITORY / "fixtures")
    parser.add_argument("--rounds", type=int, default=200, help="timed rounds per model at most (and 2 s)")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--time-file", action="store_true", help=argparse.SUPPRESS)  # the per-file timing process
    options = parser.parse_args()
    if options.time_file:
        print(json.dumps(_time_file(json.load(sys.stdin))))
        return
    fixtures = options.fixtures.resolve()

    # A directory with its own pyproject.toml is its own project (fixtures/confirm/causal declares its
    # models causal there): it is probed as `nnlint --confirm` run inside it would.
    projects = [fixtures, *sorted(path.parent for path in fixtures.rglob("pyproject.toml"))]
    batch, budget = pass_budget()
    by_project = {project: pass_costs(project) for project in projects}
    for project, (project_costs, project_totals) in by_project.items():
        print(f"Passes per model, `nnlint --confirm {project.name}` (budget 2*ceil(log2 {batch})+6 = {budget})")
        print(passes_table(project_costs, project_totals, budget) + "\n")

    # Each file timed once, as the top project shows it (a sub-project's files are among its files).
    top_costs = by_project[fixtures][0]
    probed_files = [path for path in sorted(top_costs) if top_costs[path]]
    timed = [row for path in probed_files for row in interception_overhead(fixtures, path, options.rounds)]
    print(f"\nInterception overhead: layout trace vs plain eval forward, median ratio (target <= {OVERHEAD_TARGET}x)")
    print("hooks idle: the wrapped layout functions when no trace records (every other forward of the probes);")
    print("empty mode: a TorchFunctionMode that only passes calls on, for comparison (the former way to trace)")
    print(overhead_table(timed))

    seconds, exit_code = wall_time(fixtures)
    target = f"target <= {WALL_TARGET_SECONDS:.0f} s"
    print(f"\nWall time of `nnlint --confirm {fixtures.name}`: {seconds:.1f} s (exit {exit_code}; {target})")
    if options.json:
        projects_json = {
            str(project.relative_to(fixtures.parent)): {"passes": found_totals, "costs": found_costs}
            for project, (found_costs, found_totals) in by_project.items()
        }
        numbers = {"projects": projects_json, "budget": budget, "overhead": timed, "wall_seconds": seconds}
        options.json.write_text(json.dumps(numbers, indent=2))

if __name__ == "__main__":
    main()
