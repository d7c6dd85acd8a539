"""Which files a run lints: what a project tree holds besides the user's own code is skipped."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import BUGGY_NET


def linted(outcome) -> list[str]:
    """Paths that were linted (every file in these trees has a finding)."""
    report = outcome.json()
    return sorted({f["path"] for f in report["findings"]} | {e["path"] for e in report["errors"]})


def test_tool_and_environment_directories_are_skipped(nnlint, write):
    skipped = [
        ".git/hooks/net.py", "build/lib/net.py", "dist/net.py", "__pycache__/net.py", "node_modules/x/net.py",
        "lib/python3.11/site-packages/torch_thing/net.py", ".venv/net.py", "venv/net.py", ".tox/py311/net.py",
        "src/pkg.egg-info/net.py", "my-env/lib/net.py",
    ]  # fmt: skip
    write({**{path: BUGGY_NET for path in skipped}, "my-env/pyvenv.cfg": "home = /usr/bin\n", "src/pkg/net.py": BUGGY_NET})
    assert linted(nnlint(".", "--format", "json")) == ["src/pkg/net.py"]


def test_gitignore_files_apply_where_they_are(nnlint, write, tmp_path, monkeypatch):
    write({
        ".git/HEAD": "ref: refs/heads/main\n",
        ".gitignore": "/scratch/\n*_generated.py\n",
        "scratch/net.py": BUGGY_NET,
        "src/model_generated.py": BUGGY_NET,
        "src/experiments/.gitignore": "old_*.py\n!old_but_kept.py\n",
        "src/experiments/old_run.py": BUGGY_NET,
        "src/experiments/old_but_kept.py": BUGGY_NET,
        "src/experiments/new_run.py": BUGGY_NET,
        "src/old_run.py": BUGGY_NET,  # the nested .gitignore does not reach its parent
        "src/scratch/net.py": BUGGY_NET,  # "/scratch/" is anchored at the top
    })  # fmt: skip
    expected = [
        "src/experiments/new_run.py", "src/experiments/old_but_kept.py", "src/old_run.py", "src/scratch/net.py",
    ]  # fmt: skip
    assert linted(nnlint(".", "--format", "json")) == expected
    # Walking a subdirectory still honours the .gitignore files above it, up to the repository top.
    monkeypatch.chdir(tmp_path / "src")
    assert linted(nnlint(".", "--format", "json")) == [path.removeprefix("src/") for path in expected]


def test_a_file_named_on_the_command_line_is_always_linted(nnlint, write):
    write({
        ".gitignore": "ignored.py\n",
        "pyproject.toml": '[tool.nnlint]\nexclude = ["excluded.py"]\n',
        "ignored.py": BUGGY_NET,
        "excluded.py": BUGGY_NET,
        "build/net.py": BUGGY_NET,
        "script": BUGGY_NET,  # no .py suffix: a named file is linted whatever its name
    })  # fmt: skip
    assert linted(nnlint(".", "--format", "json")) == []
    named = ["ignored.py", "excluded.py", "build/net.py", "script"]
    assert linted(nnlint(*named, "--format", "json")) == sorted(named)


def test_force_exclude_skips_named_files_a_walk_would_skip(nnlint, write):
    write({
        ".gitignore": "ignored.py\n",
        "pyproject.toml": '[tool.nnlint]\nexclude = ["excluded.py", "legacy/"]\n',
        "ignored.py": BUGGY_NET,
        "excluded.py": BUGGY_NET,
        "legacy/old.py": BUGGY_NET,
        "build/net.py": BUGGY_NET,
        "src/net.py": BUGGY_NET,
    })  # fmt: skip
    named = ["ignored.py", "excluded.py", "legacy/old.py", "build/net.py", "src/net.py"]
    assert linted(nnlint(*named, "--force-exclude", "--format", "json")) == ["src/net.py"]
    outcome = nnlint("excluded.py", "--force-exclude")
    assert (outcome.exit_code, outcome.stdout.startswith("No findings. 0 findings in 0 files")) == (0, True)


def test_a_directory_named_on_the_command_line_is_walked_even_if_ignored_or_excluded(nnlint, write):
    write({
        ".gitignore": "generated/\n",
        "pyproject.toml": '[tool.nnlint]\nexclude = ["legacy/", "skip_me.py"]\n',
        "generated/net.py": BUGGY_NET,
        "legacy/net.py": BUGGY_NET,
        "legacy/skip_me.py": BUGGY_NET,  # patterns that do not name the directory itself still apply in it
    })  # fmt: skip
    assert linted(nnlint(".", "--format", "json")) == []
    assert linted(nnlint("generated", "legacy", "--format", "json")) == ["generated/net.py", "legacy/net.py"]


def test_each_file_is_linted_once(nnlint, write):
    write({"pkg/net.py": BUGGY_NET})
    report = nnlint("pkg/net.py", ".", "pkg", "./pkg/net.py", "--format", "json").json()
    assert len(report["findings"]) == 1 and report["stats"]["files"] == 1


def test_directory_symlinks_are_not_followed_and_loops_do_not_hang(nnlint, write, tmp_path):
    write({"project/src/net.py": BUGGY_NET, "outside/net.py": BUGGY_NET})
    (tmp_path / "project" / "linked_src").symlink_to(tmp_path / "project" / "src", target_is_directory=True)
    (tmp_path / "project" / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "project" / "src" / "loop").symlink_to(tmp_path / "project", target_is_directory=True)
    assert linted(nnlint("project", "--format", "json")) == ["project/src/net.py"]
    # A symlinked directory named on the command line is what the user asked for.
    assert linted(nnlint("project/escape", "--format", "json")) == ["project/escape/net.py"]


def test_file_symlinks_are_linted_and_broken_ones_reported(nnlint, write, tmp_path):
    write({"real.py": BUGGY_NET})
    (tmp_path / "alias.py").symlink_to(tmp_path / "real.py")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    report = nnlint(".", "--format", "json").json()
    assert [f["path"] for f in report["findings"]] == ["alias.py", "real.py"]
    errors = {error["path"]: error["message"] for error in report["errors"]}
    assert errors == {
        "dangling.py": "cannot read: No such file or directory",
        "loop.py": "cannot read: Too many levels of symbolic links",
    }


def test_a_named_pipe_in_the_tree_does_not_hang_the_run(tmp_path):
    """Opening a FIFO nobody writes to blocks forever; run in a child process so a regression fails, not hangs."""
    (tmp_path / "net.py").write_text(BUGGY_NET)
    os.mkfifo(tmp_path / "pipe.py")
    done = subprocess.run(
        [sys.executable, "-m", "nnlint", ".", "--format", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert '"path": "net.py"' in done.stdout and "pipe.py" not in done.stdout
