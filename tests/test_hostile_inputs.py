"""Files that are not the Python a linter hopes for: each one is reported (NN901), never a crash.

The tree is linted in a child process, as a user runs it: a native crash of
the parser (libcst's overflows the C stack on some deep nesting) must show
up as a failed test, not kill the test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import BUGGY_LINE, BUGGY_NET

MARKER = "executed.marker"
# Anything that runs this file, or imports it as `torch`, leaves the marker behind.
SELF_EXECUTING = f"""\
import pathlib
pathlib.Path(__file__).with_name("{MARKER}").write_text("the linter ran user code")
import torch.nn.functional as F


class Net:
    def forward(self, x):
        return F.dropout(x, 0.5)


if __name__ == "__main__":
    pathlib.Path("{MARKER}").write_text("run as a script")
"""

LATIN1 = "# -*- coding: latin-1 -*-\n" + BUGGY_NET.replace("from torch import nn", "from torch import nn  # réseau")

# path -> (what the NN901 message must say, the line it must point at, or None where no line applies)
UNPARSEABLE = {
    "syntax_error.py": ("syntax error: invalid syntax", 2),
    # No rule's trigger word: libcst never parses it, CPython's parser still must (or CI passes it).
    "syntax_error_untriggered.py": ("syntax error: invalid syntax", 2),
    "deep_parentheses_untriggered.py": ("syntax error: too many nested parentheses", 1),
    "undecodable.py": ("cannot decode as utf-8: invalid start byte", 3),
    "binary.py": ("not linted: the file contains NUL bytes (binary?)", 1),
    "nul_byte.py": ("not linted: the file contains NUL bytes (binary?)", 3),
    "unknown_coding.py": ("cannot decode: unknown encoding: klingon", None),
    "deep_parentheses.py": ("syntax error: too many nested parentheses", 2),
    "deep_boolean_chain.py": ("the code is nested too deeply to parse (19,999 chained `and`/`or` operators)", 2),
    "huge.py": ("not linted: the file is larger than max-file-size (2,000,000 bytes)", None),
    "loop.py": ("cannot read: Too many levels of symbolic links", None),
    "unreadable.py": ("cannot read: ", None),
}
LINTED = {  # path -> lines of the NN301 finding each must still give
    "good.py": [BUGGY_LINE],
    "latin1.py": [BUGGY_LINE + 1],
    "bom.py": [BUGGY_LINE],
    "crlf.py": [BUGGY_LINE],
    "self_executing.py": [8],
    "torch.py": [8],  # shadows the real torch for any code that would import from here
    "empty.py": [],
}


def _write_hostile_tree(root) -> None:
    files = {
        "syntax_error.py": b"import torch.nn.functional as F\ndef f(:\n    return F.dropout(x)\n",
        "syntax_error_untriggered.py": b"x = 1\ndef f(:\n    return x\n",
        "deep_parentheses_untriggered.py": b"x = " + b"(" * 100_000 + b")" * 100_000 + b"\n",
        "undecodable.py": b"import torch.nn.functional as F\n# dropout\nname = '\xff\xfe'\n",
        "binary.py": bytes(range(256)) * 8,
        "nul_byte.py": b"import torch.nn.functional as F\n# dropout\nx = 1\x00\n",
        "unknown_coding.py": b"# -*- coding: klingon -*-\nimport torch.nn.functional as F  # dropout\n",
        "deep_parentheses.py": b"import torch.nn.functional as F\nx = F.dropout" + b"(" * 100_000 + b")" * 100_000 + b"\n",
        "deep_boolean_chain.py": b"import torch.nn.functional as F\nx = " + b" and ".join([b"F.dropout(x)"] * 20_000) + b"\n",
        "huge.py": BUGGY_NET.encode() + b"# padding\n" * 200_000,
        "good.py": BUGGY_NET.encode(),
        "latin1.py": LATIN1.encode("latin-1"),
        "bom.py": b"\xef\xbb\xbf" + BUGGY_NET.encode(),
        "crlf.py": BUGGY_NET.replace("\n", "\r\n").encode(),
        "self_executing.py": SELF_EXECUTING.encode(),
        "torch.py": SELF_EXECUTING.encode(),
        "empty.py": b"",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "loop.py").symlink_to(root / "loop.py")
    if os.geteuid() == 0:  # permissions do not stop root: a file whose read fails for everyone
        (root / "unreadable.py").symlink_to("/proc/self/mem")
    else:
        (root / "unreadable.py").write_bytes(BUGGY_NET.encode())
        (root / "unreadable.py").chmod(0)


@pytest.fixture(scope="module", params=["serial", "parallel", "cached"])
def hostile_run(request, tmp_path_factory):
    """The tree linted serially, in parallel, or twice with a cache (the second run's report: every
    result that could be kept comes from the cache, and must say the same)."""
    root = tmp_path_factory.mktemp("hostile")
    _write_hostile_tree(root)
    command = [sys.executable, "-m", "nnlint", ".", "--format", "json", "--jobs", "1" if request.param == "serial" else "2"]
    env = dict(os.environ)
    if request.param == "cached":
        command += ["--cache-dir", str(tmp_path_factory.mktemp("cache"))]
        del env["NNLINT_NO_CACHE"]
    for _ in range(2 if request.param == "cached" else 1):
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    return root, done


def test_the_run_completes_with_valid_json_and_no_traceback(hostile_run):
    _, done = hostile_run
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    report = json.loads(done.stdout)
    assert report["stats"]["files"] == len(UNPARSEABLE) + len(LINTED)


@pytest.mark.parametrize("path", sorted(UNPARSEABLE))
def test_each_unparseable_file_is_reported_with_why_and_where(hostile_run, path):
    _, done = hostile_run
    errors = [error for error in json.loads(done.stdout)["errors"] if error["path"] == path]
    message, line = UNPARSEABLE[path]
    assert len(errors) == 1, errors
    [error] = errors
    assert error["code"] == "NN901"
    assert error["message"].startswith(message)
    assert error.get("line") == line


def test_the_other_files_are_still_linted_at_the_right_lines(hostile_run):
    _, done = hostile_run
    report = json.loads(done.stdout)
    found = {path: [] for path in LINTED}
    for finding in report["findings"]:
        found[finding["path"]].append(finding["line"])
    assert found == LINTED
    assert {error["path"] for error in report["errors"]} == set(UNPARSEABLE)


def test_columns_ignore_the_bom_and_crlf(hostile_run):
    _, done = hostile_run
    columns = {f["path"]: (f["column"], f["end_column"]) for f in json.loads(done.stdout)["findings"]}
    assert columns["bom.py"] == columns["crlf.py"] == columns["good.py"] == (16, 33)


def test_the_static_pass_never_runs_the_code_it_reads(hostile_run):
    root, _ = hostile_run
    assert not (root / MARKER).exists()
    assert not list(root.rglob("__pycache__")), "something imported the linted files"
