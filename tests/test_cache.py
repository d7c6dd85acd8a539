"""The cache (nnlint.results_cache): a second run over unchanged files lints none of them and reports
exactly what the first did; whatever a result was computed from (the file, a file it followed calls
into, the configuration, the selection, nnlint itself) changes, and the file is linted again.

"Linted" is counted at the runner's per-file entry point, in runs with `--jobs 1` (in this process).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUGGY_LINE, BUGGY_NET, CLEAN_NET, invoke
from test_notebooks import notebook
from test_project import CALL_LINE, ENGINE, MODEL, TRAIN

import nnlint
from nnlint import runner
from nnlint.finding import FileResult
from nnlint.project_reads import Reads

ROOT = Path(__file__).resolve().parent.parent
BROKEN = "x = 1\ndef f(:\n    return x\n"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("NNLINT_NO_CACHE")
    return tmp_path / "cache"


@pytest.fixture
def cached_lint(cache_dir, tmp_path, monkeypatch):
    """`cached_lint(*args)`: nnlint in tmp_path with the test's cache, serially; returns (Outcome, the
    paths of the files it linted rather than took from the cache)."""
    monkeypatch.chdir(tmp_path)
    linted: list[str] = []
    recording = runner._lint_recording
    monkeypatch.setattr(runner, "_lint_recording", lambda task: linted.append(task.path) or recording(task))

    def run(*args: str):
        linted.clear()
        outcome = invoke(*args, "--format", "json", "--jobs", "1", "--cache-dir", str(cache_dir))
        return outcome, sorted(linted)

    return run


def _report(outcome) -> tuple:
    report = outcome.json()
    return outcome.exit_code, report["findings"], report["errors"], report["stats"]["files"], report["stats"]["lines"]


def _small_project(write) -> list[str]:
    write({"net.py": BUGGY_NET, "clean.py": CLEAN_NET, "broken.py": BROKEN, "notes.py": "NOTE = 'no trigger'\n"})
    return ["broken.py", "clean.py", "net.py", "notes.py"]


def test_a_second_run_lints_nothing_and_reports_the_same(cached_lint, write):
    files = _small_project(write)
    first, linted = cached_lint(".")
    assert linted == files
    assert first.located() == [("net.py", BUGGY_LINE, "NN301")]
    assert [(e["path"], e["code"], e["line"]) for e in first.json()["errors"]] == [("broken.py", "NN901", 2)]
    second, linted = cached_lint(".")
    assert linted == []
    assert _report(second) == _report(first)


def test_an_edited_file_is_linted_again_alone(cached_lint, write, tmp_path):
    _small_project(write)
    cached_lint(".")
    (tmp_path / "net.py").write_text(CLEAN_NET)
    outcome, linted = cached_lint(".")
    assert linted == ["net.py"]
    assert outcome.located() == []
    (tmp_path / "net.py").write_text(BUGGY_NET)  # back to what it was: the first entry still holds
    outcome, linted = cached_lint(".")
    assert (linted, outcome.located()) == ([], [("net.py", BUGGY_LINE, "NN301")])


def test_a_changed_configuration_or_selection_lints_again(cached_lint, write, tmp_path):
    files = _small_project(write)
    cached_lint(".")
    config = tmp_path / "pyproject.toml"
    config.write_text('[tool.nnlint]\nignore = ["NN301"]\n')
    outcome, linted = cached_lint(".")
    assert (linted, outcome.located()) == (files, [])
    config.write_text('[tool.nnlint]\nignore = ["NN301"]\nmax-file-size = 40\n')  # not a selection: still re-lints
    outcome, linted = cached_lint(".")
    assert linted == files
    assert {e["path"] for e in outcome.json()["errors"]} == {"broken.py", "clean.py", "net.py"}
    config.unlink()
    outcome, linted = cached_lint(".", "--select", "NN3")
    assert (linted, outcome.located()) == (files, [("net.py", BUGGY_LINE, "NN301")])
    outcome, linted = cached_lint(".", "--select", "NN3", "--ignore", "NN301")
    assert (linted, outcome.located()) == (files, [])


def test_a_notebook_is_cached_whole_with_its_cells(cached_lint, write, tmp_path):
    """A notebook's findings come back from the cache with their cell; an edited cell lints it again."""
    cells = ["x = 1\n", "y = 2\n", BUGGY_NET]
    write({"explore.ipynb": notebook(*cells)})
    first, linted = cached_lint(".", "--select", "NN301")
    [finding] = first.json()["findings"]
    assert linted == ["explore.ipynb"] and (finding["cell"], finding["line"]) == (3, BUGGY_LINE)
    second, linted = cached_lint(".", "--select", "NN301")
    assert (linted, _report(second)) == ([], _report(first))
    (tmp_path / "explore.ipynb").write_text(notebook(cells[0], "y = 3\n", cells[2]))
    _, linted = cached_lint(".", "--select", "NN301")
    assert linted == ["explore.ipynb"]


