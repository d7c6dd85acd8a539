"""How fast is nnlint's static pass, against TorchFix and against libcst itself?

Downloads pinned wheels of real PyTorch code (timm, torchvision) with
`pip download --no-deps`, unzips their .py files, and times on the same
sources, in the same run:

- nnlint, all rules, as the CLI runs it: default jobs (CPU count) and `--jobs 1`;
- a parse floor: `libcst.parse_module` on every file, one process;
- a qualified-name floor: parse, then `MetadataWrapper(module).resolve(QualifiedNameProvider)`,
  one process: what a linter built on libcst's metadata pays at least;
- TorchFix 0.7.0 (all rules; default jobs and `--jobs 1`), in its own venv
  because it pins an older libcst.

Why: nnlint parses once and resolves names from its own import table instead
of libcst's metadata, so it should sit near the parse floor, far below the
qualified-name floor. The ratios say whether it does; absolute times depend on
the machine and its load, so compare ratios within one run. The fair
comparisons are same-jobs ones (nnlint -j1 against the single-process floors
and TorchFix -j1).

Every measurement is a fresh subprocess, timed from spawn to exit (interpreter
start-up included, as a user sees it); its peak RSS comes from `wait4`, which
reports the largest single process of the tree (parallel workers are not
summed), and so does its CPU time (user + system, the process and the workers
it waited for). CPU-time ratios barely move when other work loads the machine,
while wall-time ratios do: on a shared machine, read the CPU table. Wheels, sources and the TorchFix venv are cached under `--cache`, so a
second run needs no network. The script itself never imports torch.

    python bench/static_speed.py [--corpus timm,torchvision] [--repeat N]
        [--skip-torchfix] [--skip-qn] [--cache DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

# Pinned so that numbers from different days measure the same code.
PINNED = {"timm": "1.0.31", "torchvision": "0.29.1"}
TORCHFIX = "torchfix==0.7.0"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "nnlint-static-speed"
TORCHFIX_FINDING = re.compile(r":\d+:\d+: TOR\d+ ", re.MULTILINE)


@dataclass
class Tool:
    label: str
    command: list[str]
    summarize: Callable[[str, str], str]  # (stdout, stderr) -> what the run did, for the reader


@dataclass
class Measurement:
    tool: str
    wall_s: float
    cpu_s: float  # user + system, of the process and the children it waited for
    peak_rss_mb: float
    exit_code: int
    did: str


@dataclass
class Corpus:
    name: str
    version: str
    root: Path
    files: int
    lines: int
    triggered: int  # files nnlint parses; the others fail its trigger prefilter


# ---- corpora ---------------------------------------------------------------


def _pip(*args: str, python: str = sys.executable) -> None:
    done = subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"pip {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def _wheel(name: str, version: str, cache: Path) -> Path:
    """The cached wheel of name==version, downloaded on first use."""
    wheels = cache / "wheels"
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    if not list(wheels.glob(pattern)):
        _pip("download", "--quiet", "--no-deps", "--only-binary", ":all:", "-d", str(wheels), f"{name}=={version}")
    found = sorted(wheels.glob(pattern))
    if not found:
        sys.exit(f"pip downloaded no wheel matching {pattern} into {wheels}")
    return found[0]


def _unzip_sources(wheel: Path, target: Path) -> None:
    """Extract only the .py files; a half-done extraction never looks finished (rename at the end)."""
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(partial, [member for member in archive.namelist() if member.endswith(".py")])
    partial.rename(target)


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def python_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def nnlint_rules() -> list:
    from nnlint.rule import all_rules  # not at the top: the floor children must load libcst alone

    return all_rules()


def nnlint_triggers() -> list[str]:
    return [trigger for rule in nnlint_rules() for trigger in rule.triggers]


def _passes_prefilter(text: str, triggers: list[str]) -> bool:
    """static.py's prefilter with every rule selected: a file with no trigger is not parsed.

    Counted here because nnlint's JSON stats do not say how many files it parsed.
    """
    return any(trigger in text for trigger in triggers)


def prepare_corpus(spec: str, cache: Path) -> Corpus:
    """`name` (pinned in PINNED) or `name==version` -> its unzipped sources."""
    name, _, version = spec.partition("==")
    version = version or PINNED.get(name, "")
    if not version:
        sys.exit(f"--corpus {name}: no pinned version; write {name}==VERSION")
    root = cache / "src" / f"{name}-{version}"
    if not root.is_dir():
        _unzip_sources(_wheel(name, version, cache), root)
    sources = [path.read_bytes() for path in python_files(root)]
    triggers = nnlint_triggers()
    triggered = sum(_passes_prefilter(data.decode("utf-8", "replace"), triggers) for data in sources)
    return Corpus(name, version, root, len(sources), sum(map(_line_count, sources)), triggered)


def torchfix_executable(cache: Path) -> Path:
    """TorchFix in a venv of its own, created once: it pins a libcst older than nnlint's."""
    venv = cache / "torchfix-venv"
    executable = venv / "bin" / "torchfix"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        _pip("install", "--quiet", TORCHFIX, python=str(venv / "bin" / "python"))
    return executable


