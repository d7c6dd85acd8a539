"""What does reading notebooks cost? The same code linted as .py files and as Jupyter notebooks.

    python bench/notebook_speed.py [--source DIR ...] [--repeat N]

Each Python file under the sources (default: this repository's fixtures/ and rules/) is copied
and also written beside itself as a notebook: one code cell per top-level block (split at two blank
lines), each with a stream output and an IPython line magic, as notebooks have. `nnlint --select
ALL -j1` then lints all the .py files and all the notebooks, alternating, each in a fresh process;
the script prints the median CPU times (user + system, interpreter start-up included: steadier than
wall time on a shared machine) and their ratio (notebooks / .py), and checks that both get the same
findings. Ratios come from the same run; seconds depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import resource
import tempfile
from collections import Counter
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def as_notebook(source: str) -> str:
    cells = [block.strip("\n") + "\n" for block in source.split("\n\n\n") if block.strip()]
    code_cells = [
        {
            "cell_type": "code", "execution_count": number, "id": f"c{number}", "metadata": {},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": ["epoch 1: loss 0.52\n"] * 20}],
            "source": ["%matplotlib inline\n", *cell.splitlines(keepends=True)],
        }
        for number, cell in enumerate(cells, start=1)
    ]  # fmt: skip
    metadata = {"language_info": {"name": "python"}}
    return json.dumps({"cells": code_cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}, indent=1)


def write_tree(sources: list[Path], scratch: Path) -> tuple[list[str], list[str]]:
    """Each file twice, side by side: `x.py` and `x.ipynb` (so that a notebook's imports of its
    neighbours still find them); the .py files and the notebooks, relative to `scratch`."""
    python_files, notebooks = [], []
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            relative = path.relative_to(source.parent)
            text = path.read_text(encoding="utf-8")
            (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
            (scratch / relative).write_text(text, encoding="utf-8")
            (scratch / relative).with_suffix(".ipynb").write_text(as_notebook(text), encoding="utf-8")
            python_files.append(relative.as_posix())
            notebooks.append(relative.with_suffix(".ipynb").as_posix())
    return python_files, notebooks


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lint(tree: Path, files: list[str]) -> tuple[float, Counter]:
    """CPU seconds of one `nnlint` process (steadier than wall time on a shared machine), and its findings."""
    started = _children_cpu_seconds()
    done = subprocess.run(
        [sys.executable, "-m", "nnlint", "check", *files, "--select", "ALL", "-j1", "--format", "json", "--exit-zero"],
        cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = _children_cpu_seconds() - started
    return seconds, Counter(finding["code"] for finding in json.loads(done.stdout)["findings"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, action="append", help="a directory of Python files (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    sources = arguments.source or [REPOSITORY / "fixtures", REPOSITORY / "rules"]
    with tempfile.TemporaryDirectory() as scratch:
        python_files, notebooks = write_tree([source.resolve() for source in sources], Path(scratch))
        times: dict[str, list[float]] = {"py": [], "ipynb": []}
        findings: dict[str, Counter] = {}
        for _ in range(arguments.repeat):
            for kind, files in (("py", python_files), ("ipynb", notebooks)):
                seconds, findings[kind] = lint(Path(scratch), files)
                times[kind].append(seconds)
    as_python, as_notebooks = statistics.median(times["py"]), statistics.median(times["ipynb"])
    print(f"{len(notebooks)} files, {sum(findings['py'].values())} findings; median of {arguments.repeat} runs, -j1, CPU seconds:")
    print(f"  .py files   {as_python:6.2f} s   1.00x")
    print(f"  notebooks   {as_notebooks:6.2f} s   {as_notebooks / as_python:.2f}x")
    print("same findings: " + ("yes" if findings["py"] == findings["ipynb"] else f"NO: {findings}"))


if __name__ == "__main__":
    main()