def test_a_new_nnlint_version_lints_again(cached_lint, write, monkeypatch):
    files = _small_project(write)
    first, _ = cached_lint(".")
    monkeypatch.setattr(nnlint, "__version__", "99.0.0")
    second, linted = cached_lint(".")
    assert linted == files
    assert _report(second) == _report(first)


def test_a_file_is_linted_again_when_a_file_it_followed_calls_into_changes(cached_lint, write, tmp_path):
    write({"model.py": MODEL, "engine.py": ENGINE, "train.py": TRAIN.format(engine="engine"), "net.py": BUGGY_NET})
    first, _ = cached_lint(".", "--select", "NN303,NN301")
    [finding] = [f for f in first.json()["findings"] if f["code"] == "NN303"]
    assert (finding["path"], finding["line"]) == ("train.py", CALL_LINE)
    assert "engine.py:13" in finding["message"]
    # One line more at the top of engine.py moves the eval() the train.py finding points at.
    (tmp_path / "engine.py").write_text("# the training steps\n" + ENGINE)
    second, linted = cached_lint(".", "--select", "NN303,NN301")
    assert linted == ["engine.py", "train.py"]  # model.py and net.py never looked at engine.py
    [finding] = [f for f in second.json()["findings"] if f["code"] == "NN303"]
    assert "engine.py:14" in finding["message"]


def test_a_new_module_that_shadows_an_import_lints_the_importer_again(cached_lint, write, tmp_path):
    write({"model.py": MODEL, "engine.py": ENGINE, "scripts/train.py": TRAIN.format(engine="engine")})
    first, _ = cached_lint(".", "--select", "NN302,NN303")
    assert first.located() == [("scripts/train.py", CALL_LINE, "NN303")]
    # `from engine import ...` in scripts/train.py now finds scripts/engine.py first, which never calls eval().
    write({"scripts/engine.py": ENGINE.replace("    model.eval()\n", "")})
    second, linted = cached_lint(".", "--select", "NN302,NN303")
    assert linted == ["scripts/engine.py", "scripts/train.py"]
    assert second.located() == [("scripts/train.py", CALL_LINE, "NN302")]


def test_paths_shown_from_another_directory_are_not_taken_from_the_cache(cached_lint, write, tmp_path, monkeypatch):
    write({"pkg/net.py": BUGGY_NET})
    cached_lint(".")
    monkeypatch.chdir(tmp_path / "pkg")
    outcome, linted = cached_lint(".")
    assert (linted, outcome.located()) == (["net.py"], [("net.py", BUGGY_LINE, "NN301")])


def _entries(cache_dir: Path) -> list[Path]:
    return [path for path in (cache_dir / "v1").rglob("*") if path.is_file()]


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {Path.cwd() / 'ran'}",))


def test_corrupt_or_hostile_entries_are_misses_never_errors(cached_lint, write, cache_dir, tmp_path):
    files = _small_project(write)
    first, _ = cached_lint(".")
    entries = _entries(cache_dir)
    assert len(entries) == len(files) + 1  # and the rules' metadata
    key, reads, result = pickle.loads(next(path for path in entries if "results" in path.parts).read_bytes())
    garbage = [
        b"", b"\x80\x05garbage", pickle.dumps(_RunsCode()), pickle.dumps(("not", "an", "entry")), b"[{]",
        pickle.dumps((key, Reads(lookups=5), result)), pickle.dumps((key, reads, FileResult("x.py", findings=5))),
    ]  # fmt: skip
    for bad in garbage:
        for entry in _entries(cache_dir):
            entry.write_bytes(bad)
        second, linted = cached_lint(".")
        assert linted == files
        assert _report(second) == _report(first)
    assert not (tmp_path / "ran").exists(), "unpickling a cache file ran code"
    third, linted = cached_lint(".")  # the bad entries were replaced
    assert (linted, _report(third)) == ([], _report(first))


