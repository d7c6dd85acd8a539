"""How far does `--confirm` get on real projects, and does it leave any process behind?

    python bench/confirm_repos.py REPOS_DIR [--python PY] [--timeout S] [--only A,B] [--json OUT]
    python bench/confirm_repos.py --compare BEFORE.json AFTER.json

Each directory in REPOS_DIR is one repository and its own project root: `PY -m nnlint --confirm
--format json .` runs in it (PY: the interpreter of the environment to measure, e.g. a venv with only
torch and nnlint installed; default: this one), one repository at a time, with a wall-clock limit.
Per repository it records the files linted, the files probed, the model classes they define, the
models built and probed (the JSON report's `stats.confirm`), the findings by status, every NN902
(path and message), the wall time, and the processes left running once nnlint has exited: every
process that was not there before the run and is in nnlint's session, runs in the repository
(its working directory) or names it on its command line. Target: 0 after every run.

An nnlint older than `stats.confirm` (the commit before it, for a before/after table) is run through
its own CLI in-process by this script (`--legacy-run`), reading the built models from the confirm
pass's pass counts; there "probed" counts the built models of the files that got no NN902 (a file's
failed probe is not traced to one model there).

`--compare` prints the two runs' totals side by side, and the NN902s only one of them has.
Nothing is asserted: the tests check behaviour, this reports what real projects get.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

STATUSES = ("confirmed", "refuted", "unverifiable", "suspected")
_HAS_STATS = "import dataclasses, nnlint.runner as r; print('confirm' in {f.name for f in dataclasses.fields(r.RunResult)})"


def _process_table() -> dict[int, dict]:
    """pid -> session id, working directory and command line of every process /proc shows."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
            try:
                cwd = os.readlink(f"/proc/{name}/cwd")
            except OSError:
                cwd = ""
        except OSError:
            continue  # gone meanwhile
        table[int(name)] = {"session": int(fields[3]), "cwd": cwd, "command": command, "state": fields[0].decode()}
    return table


def left_running(before: set[int], session: int, repository: Path) -> list[str]:
    """Processes, new since `before`, that the run started: in its session, in the repository, or naming it."""
    where = str(repository.resolve())
    left = []
    for pid, info in _process_table().items():
        if pid in before or pid == os.getpid() or info["state"] == "Z":
            continue
        if info["session"] == session or info["cwd"].startswith(where) or where in info["command"]:
            left.append(f"{pid} {info['command'][:120]}")
    return left


def legacy_run() -> None:
    """`nnlint --confirm --format json --jobs 2 .` in-process, for an nnlint without `stats.confirm`:
    the report printed with `stats.confirm` added from the confirm pass's own records."""
    import nnlint.confirm.run as confirm_module
    from nnlint.cli import main

    captured = []
    original = confirm_module.confirm

    def confirm(*args, **kwargs):
        captured.append(original(*args, **kwargs))
        return captured[-1]

    confirm_module.confirm = confirm
    output = io.StringIO()
    with redirect_stdout(output):
        try:
            main(["--confirm", "--format", "json", "--jobs", "2", "."], standalone_mode=False)
        except SystemExit:
            pass
    report = json.loads(output.getvalue())
    if captured:
        passes, failed = captured[0].passes, {d["path"] for d in report["errors"] if d["code"] == "NN902"}
        report["stats"]["confirm"] = {
            "files": len(set(passes) | failed),
            "built": sum(len(models) for models in passes.values()),
            "probed": sum(len(models) for path, models in passes.items() if path not in failed),
        }
    print(json.dumps(report))


def run_one(python: str, repository: Path, timeout: float, legacy: bool) -> dict:
    if legacy:
        command = [python, str(Path(__file__).resolve()), "--legacy-run"]
    else:
        command = [python, "-m", "nnlint", "--confirm", "--format", "json", "--jobs", "2", "."]
    before = set(_process_table())
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=repository, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # as Ctrl-C would: nnlint stops its child, which kills its workers
        stdout, stderr = process.communicate()
        timed_out = True
    seconds = time.perf_counter() - started
    time.sleep(1.0)  # a killed group takes a moment to leave /proc
    left = left_running(before, process.pid, repository)
    row = {"repository": repository.name, "seconds": round(seconds, 1), "exit": process.returncode,
           "timed_out": timed_out, "left_running": left}  # fmt: skip
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return row | {"error": (stderr or stdout).strip()[-500:]}
    statuses = Counter(finding["status"] for finding in report["findings"])
    return row | {
        "files": report["stats"]["files"],
        "confirm": report["stats"].get("confirm", {}),
        "findings": {status: statuses.get(status, 0) for status in STATUSES},
        "nn902": [{"path": e["path"], "message": e["message"]} for e in report["errors"] if e["code"] == "NN902"],
        "judged": [  # what the confirm pass decided, to read
            {"code": f["code"], "path": f["path"], "line": f["line"], "status": f["status"],
             "evidence": (f["evidence"] or {}).get("summary", "")[:400]}
            for f in report["findings"] if f["status"] != "suspected"
        ],  # fmt: skip
        "nn901": sum(e["code"] == "NN901" for e in report["errors"]),
    }