# ---- the tools -------------------------------------------------------------


def _nnlint_did(stdout: str, stderr: str) -> str:
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return f"no JSON report: {stderr.strip()[-200:]}"
    stats = report["stats"]
    return f"{len(report['findings'])} findings, {len(report['errors'])} errors; linted {stats['files']} files"


def _torchfix_did(stdout: str, stderr: str) -> str:
    checked = re.search(r"Finished checking (\d+) files", stderr)
    if checked is None:
        return f"did not finish: {stderr.strip()[-200:]}"
    return f"{len(TORCHFIX_FINDING.findall(stdout))} findings; checked {checked.group(1)} files"


def _floor_did(stdout: str, stderr: str) -> str:
    return stdout.strip() or f"crashed: {stderr.strip()[-200:]}"


def tools(root: Path, skip_qn: bool, torchfix: Path | None) -> list[Tool]:
    nnlint = str(Path(sys.executable).parent / "nnlint")
    jobs_variants = sorted({os.cpu_count() or 1, 1}, reverse=True)
    found = [
        Tool(f"nnlint -j{jobs}", [nnlint, "check", str(root), "--select", "ALL", "--exit-zero", "--format", "json",
                                  "--jobs", str(jobs)], _nnlint_did)
        for jobs in jobs_variants
    ]
    floors = {"parse": "parse floor"} if skip_qn else {"parse": "parse floor", "qn": "parse+QN floor"}
    found += [
        Tool(label, [sys.executable, __file__, "--floor", kind, str(root)], _floor_did)
        for kind, label in floors.items()
    ]
    if torchfix is not None:
        found += [
            Tool(f"TorchFix -j{jobs}", [str(torchfix), "--select", "ALL", "--jobs", str(jobs), str(root)],
                 _torchfix_did)
            for jobs in jobs_variants
        ]
    return found


