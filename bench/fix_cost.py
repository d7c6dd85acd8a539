"""What do `--diff` and `--fix` cost against a plain lint, and are the fixes sound on real code?

On a copy of a directory of real PyTorch projects, in the same run and each in a fresh subprocess:

- `nnlint --select ALL` (the baseline), then `--diff` and `--fix` on the same copy;
- checks, not timed: `--diff` left every byte as it was; every fixed file still compiles; a second
  `--fix` changes no byte (idempotence); the fixed findings are gone and no other finding appeared.

Prints seconds and ratios to the baseline (compare ratios: seconds depend on the machine's load),
and the findings fixed per rule.

    python bench/fix_cost.py CORPUS_DIR [--jobs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

NNLINT = [sys.executable, "-m", "nnlint"]


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.py")) if p.is_file() and not p.is_symlink()}


def _timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([*NNLINT, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"nnlint {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done


def _findings(cwd: Path, jobs: list[str]) -> Counter:
    _, done = _timed(["--select", "ALL", "--format", "json", "--exit-zero", *jobs, "."], cwd)
    return Counter(f["code"] for f in json.loads(done.stdout)["findings"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--jobs", type=int, default=None)
    options = parser.parse_args()
    jobs = ["--jobs", str(options.jobs)] if options.jobs else []
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "corpus"
        shutil.copytree(options.corpus, tree, symlinks=True)
        before = _tree_digest(tree)
        codes_before = _findings(tree, jobs)

        lint_seconds, _ = _timed(["--select", "ALL", "--exit-zero", *jobs, "."], tree)
        diff_seconds, diff = _timed(["--select", "ALL", "--diff", *jobs, "."], tree)
        assert _tree_digest(tree) == before, "--diff wrote to the tree"
        fix_seconds, fixed = _timed(["--select", "ALL", "--fix", "--exit-zero", *jobs, "."], tree)
        after = _tree_digest(tree)
        changed = [name for name in after if after[name] != before[name]]
        for name in changed:
            compile((tree / name).read_bytes(), name, "exec", dont_inherit=True)
        _, again = _timed(["--select", "ALL", "--fix", "--exit-zero", *jobs, "."], tree)
        assert _tree_digest(tree) == after, "a second --fix changed the tree"
        codes_after = _findings(tree, jobs)

    fixed_by_code = codes_before - codes_after
    assert not codes_after - codes_before, f"findings appeared after fixing: {codes_after - codes_before}"
    print(f"{len(before)} files, {len(changed)} changed by --fix; {diff.stderr.strip().splitlines()[-1]}")
    print(f"{'run':<22}{'seconds':>9}{'ratio':>8}")
    for name, seconds in (("nnlint (baseline)", lint_seconds), ("nnlint --diff", diff_seconds), ("nnlint --fix", fix_seconds)):
        print(f"{name:<22}{seconds:>9.2f}{seconds / lint_seconds:>8.2f}")
    print("fixed per rule:", ", ".join(f"{code}: {count}" for code, count in sorted(fixed_by_code.items())) or "none")
    print(f"checks: --diff wrote nothing; {len(changed)} fixed files compile; a second --fix changed no byte "
          f"({again.stderr.strip().splitlines()[-1]}); no finding appeared")


if __name__ == "__main__":
    main()
