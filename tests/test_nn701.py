"""NN701 and NN707 beyond their examples: one finding per file, which seeding calls count, what runs as a script."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source


def findings(code: str, source: str) -> list:
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [rule_by_code(code)], max_file_size=10**7)
    assert not result.diagnostics
    return result.findings


TWO_LOOPS = """
import torch
from torch import nn

{setup}
model = nn.Conv2d(3, 8, 3).cuda()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x in pretrain_loader:
    model(x.cuda()).mean().backward()
    optimizer.step()
for x in finetune_loader:
    model(x.cuda()).sum().backward()
    optimizer.step()
"""


@pytest.mark.parametrize("code", ["NN701", "NN707"])
def test_one_finding_per_file_at_the_first_loop(code):
    found = findings(code, TWO_LOOPS.format(setup=""))
    assert len(found) == 1
    assert found[0].line == (10 if code == "NN701" else 8)  # the first step; the first loop header


@pytest.mark.parametrize(
    "setup",
    [
        "torch.cuda.manual_seed_all(0)",
        "from accelerate.utils import set_seed; set_seed(0)",
        "import transformers; transformers.set_seed(0)",
        "import lightning.pytorch as pl; pl.seed_everything(0)",
        "from helpers import setup_seed; setup_seed(0)",
        "from monai.utils import set_determinism; set_determinism(seed=0)",
        "g = torch.Generator(); g.manual_seed(0)",
    ],
)
def test_seeding_calls_silence_nn701(setup):
    assert findings("NN701", TWO_LOOPS.format(setup=setup)) == []


@pytest.mark.parametrize(
    "setup",
    [
        "import random; random.seed(0)",
        "import numpy as np; np.random.seed(0)",
        "torch.Generator().manual_seed(0)",
        "torch.use_deterministic_algorithms(True)",
    ],
)
def test_seeding_other_generators_or_fixing_kernels_does_not_seed_torch(setup):
    assert len(findings("NN701", TWO_LOOPS.format(setup=setup))) == 1


def test_worker_handed_to_spawn_under_the_guard_is_a_script():
    source = """
    import torch
    import torch.multiprocessing as mp

    def worker(rank):
        model = torch.nn.Conv2d(3, 8, 3).cuda(rank)
        for x in loader:
            model(x).mean().backward()
            optimizer.step()

    if __name__ == "__main__":
        mp.spawn(worker, nprocs=2)
    """
    assert len(findings("NN701", source)) == 1
    assert len(findings("NN707", source)) == 1
    library = source.replace('if __name__ == "__main__":\n        mp.spawn(worker, nprocs=2)', "")
    assert findings("NN701", library) == [] and findings("NN707", library) == []
