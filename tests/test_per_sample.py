"""The per-sample gradient check: NN102 (batch mixing) and NN103 (causal leak, R-only).

The confirm runs use the real sandbox (a child process importing torch), a
few seconds each, so each project is confirmed once per module.
"""

from __future__ import annotations

import itertools
import math
import re
import textwrap
from pathlib import Path

import pytest

from nnlint.config import find_config, load_settings
from nnlint.discover import FileFinder
from nnlint.rule import rule_by_code
from nnlint.runner import display_path, run
from nnlint.static import lint_source

torch = pytest.importorskip("torch")
from nnlint.confirm.coupling import reduced_dims, sample_groups  # noqa: E402  (needs torch)
from nnlint.confirm.run import confirm  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "confirm"
PROBE_BATCH = 5
# The budget: forward + backward passes per model, every check included.
PASS_BUDGET = 2 * math.ceil(math.log2(PROBE_BATCH)) + 6


def _confirm(directory: Path, *paths: str):
    """Static pass then confirm pass over `paths` (default: the directory), as `nnlint --confirm
    --show-refuted` run from `directory` does; returns (findings, passes by file and model)."""
    targets = [directory / path for path in paths] or [directory]
    settings = load_settings(find_config(targets[0] if targets[0].is_dir() else targets[0].parent), directory)
    files = FileFinder(settings.root, settings.exclude_spec()).find(targets)
    result = run(files, settings, directory, 1)
    display = {path: display_path(path, directory) for path in files}
    confirmation = confirm(result.findings, files, settings, display, show_refuted=True)
    return confirmation.findings, confirmation.passes


def _by_line(findings, code):
    return {f.line: f for f in findings if f.code == code}


# -- grouping --------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [2, 3, 5, 8, 13, 64])
def test_grouped_passes_see_every_pair_of_samples_within_the_budget(batch):
    groups = sample_groups(batch)
    for i, j in itertools.permutations(range(batch), 2):
        assert any(i in group and j not in group for group in groups), (i, j)
    assert len(groups) <= 2 * math.ceil(math.log2(batch))


def test_a_batch_of_five_needs_four_passes():
    assert len(sample_groups(PROBE_BATCH)) == 4


@pytest.mark.parametrize(
    ("call", "args", "kwargs", "dims"),
    [
        ("mean", (0,), {}, (0,)),
        ("sum", (), {"dim": (0, -1)}, (0, 2)),
        ("sum", (), {}, (0, 1, 2)),  # a full reduction covers the batch
        ("norm", (2, 0), {}, (0,)),  # x.norm(p, dim)
        ("normalize", (), {}, (1,)),  # F.normalize's default dim
        ("softmax", (None,), {}, (0,)),  # torch's legacy implicit dim: 0 for a 3-d input
        ("max", (torch.zeros(5, 4, 3),), {}, None),  # elementwise max of two tensors
        ("cumsum", (), {}, None),  # needs a dim
        ("layer_norm", ((4, 3),), {}, (1, 2)),
    ],
)
def test_reduced_dims(call, args, kwargs, dims):
    assert reduced_dims(call, (torch.zeros(5, 4, 3), *args), kwargs) == dims


# -- NN102: static pass ---------------------------------------------------------------------


def test_static_finding_names_the_evidence_and_the_call():
    source = textwrap.dedent(
        """
        import torch
        from torch import nn

        class Net(nn.Module):
            def forward(self, x):
                b, c, h, w = x.shape
                return torch.softmax(self.conv(x), 0)
        """
    )
    [finding] = lint_source(source.encode(), "net.py", [rule_by_code("NN102")], max_file_size=10**7).findings
    assert finding.line == 8
    assert "`softmax` over dim 0, the batch (`b, c, h, w = x.shape` at line 7)" in finding.message
    assert finding.facts == {"call": "softmax"}


# -- NN102: confirm pass on fixtures/confirm/batch_mixing.py ----------------------------------


@pytest.fixture(scope="module")
def batch_mixing():
    return _confirm(FIXTURES, "batch_mixing.py")


