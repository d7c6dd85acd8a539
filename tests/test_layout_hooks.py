"""The layout trace's wrapped functions (nnlint.confirm.intercept): what they record, and what they must not break.

They patch torch for the whole process, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

USER_CODE = '''
import torch
from torch import reshape


@torch.jit.script
def scripted(x: torch.Tensor) -> torch.Tensor:
    return torch.reshape(x, (-1,)).view(2, -1)


def forward(x):
    y = x.view(x.shape[0], -1)
    z = reshape(y, (5, 3, 4))
    return torch.flatten(z.permute(0, 2, 1), 1), scripted(x)
'''

RECORD = '''
import importlib, json, sys
from nnlint.confirm.intercept import install_layout_hooks, recording_layout
install_layout_hooks()
import torch
sys.path.insert(0, sys.argv[1])
user = importlib.import_module("user")
x = torch.randn(5, 4, 3)
with recording_layout([user.__file__]) as calls:
    user.forward(x)
outside = user.forward(x)  # not recorded


class PassOn(torch.overrides.TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


with PassOn(), recording_layout([user.__file__]) as under_mode:  # a mode re-dispatches the wrapper
    user.forward(x)
rows = lambda calls: [[c.call, c.site.line, list(c.input_shape), list(c.output_shape)] for c in calls]
print(json.dumps([rows(calls), rows(under_mode)]))
'''


def test_user_calls_are_recorded_with_their_line_and_shapes_and_scripting_still_compiles(tmp_path: Path):
    (tmp_path / "user.py").write_text(textwrap.dedent(USER_CODE))
    done = subprocess.run([sys.executable, "-c", RECORD, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls, under_mode = json.loads(done.stdout)
    # `from torch import reshape` binds the wrapper; the scripted function runs as TorchScript, unseen.
    assert under_mode == calls == [
        ["view", 12, [5, 4, 3], [5, 12]],
        ["reshape", 13, [5, 12], [5, 3, 4]],
        ["permute", 14, [5, 3, 4], [5, 4, 3]],
        ["flatten", 14, [5, 4, 3], [5, 12]],
    ]