def totals(rows: list[dict]) -> dict:
    total = Counter()
    for row in rows:
        total["repositories"] += 1
        total["files"] += row.get("files", 0)
        for key, value in row.get("confirm", {}).items():
            total[f"confirm.{key}"] += value
        for status, count in row.get("findings", {}).items():
            total[status] += count
        total["NN902"] += len(row.get("nn902", []))
        total["left running"] += len(row["left_running"])
        total["timed out"] += row["timed_out"]
        total["failed runs"] += "error" in row
        total["seconds"] += row["seconds"]
    return dict(total)


def _line(row: dict) -> str:
    stats = row.get("confirm", {})
    found = row.get("findings", {})
    cells = [row["repository"][:38].ljust(38), row.get("files", "-"), stats.get("files", "-"), stats.get("models", "-"),
             stats.get("built", "-"), stats.get("probed", "-"), *(found.get(s, "-") for s in STATUSES[:3]),
             len(row.get("nn902", [])), len(row["left_running"]), f"{row['seconds']:.0f}s"]  # fmt: skip
    return " ".join(str(cell).rjust(5) for cell in cells) + (" TIMEOUT" if row["timed_out"] else "") + (
        f" ERROR {row['error'][:80]}" if "error" in row else ""
    )


HEADER = " ".join(h.rjust(5) for h in ["repository".ljust(38), "files", "probd", "class", "built", "prob'd",
                                        "conf", "refut", "unver", "NN902", "left", "wall"])  # fmt: skip


def measure(args) -> None:
    # from "/": the nnlint installed there, not one in the current directory
    legacy = subprocess.run([args.python, "-c", _HAS_STATS], capture_output=True, text=True, cwd="/").stdout.strip() != "True"
    repositories = sorted(path for path in Path(args.repos).iterdir() if path.is_dir())
    if args.only:
        repositories = [path for path in repositories if path.name in args.only.split(",")]
    print(f"{args.python}: {'legacy (in-process CLI)' if legacy else 'nnlint CLI'}, {len(repositories)} repositories")
    print(HEADER)
    rows = []
    for repository in repositories:
        rows.append(run_one(args.python, repository, args.timeout, legacy))
        print(_line(rows[-1]), flush=True)
        for left in rows[-1]["left_running"]:
            print(f"    LEFT RUNNING: {left}")
    print(json.dumps(totals(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps({"python": args.python, "legacy": legacy, "rows": rows}, indent=1))


def compare(before_path: str, after_path: str) -> None:
    before, after = (json.loads(Path(p).read_text())["rows"] for p in (before_path, after_path))
    common = sorted({r["repository"] for r in before} & {r["repository"] for r in after})
    pick = lambda rows: [r for r in rows if r["repository"] in common]  # noqa: E731
    old, new = totals(pick(before)), totals(pick(after))
    print(f"{len(common)} repositories in both runs\n{'':22} {'before':>8} {'after':>8}")
    for key in sorted(set(old) | set(new), key=lambda k: (k.startswith("confirm") is False, k)):
        print(f"{key:22} {old.get(key, 0):>8.0f} {new.get(key, 0):>8.0f}")
    for label, rows in (("before", before), ("after", after)):
        print(f"\nNN902 {label}:")
        for row in pick(rows):
            for error in row.get("nn902", []):
                print(f"  {row['repository']}/{error['path']}: {error['message'][:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", nargs="?", help="a directory of repositories, one per subdirectory")
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose nnlint and torch are measured")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per repository (default 900)")
    parser.add_argument("--only", help="comma-separated repository names")
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two --json files")
    parser.add_argument("--legacy-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.legacy_run:
        legacy_run()
    elif args.compare:
        compare(*args.compare)
    elif args.repos:
        measure(args)
    else:
        parser.error("give REPOS_DIR or --compare BEFORE AFTER")


if __name__ == "__main__":
    main()
