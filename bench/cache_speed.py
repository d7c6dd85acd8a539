"""What does the cache save, and what does checking every file's syntax cost?

On real PyTorch code (timm, as in static_speed.py; `--source DIR` for another tree) it times, each a
fresh subprocess of the real CLI from spawn to exit (start-up included), in the same run:

- `no cache`: `nnlint --no-cache`, the baseline of what the cache costs when it is cold;
- `cold`: an empty cache (every file linted, every result written);
- `cached`: the same command again, nothing changed (every result read);
- `one edited`: one file edited (a comment appended), the rest cached;

and prints each as a ratio to `cold`, in wall and in CPU time (target for `cached`: <= 0.05), and
whether the cached run's findings and errors are identical to the cold run's. Then the syntax check of the files the trigger
prefilter spares from libcst (issue 11 item 6): `nnlint --no-cache --jobs 1` checking every file,
against the same run checking only the files the prefilter lets through (as nnlint did before; both
in the same child process, which swaps the check for the second), in wall and CPU time, and, measured directly, CPython's parse of those files
against the run's CPU time (CPU time: `wait4`'s user + system, workers included; on a loaded machine it
moves much less than wall time).

    python bench/cache_speed.py [--source DIR] [--repeat N] [--jobs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from static_speed import DEFAULT_CACHE, Measurement, Tool, _nnlint_did, measure, nnlint_triggers, prepare_corpus

# A model file: nothing else in timm follows calls into it (another tree: its last file).
EDITED = "timm/models/resnet.py"


def _best(label: str, command: list[str], scratch: Path, repeat: int) -> tuple[Measurement, dict]:
    """The fastest of `repeat` runs, and its JSON report (measure() leaves stdout in scratch/stdout)."""
    print(f"  running {label} ...", file=sys.stderr, flush=True)
    best, report = None, {}
    for _ in range(repeat):
        done = measure(Tool(label, command, _nnlint_did), scratch)
        if best is None or done.wall_s < best.wall_s:
            best, report = done, json.loads((scratch / "stdout").read_text())
    return best, report


def cache_rows(tree: Path, nnlint: str, jobs: int, scratch: Path, repeat: int) -> tuple[list[Measurement], bool]:
    base = [nnlint, "check", str(tree), "--select", "ALL", "--exit-zero", "--format", "json", "--jobs", str(jobs)]
    no_cache, _ = _best("no cache", [*base, "--no-cache"], scratch, repeat)
    colds, cacheds = [], []
    for attempt in range(repeat):  # each cold run needs an empty cache
        directory = ["--cache-dir", str(scratch / f"cache-{attempt}")]
        colds.append(_best("cold", [*base, *directory], scratch, 1))
        cacheds.append(_best("cached", [*base, *directory], scratch, 1))
    cold, cold_report = min(colds, key=lambda run: run[0].wall_s)
    cached, cached_report = min(cacheds, key=lambda run: run[0].wall_s)
    edited_file = tree / EDITED if (tree / EDITED).is_file() else sorted(tree.rglob("*.py"))[-1]
    original = edited_file.read_text()
    edited_file.write_text(original + "# edited\n")
    try:
        edited, _ = _best("one edited", [*base, "--cache-dir", str(scratch / "cache-0")], scratch, 1)
    finally:
        edited_file.write_text(original)
    identical = all(cold_report[key] == cached_report[key] for key in ("findings", "errors"))
    return [no_cache, cold, cached, edited], identical


def run_child(argv: list[str], every_file: bool) -> None:
    """A syntax-check row: the CLI with every file's syntax checked, or only the files the trigger
    prefilter lets through (as nnlint did before). Both rows run in this same child, so that nothing
    but the check differs: importing the rules before the CLI, as the second needs, itself changes a
    run's time by a few percent. Valid with `--select ALL`, whose triggers are all the rules'."""
    from nnlint import static
    from nnlint.cli import main

    triggers = nnlint_triggers()
    check = static._cpython_parse
    if not every_file:
        static._cpython_parse = lambda text, path: check(text, path) if any(t in text for t in triggers) else None
    main(argv)


def skipped_parse_seconds(tree: Path) -> tuple[int, float]:
    """How many files the prefilter skips (every rule selected) and CPython's parse of them, in CPU seconds."""
    triggers = nnlint_triggers()
    texts = [path.read_text(encoding="utf-8") for path in sorted(tree.rglob("*.py"))]
    skipped = [text for text in texts if not any(trigger in text for trigger in triggers)]
    started = time.process_time()
    for text in skipped:
        compile(text, "<skipped>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    return len(skipped), time.process_time() - started


def syntax_rows(tree: Path, scratch: Path, repeat: int) -> list[Measurement]:
    """The two runs taken in turns (the fastest of each kept): a load that drifts hits both alike."""
    options = [str(tree), "--select", "ALL", "--exit-zero", "--format", "json", "--jobs", "1", "--no-cache"]
    runs: dict[str, list[Measurement]] = {"every file": [], "prefiltered": []}
    for _ in range(repeat):
        for label, flag in (("every file", "--child-every-file"), ("prefiltered", "--child-prefiltered")):
            runs[label].append(_best(label, [sys.executable, __file__, flag, "check", *options], scratch, 1)[0])
    return [min(measured, key=lambda run: run.wall_s) for measured in runs.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="a tree of Python files [default: timm, as static_speed.py]")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="nnlint --jobs for the cache rows")
    parser.add_argument("--json", type=Path, help="also write the results here")
    for child in ("--child-every-file", "--child-prefiltered"):  # a syntax-check row's child
        parser.add_argument(child, nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_every_file is not None or args.child_prefiltered is not None:
        run_child(args.child_every_file or args.child_prefiltered, every_file=args.child_every_file is not None)
        return

    source = args.source or prepare_corpus("timm", DEFAULT_CACHE).root
    nnlint = str(Path(sys.executable).parent / "nnlint")
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        tree = scratch / "tree"  # a copy: one file of it is edited
        shutil.copytree(source, tree)
        print(f"{source}: {len(list(tree.rglob('*.py')))} files; {os.cpu_count()} CPUs; best of {args.repeat}")
        rows, identical = cache_rows(tree, nnlint, args.jobs, scratch, args.repeat)
        cold = rows[1].wall_s
        print(f"\ncache, nnlint --select ALL --jobs {args.jobs} (wall time from spawn to exit)")
        cold_cpu = rows[1].cpu_s
        print(f"  {'run':<12} {'wall s':>8} {'/ cold':>8} {'CPU s':>8} {'/ cold':>8}  did")
        for row in rows:
            print(f"  {row.tool:<12} {row.wall_s:8.2f} {row.wall_s / cold:8.3f} {row.cpu_s:8.2f} "
                  f"{row.cpu_s / cold_cpu:8.3f}  {row.did}")  # fmt: skip
        print(f"  cached findings and errors identical to the cold run's: {'yes' if identical else 'NO'}")

        with_check, without = syntax_rows(tree, scratch, args.repeat)
        skipped, parse_s = skipped_parse_seconds(tree)
        print(f"\nsyntax check of the {skipped} files the prefilter skips, nnlint --select ALL --jobs 1 --no-cache")
        for measure_name, with_s, without_s in (
            ("wall", with_check.wall_s, without.wall_s), ("CPU", with_check.cpu_s, without.cpu_s),
        ):  # fmt: skip
            print(f"  {measure_name:<4} every file checked {with_s:8.2f} s, only the prefiltered {without_s:8.2f} s: "
                  f"ratio {with_s / without_s:.3f}")  # fmt: skip
        print(f"  CPython's parse of those files alone: {parse_s:.3f} s CPU = {parse_s / without.cpu_s:.4f} "
              "of the run's CPU")  # fmt: skip
    if args.json:
        report = {
            "source": str(source), "jobs": args.jobs, "identical": identical,
            "cache": {row.tool: {"wall_s": row.wall_s, "cpu_s": row.cpu_s, "wall_ratio_to_cold": row.wall_s / cold}
                      for row in rows},
            "syntax_check": {"with": asdict(with_check), "without": asdict(without), "skipped_files": skipped,
                             "skipped_parse_cpu_s": parse_s},
        }  # fmt: skip
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