def test_batch_mixing_statuses(batch_mixing):
    findings, _ = batch_mixing
    statuses = {line: f.status for line, f in _by_line(findings, "NN102").items()}
    # 19: static, softmax(dim=0); 31, 45: runtime only; 77: a detached batch mean, refuted; 91: static,
    # a (b, t) fold split as (t, b), and not reported again at its forward(). BatchNormNet (eval: running
    # statistics) and FrameTaggerFixed give nothing.
    assert statuses == {19: "confirmed", 31: "confirmed", 45: "confirmed", 77: "refuted", 91: "confirmed"}
    assert all(f.code == "NN102" for f in findings)


def test_confirmed_batch_mixing_names_the_pair_and_the_call(batch_mixing):
    findings, _ = batch_mixing
    scorer = _by_line(findings, "NN102")[19].evidence
    assert scorer["model"] == "PatchScorer" and scorer["output"] != scorer["leaking_input"]
    assert scorer["max_gradient"] > 0 and scorer["backward_passes"] == 5  # 4 grouped + 1 for the pair
    assert "through `softmax` over dim 0 of a (5, 10) tensor at this line" in scorer["summary"]
    scaler = _by_line(findings, "NN102")[31]
    assert scaler.message.startswith("`norm` over dim 0, the batch (`h = self.conv(signal)` at line 30)")
    assert "through `norm` over dim 0 of a (5, 8, 35) tensor at this line" in scaler.message


def test_mixing_no_call_explains_is_reported_at_forward_with_suspects(batch_mixing):
    findings, _ = batch_mixing
    attention = _by_line(findings, "NN102")[45]
    assert attention.message.startswith("forward() mixes samples of the batch")
    assert "attn (MultiheadAttention, batch_first=False" in attention.message


def test_refuted_batch_reduction_says_nothing_depends_on_it(batch_mixing):
    findings, _ = batch_mixing
    monitor = _by_line(findings, "NN102")[77].evidence["summary"]
    assert "`mean` over dim 0 of a (5, 10) tensor here reduces the batch, but no output of MonitoredHead" in monitor


def test_batch_mixing_stays_within_the_pass_budget(batch_mixing):
    _, passes = batch_mixing
    models = passes["batch_mixing.py"]
    assert set(models) == {
        "PatchScorer", "SignalScaler", "PatchAttention", "BatchNormNet", "MonitoredHead", "FrameTagger", "FrameTaggerFixed",
    }  # fmt: skip
    for model, counted in models.items():
        assert counted["backward"] >= 4, model  # the per-sample check ran on every model
        assert counted["forward"] + counted["backward"] <= PASS_BUDGET, (model, counted)


# -- NN103: confirm pass on fixtures/confirm/causal and on the rule's examples ----------------


@pytest.fixture(scope="module")
def causal():
    return _confirm(FIXTURES / "causal", "decoder.py")  # wavenet.py's strict models: test_nn103_strict.py


def test_leaky_decoder_is_confirmed_and_the_masked_one_is_not(causal):
    findings, passes = causal
    [leak] = findings
    assert (leak.code, leak.path, leak.line, leak.status) == ("NN103", "decoder.py", 18, "confirmed")
    evidence = leak.evidence
    assert evidence["model"] == "LeakyDecoder" and evidence["output_step"] < evidence["input_step"]
    assert evidence["leaking_steps"] == 36  # every later step is seen without a mask
    assert "LeakyDecoder is declared causal, but its forward() looks ahead" in leak.message
    for model in ("LeakyDecoder", "MaskedDecoder"):
        counted = passes["decoder.py"][model]
        assert counted["forward"] + counted["backward"] <= PASS_BUDGET, (model, counted)


def test_causal_leak_examples_at_their_marked_lines(tmp_path):
    """NN103 is R-only: its examples are checked here, each class declared causal."""
    rule = rule_by_code("NN103")
    expected, config = {}, []
    for kind, examples in (("bad", rule.bad), ("good", rule.good)):
        for index, example in enumerate(examples):
            name = f"{kind}{index}.py"
            (tmp_path / name).write_text(example.code)
            expected[name] = example.expected_lines
            config += [f"[tool.nnlint.models.{cls}]\ncausal = true\n" for cls in re.findall(r"^class (\w+)", example.code, re.M)]
    (tmp_path / "pyproject.toml").write_text("\n".join(config))
    findings, _ = _confirm(tmp_path)
    found = {name: sorted(f.line for f in findings if f.path == name and f.code == "NN103") for name in expected}
    assert found == expected
    assert all(f.status == "confirmed" for f in findings)
