"""The pre-commit hooks (.pre-commit-hooks.yaml) through the real `pre-commit` and real `git commit`s.

pre-commit installs this source tree (a snapshot of it, committed in a scratch repository) into
environments of its own, as it does for a user; they are built once for the module, under a
scratch PRE_COMMIT_HOME. The confirm hook's environment gets torch only from the hook's
additional_dependencies, never from the test's environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUGGY_NET, CLEAN_NET
from test_notebooks import TRAINING

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("pre_commit")


def git(directory: Path, *args: str) -> str:
    identity = ["-c", "user.name=nnlint tests", "-c", "user.email=tests@nnlint.invalid", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", *identity, *args], cwd=directory, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def hook_repository(tmp_path_factory) -> tuple[Path, str]:
    """This source tree as it is now (uncommitted edits included), committed in a repository of its own."""
    snapshot = tmp_path_factory.mktemp("nnlint-hooks")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    git(snapshot, "init", "-q")
    git(snapshot, "add", "-A")
    git(snapshot, "commit", "-q", "-m", "snapshot")
    return snapshot, git(snapshot, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    """pre-commit's cache (its hook environments) in a scratch directory shared by the module."""
    return {**os.environ, "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home"))}


@pytest.fixture
def project(tmp_path, hook_repository, environment):
    """A git repository whose .pre-commit-config.yaml uses both hooks, with the hook installed in git."""
    repository, rev = hook_repository
    # The README's snippet, pointed at the snapshot.
    config = f"repos:\n  - repo: {repository}\n    rev: {rev}\n    hooks:\n      - id: nnlint\n      - id: nnlint-confirm\n"
    (tmp_path / ".pre-commit-config.yaml").write_text(config)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".pre-commit-config.yaml")
    git(tmp_path, "commit", "-q", "--no-verify", "-m", "config")
    subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=tmp_path, env=environment, check=True, capture_output=True)
    return tmp_path


def commit(project: Path, environment: dict[str, str], files: dict[str, str]) -> subprocess.CompletedProcess:
    """Stage `files` and `git commit` them: the installed hook runs pre-commit on what is staged."""
    for name, content in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(content)
        git(project, "add", name)
    identity = ["-c", "user.name=nnlint tests", "-c", "user.email=tests@nnlint.invalid"]
    return subprocess.run(  # git shows a hook's output on stderr: one stream, in order
        ["git", *identity, "commit", "-m", "change"], cwd=project, env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_a_commit_with_a_bug_fails_and_shows_the_finding(project, environment):
    done = commit(project, environment, {"net.py": BUGGY_NET})
    assert done.returncode == 1, done.stdout
    assert "net.py:7:16: NN301 `dropout` in forward()" in done.stdout
    assert git(project, "rev-list", "--count", "HEAD") == "1"  # nothing committed


def test_a_clean_commit_passes(project, environment):
    done = commit(project, environment, {"net.py": CLEAN_NET})
    assert done.returncode == 0, done.stdout
    assert "nnlint" in done.stdout and "Passed" in done.stdout
    assert git(project, "rev-list", "--count", "HEAD") == "2"


def test_the_project_exclusions_hold_for_staged_files(project, environment):
    done = commit(project, environment, {"pyproject.toml": '[tool.nnlint]\nexclude = ["legacy/"]\n', "legacy/net.py": BUGGY_NET})
    assert done.returncode == 0, done.stdout


def test_a_commit_without_python_files_passes(project, environment):
    done = commit(project, environment, {"README.md": "# a model\n", "data/labels.json": "[1, 2]\n"})
    assert done.returncode == 0, done.stdout
    assert "(no files to check)Skipped" in done.stdout


def test_only_staged_files_are_linted(project, environment):
    (project / "unstaged.py").write_text(BUGGY_NET)  # in the work tree, not in the commit
    done = commit(project, environment, {"net.py": CLEAN_NET})
    assert done.returncode == 0, done.stdout


def test_a_notebook_with_a_bug_fails_located_by_cell(project, environment):
    done = commit(project, environment, {"train.ipynb": TRAINING})
    assert done.returncode == 1, done.stdout
    assert "train.ipynb:cell 4:3:16: NN301" in done.stdout


MISSING_PACKAGE_MODEL = """\
import torch.nn.functional as F
from torch import nn

import not_installed_anywhere_xyz as augment  # an optional dependency the hook's environment lacks


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return F.dropout(self.fc(x), 0.5)
"""


def test_the_confirm_hook_runs_models_in_its_own_environment(project, environment):
    """Manual stage: not run by `git commit`, run by `pre-commit run --hook-stage manual`, in an
    environment with torch from additional_dependencies and without the project's other packages."""
    done = commit(project, environment, {"model.py": MISSING_PACKAGE_MODEL})
    assert done.returncode == 1 and "nnlint --confirm" not in done.stdout  # the static hook alone
    git(project, "add", "model.py")
    ran = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "nnlint-confirm", "--hook-stage", "manual", "--files", "model.py"],
        cwd=project, env=environment, capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "model.py:13:16: NN301 [confirmed]" in ran.stdout, ran.stdout
    assert "NN902" not in ran.stdout
    torch_by_hook = {}
    for python in Path(environment["PRE_COMMIT_HOME"]).glob("repo*/py_env-*/bin/python"):
        listed = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True)
        packages = {package["name"]: package["version"] for package in json.loads(listed.stdout)}
        assert "nnlint" in packages
        torch_by_hook[python] = packages.get("torch")
    # Two environments: the static hook's without torch, the confirm hook's with the pinned build.
    assert sorted(str(version).split("+")[0] for version in torch_by_hook.values()) == ["2.13.0", "None"]
