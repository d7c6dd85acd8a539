"""What do the pictures cost? `nnlint --confirm --report DIR` against `nnlint --confirm`, and the evidence's size.

    python bench/report_cost.py [--rounds N] [PROJECT ...]

For each project (default: fixtures/ and fixtures/confirm/causal, which has its own pyproject.toml), in one
run and each in a fresh process, as a user runs them:

1. wall time of `python -m nnlint --confirm --format json PROJECT` (the baseline) and of the same with
   `--report DIR` (matplotlib's import and one PNG per pictured finding on top), alternating, N rounds
   each; the medians and their ratio.
2. the page: its size and the number of pictures in it.
3. the JSON output with and without the evidence fields the pictures are drawn from (`lr_curves`,
   `gradient_map`), in bytes as printed (indented).

Ratios come from the same run; absolute times depend on the machine and its load. Nothing is asserted
here: the tests check behaviour, this script reports cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PICTURE_FIELDS = ("lr_curves", "gradient_map")


def timed(arguments: list[str]) -> tuple[float, str]:
    """(seconds from spawn to exit, stdout) of `python -m nnlint ARGUMENTS` run from the repository."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nnlint", *arguments], cwd=REPOSITORY, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"nnlint {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, done.stdout


def without_pictures(document: dict) -> dict:
    for finding in document["findings"]:
        if isinstance(finding["evidence"], dict):
            for name in PICTURE_FIELDS:
                finding["evidence"].pop(name, None)
    return document


def measure(project: str, rounds: int) -> None:
    plain, reported = [], []
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report"
        for _ in range(rounds):
            seconds, output = timed(["--confirm", "--format", "json", project])
            plain.append(seconds)
            reported.append(timed(["--confirm", "--format", "json", "--report", str(report), project])[0])
        page = (report / "index.html").read_text(encoding="utf-8")
    document = json.loads(output)
    full = len(json.dumps(document, indent=2, ensure_ascii=False).encode())
    bare = len(json.dumps(without_pictures(document), indent=2, ensure_ascii=False).encode())
    base, drawn = statistics.median(plain), statistics.median(reported)
    print(f"{project}: {len(document['findings'])} findings, {page.count('<figure>')} pictures")
    print(f"  wall, median of {rounds}: --confirm {base:.1f} s, --confirm --report {drawn:.1f} s: {drawn / base:.2f}x")
    print(f"  page {len(page.encode()) / 1024:.0f} KiB; JSON {full:,} bytes, {bare:,} without {', '.join(PICTURE_FIELDS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", default=["fixtures", "fixtures/confirm/causal"])
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    for project in arguments.projects:
        measure(project, arguments.rounds)


if __name__ == "__main__":
    main()