def test_no_cache_and_the_cache_locations(write, tmp_path, monkeypatch):
    monkeypatch.delenv("NNLINT_NO_CACHE")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write({"net.py": BUGGY_NET})
    assert invoke(".", "--no-cache").exit_code == 1
    monkeypatch.setenv("NNLINT_NO_CACHE", "1")
    assert invoke(".").exit_code == 1
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()
    monkeypatch.delenv("NNLINT_NO_CACHE")
    assert invoke(".").exit_code == 1
    assert (tmp_path / "xdg" / "nnlint" / "CACHEDIR.TAG").is_file()
    assert (tmp_path / "xdg" / "nnlint" / ".gitignore").read_text().splitlines()[-1] == "*"
    monkeypatch.setenv("NNLINT_CACHE_DIR", str(tmp_path / "from-env"))
    assert invoke(".").exit_code == 1
    assert _entries(tmp_path / "from-env")
    assert not (tmp_path / "home").exists()


def test_an_existing_directory_is_used_as_it_is(cached_lint, write, cache_dir):
    cache_dir.mkdir()
    (cache_dir / ".gitignore").write_text("mine\n")
    _small_project(write)
    cached_lint(".")
    assert (cache_dir / ".gitignore").read_text() == "mine\n"
    assert not (cache_dir / "CACHEDIR.TAG").exists()


def test_a_cache_that_cannot_be_written_warns_and_the_run_goes_on(write, tmp_path, monkeypatch):
    monkeypatch.delenv("NNLINT_NO_CACHE")
    monkeypatch.chdir(tmp_path)
    write({"net.py": BUGGY_NET, "not-a-directory": "a file"})
    outcome = invoke(".", "--format", "json", "--cache-dir", "not-a-directory")
    assert outcome.exit_code == 1
    assert outcome.located() == [("net.py", BUGGY_LINE, "NN301")]
    assert outcome.stderr.count("nnlint: warning: cannot write the cache in not-a-directory") == 1


def test_a_bad_size_limit_is_a_usage_error(write, tmp_path, monkeypatch):
    monkeypatch.delenv("NNLINT_NO_CACHE")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNLINT_CACHE_MAX_SIZE", "a lot")
    write({"net.py": BUGGY_NET})
    outcome = invoke(".", "--cache-dir", "cache")
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("nnlint: error: NNLINT_CACHE_MAX_SIZE='a lot': expected a size")


def _disk_usage(cache_dir: Path) -> int:
    return sum(path.stat().st_blocks * 512 for path in _entries(cache_dir))


def test_the_cache_stays_under_its_size_and_evicts_the_least_recently_used(cached_lint, write, cache_dir, monkeypatch):
    older = {f"older/net_{index}.py": BUGGY_NET + f"# {index}\n" for index in range(10)}
    newer = {f"newer/net_{index}.py": BUGGY_NET + f"# {index}\n" for index in range(10)}
    write({**older, **newer})
    cached_lint("older")
    one_run = _disk_usage(cache_dir)
    limit = one_run * 3 // 2  # one run's entries fit, two do not
    monkeypatch.setenv("NNLINT_CACHE_MAX_SIZE", str(limit))
    cached_lint("newer")
    assert _disk_usage(cache_dir) <= limit
    _, linted = cached_lint("newer")
    assert linted == []  # the newest entries were kept
    _, linted = cached_lint("older")
    assert linted, "the oldest entries were evicted"
    assert _disk_usage(cache_dir) <= limit


def test_the_rules_metadata_in_the_cache_is_the_rules(cached_lint, write, cache_dir):
    _small_project(write)
    cached_lint(".")
    [stored] = (cache_dir / "v1" / "rules").iterdir()
    listed = json.loads(invoke("rules", "--format", "json").stdout)
    assert json.loads(stored.read_text()) == [
        {"code": r["code"], "name": r["name"], "severity": r["severity"], "default_enabled": r["default"]}
        for r in listed
    ]