def run_floor(kind: str, root: Path) -> None:
    """The child side of a floor measurement: libcst alone, one file after another."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, QualifiedNameProvider

    files = python_files(root)
    failed = 0
    for path in files:
        try:
            module = cst.parse_module(path.read_bytes().decode("utf-8"))
        except (cst.ParserSyntaxError, UnicodeDecodeError):
            failed += 1
            continue
        if kind == "qn":
            MetadataWrapper(module).resolve(QualifiedNameProvider)
    print(f"parsed {len(files) - failed} files, {failed} failed")


# ---- measuring -------------------------------------------------------------


def measure(tool: Tool, scratch: Path) -> Measurement:
    """Run the tool once as a fresh child; wall time from spawn to exit, CPU time and peak RSS from wait4."""
    stdout_path, stderr_path = scratch / "stdout", scratch / "stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(tool.command, stdout=stdout, stderr=stderr, cwd=scratch)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; tell Popen
    did = tool.summarize(stdout_path.read_text(errors="replace"), stderr_path.read_text(errors="replace"))
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(tool.label, wall, cpu, usage.ru_maxrss / 1024, process.returncode, did)  # ru_maxrss is KiB


def best_of(tool: Tool, repeat: int, scratch: Path) -> Measurement:
    print(f"  running {tool.label} ...", file=sys.stderr, flush=True)
    return min((measure(tool, scratch) for _ in range(repeat)), key=lambda m: m.wall_s)


# ---- reporting -------------------------------------------------------------


def ratios(results: list[Measurement], measure: str = "wall_s") -> dict[str, dict[str, float]]:
    """Time (`wall_s` or `cpu_s`) of each nnlint variant divided by each other tool's: below 1 means nnlint is faster."""
    nnlints = [m for m in results if m.tool.startswith("nnlint")]
    others = [m for m in results if not m.tool.startswith("nnlint")]
    return {n.tool: {o.tool: getattr(n, measure) / getattr(o, measure) for o in others} for n in nnlints}


def print_table(corpus: Corpus, results: list[Measurement]) -> None:
    print(f"\n{corpus.name} {corpus.version}: {corpus.files} files, {corpus.lines:,} lines ({corpus.root})")
    print(f"  nnlint's trigger prefilter lets {corpus.triggered} of {corpus.files} files through to the parser")
    print(f"  {'tool':<14} {'wall s':>8} {'CPU s':>8} {'lines/s':>9} {'peak RSS MB':>12} {'exit':>5}  did")
    for m in results:
        rate = corpus.lines / m.wall_s
        print(f"  {m.tool:<14} {m.wall_s:8.1f} {m.cpu_s:8.1f} {rate:9,.0f} {m.peak_rss_mb:12.0f} {m.exit_code:5d}  {m.did}")
    for measure, label in (("wall_s", "wall time"), ("cpu_s", "CPU time")):
        table = ratios(results, measure)
        others = list(next(iter(table.values()), {}))
        print(f"  {'nnlint / other':<14} " + " ".join(f"{other:>14}" for other in others) + f"   ({label})")
        for nnlint, against in table.items():
            print(f"  {nnlint:<14} " + " ".join(f"{against[other]:14.2f}" for other in others))
    sys.stdout.flush()  # a corpus takes minutes: show its table before starting the next


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="timm,torchvision", help="comma-separated: name or name==version")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    parser.add_argument("--skip-torchfix", action="store_true")
    parser.add_argument("--skip-qn", action="store_true", help="skip the (slow) qualified-name floor")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="wheels, sources, TorchFix venv")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--floor", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)  # a child's job
    args = parser.parse_args()
    if args.floor:
        run_floor(args.floor[0], Path(args.floor[1]))
        return

    args.cache.mkdir(parents=True, exist_ok=True)
    codes = " ".join(rule.code for rule in nnlint_rules())
    print(f"nnlint rules: {codes}; {os.cpu_count()} CPUs; best of {args.repeat}")
    torchfix = None if args.skip_torchfix else torchfix_executable(args.cache)
    report = {}
    with tempfile.TemporaryDirectory() as scratch:
        for spec in args.corpus.split(","):
            corpus = prepare_corpus(spec.strip(), args.cache)
            print(f"{corpus.name}: {corpus.files} files", file=sys.stderr)
            results = [best_of(tool, args.repeat, Path(scratch)) for tool in tools(corpus.root, args.skip_qn, torchfix)]
            print_table(corpus, results)
            report[corpus.name] = {
                "version": corpus.version, "files": corpus.files, "lines": corpus.lines,
                "nnlint_parsed_files": corpus.triggered,
                "results": [asdict(m) for m in results], "nnlint_time_ratios": ratios(results),
                "nnlint_cpu_time_ratios": ratios(results, "cpu_s"),
            }  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
