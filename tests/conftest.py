"""Shared helpers: run the `nnlint` command in a scratch directory and write small source trees."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from nnlint.cli import main

# The smallest file with a finding: NN301 (functional dropout left on in eval) on line 7.
BUGGY_NET = """\
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5)
"""
BUGGY_LINE = 7
CLEAN_NET = BUGGY_NET.replace("F.dropout(x, 0.5)", "F.dropout(x, 0.5, training=self.training)")


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)

    def located(self) -> list[tuple[str, int, str]]:
        """(path, line, code) of every finding in a `--format json` report, in report order."""
        return [(f["path"], f["line"], f["code"]) for f in self.json()["findings"]]


def invoke(*args: str) -> Outcome:
    """`nnlint ARGS` in this process, from the current directory; a crash of nnlint fails the test."""
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="session", autouse=True)
def no_cache():
    """Tests run without nnlint's cache (so none writes to the user's), subprocesses included; the
    cache's own tests (tests/test_cache.py) turn it back on, in a directory of their own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NNLINT_NO_CACHE", "1")
        yield


@pytest.fixture
def nnlint(tmp_path, monkeypatch):
    """`nnlint(*args)`, run with the test's tmp_path as the current directory."""
    monkeypatch.chdir(tmp_path)
    return invoke


@pytest.fixture
def write(tmp_path):
    """`write({"pkg/net.py": source, ...})`: files under tmp_path, sources dedented."""

    def write_tree(files: dict[str, str | bytes]) -> Path:
        for name, content in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content).lstrip("\n"))
        return tmp_path

    return write_tree