def _subprocess_lint(cwd: Path, cache_dir: Path, *options: str, python_path: Path | None = None):
    env = {key: value for key, value in os.environ.items() if key != "NNLINT_NO_CACHE"}
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    return subprocess.run(
        [sys.executable, *options, "-m", "nnlint", ".", "--format", "json", "--cache-dir", str(cache_dir)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _imported(importtime: str) -> set[str]:
    """The modules a `python -X importtime` run imported, from its stderr."""
    return {line.rpartition("|")[2].strip() for line in importtime.splitlines() if line.startswith("import time:")}


def test_a_fully_cached_run_imports_neither_libcst_nor_the_rules(write, tmp_path, cache_dir):
    _small_project(write)
    cold = _subprocess_lint(tmp_path, cache_dir, "-X", "importtime")
    warm = _subprocess_lint(tmp_path, cache_dir, "-X", "importtime")
    heavy = {"libcst", "nnlint.rule", "nnlint.rules", "nnlint.static"}
    assert heavy <= _imported(cold.stderr)  # the check sees them when they are imported
    assert not heavy & _imported(warm.stderr)
    assert json.loads(warm.stdout)["findings"] == json.loads(cold.stdout)["findings"]


def test_an_edited_nnlint_source_lints_again(write, tmp_path, cache_dir):
    """A checkout in editable mode changes its rules, not its version: the fingerprint hashes the sources.
    A copy of nnlint, laid out as a wheel installs it, gets a rule's message edited between two runs."""
    installed = tmp_path / "site"
    shutil.copytree(ROOT / "nnlint", installed / "nnlint", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "rules", installed / "nnlint" / "rules", ignore=shutil.ignore_patterns("__pycache__"))
    write({"project/net.py": BUGGY_NET})
    project = tmp_path / "project"
    first = _subprocess_lint(project, cache_dir, python_path=installed)
    [finding] = json.loads(first.stdout)["findings"]
    rule = installed / "nnlint" / "rules" / "nn301_functional_dropout_always_on.py"
    assert "stays on" in rule.read_text()
    rule.write_text(rule.read_text().replace("stays on", "STAYS ON"))
    second = _subprocess_lint(project, cache_dir, python_path=installed)
    [edited] = json.loads(second.stdout)["findings"]
    assert "stays on" in finding["message"] and "STAYS ON" in edited["message"]


def test_concurrent_runs_share_the_cache_safely(write, tmp_path, cache_dir):
    write({f"pkg{index % 3}/net_{index:02}.py": BUGGY_NET + "#\n" * index for index in range(24)})
    env = {key: value for key, value in os.environ.items() if key != "NNLINT_NO_CACHE"}
    command = [sys.executable, "-m", "nnlint", ".", "--format", "json", "--jobs", "2", "--cache-dir", str(cache_dir)]
    runs = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]  # fmt: skip
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 1 for run in runs), [stderr for _, stderr in outputs]
    assert all(stderr == "" for _, stderr in outputs)
    findings = [json.loads(stdout)["findings"] for stdout, _ in outputs]
    assert len(findings[0]) == 24 and all(found == findings[0] for found in findings)
    assert not [path for path in _entries(cache_dir) if path.name.startswith(".tmp-")]
    assert len(_entries(cache_dir)) == 24 + 1


def test_the_confirm_pass_lints_again_for_the_facts_the_cache_does_not_keep(cached_lint, write, tmp_path):
    """Stored findings lack their `facts` (libcst nodes the runtime checks read): --confirm never reuses them."""
    pytest.importorskip("torch")
    shutil.copy(ROOT / "fixtures" / "confirm" / "schedules" / "short_run.py", tmp_path / "train.py")
    static, linted = cached_lint(".")
    assert linted == ["train.py"] and [f["code"] for f in static.json()["findings"]] == ["NN401"]
    confirmed, linted = cached_lint(".", "--confirm")
    assert linted == ["train.py"]
    [finding] = confirmed.json()["findings"]
    assert finding["status"] == "confirmed" and "the decay never fires" in finding["evidence"]["summary"]
    again, linted = cached_lint(".")  # what the confirm run stored serves the static run
    assert (linted, again.json()["findings"]) == ([], static.json()["findings"])


def test_fix_applies_the_fixes_of_cached_findings(cached_lint, write, tmp_path):
    """The findings' Fix records come back from the cache whole: --fix on a cached run fixes the file."""
    write({"net.py": BUGGY_NET})
    first, _ = cached_lint(".")
    assert first.json()["findings"][0]["fix"] is not None
    fixed, linted = cached_lint(".", "--fix")
    assert linted == ["net.py"]  # only the re-lint of the fixed file: the findings to fix came from the cache
    assert fixed.located() == [] and "training=self.training" in (tmp_path / "net.py").read_text()
