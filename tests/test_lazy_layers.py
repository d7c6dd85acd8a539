"""A model whose first layer is lazy (nn.LazyLinear, nn.LazyConv2d: d2l's NextSentencePred) is probed on
an assumed input size, not on the 0 its placeholder holds (every probe failed on empty tensors)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import invoke

pytest.importorskip("torch")

SOURCE = """\
import torch.nn.functional as F
from torch import nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.output = nn.LazyLinear(2)

    def forward(self, x):
        return F.dropout(self.output(x), 0.5)


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.LazyConv2d(8, 3)

    def forward(self, x):
        return F.dropout(self.conv(x), 0.5)
"""


def test_a_model_with_a_lazy_first_layer_is_probed_on_an_assumed_input_size(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\n")
    (tmp_path / "model.py").write_text(SOURCE)
    previous = Path.cwd()
    try:
        os.chdir(tmp_path)
        report = invoke("model.py", "--confirm", "--format", "json").json()
    finally:
        os.chdir(previous)
    assert report["errors"] == []
    found = {f["line"]: f for f in report["findings"]}
    assert {line: (f["code"], f["status"]) for line, f in found.items()} == {11: ("NN301", "confirmed"), 20: ("NN301", "confirmed")}
    assert "float[5, 16]" in found[11]["evidence"]["summary"]
    assert "float[5, 3, " in found[20]["evidence"]["summary"]
    assert report["stats"]["confirm"] == {"files": 1, "models": 2, "built": 2, "probed": 2}
