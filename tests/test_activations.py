"""The runtime checks of NN501, NN503 and NN504 (nnlint.confirm.activations) on real modules, each able to fail:
refuted on logits (NN501, NN503) or log-probabilities (NN504), unverifiable on outputs that cannot be read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from nnlint.confirm.protocol import ProbeFinding  # noqa: E402
from rules.nn501_softmax_into_cross_entropy import SoftmaxIntoCrossEntropy  # noqa: E402
from rules.nn503_double_sigmoid import DoubleSigmoid  # noqa: E402
from rules.nn504_nll_on_logits import NllOnLogits  # noqa: E402


class Ends(nn.Module):
    """A Linear(16, 10) then `then` applied to its output."""

    def __init__(self, then):
        super().__init__()
        self.fc, self.then = nn.Linear(16, 10), then

    def forward(self, x):
        return self.then(self.fc(x))


class FakeSession:
    """What the checks use of a ProbeSession: one model, built or not, and its forward on a (5, 16) or (5, 7, 16) probe."""

    seed = 0

    def __init__(self, module: nn.Module | None, shape=(5, 16), why: str = "Net cannot be built"):
        self.module, self.shape, self.why = module, shape, why

    def model_named(self, name):
        if self.module is None:
            return None, self.why
        probe = SimpleNamespace(module=self.module, shapes_only="", describe_input=lambda: f"float{list(self.shape)}")
        return SimpleNamespace(name="Net", probe=probe), ""

    def forward(self, record, probe=0, train=False):
        record.probe.module.train(train)
        return record.probe.module(torch.randn(self.shape, generator=torch.Generator().manual_seed(0)))


def judge(rule, then, **options):
    finding = ProbeFinding(rule.code, "/x/train.py", 3, "", {"built_by": "Net", "loss": "CrossEntropyLoss", "applied_by": "model"})
    return rule.runtime_check(finding, FakeSession(Ends(then) if then is not None else None, **options))


@pytest.mark.parametrize(
    ("rule", "then", "status"),
    [
        (SoftmaxIntoCrossEntropy, lambda z: z.softmax(1), "confirmed"),
        (SoftmaxIntoCrossEntropy, lambda z: z, "refuted"),
        (SoftmaxIntoCrossEntropy, lambda z: z.log_softmax(1), "refuted"),
        (SoftmaxIntoCrossEntropy, lambda z: z.sigmoid(), "refuted"),  # in (0, 1) but rows do not sum to 1
        (DoubleSigmoid, lambda z: z.sigmoid(), "confirmed"),
        (DoubleSigmoid, lambda z: z, "refuted"),
        (DoubleSigmoid, lambda z: z.softmax(1), "confirmed"),  # probabilities too: the loss squashes them again
        (NllOnLogits, lambda z: z, "confirmed"),
        (NllOnLogits, lambda z: z.softmax(1), "confirmed"),
        (NllOnLogits, lambda z: z.log_softmax(1), "refuted"),
        (NllOnLogits, lambda z: z - z.logsumexp(1, keepdim=True), "refuted"),  # normalised by hand
    ],
)
def test_each_check_judges_what_the_output_is(rule, then, status):
    assert judge(rule, then).status == status


def test_evidence_gives_the_measured_numbers():
    verdict = judge(SoftmaxIntoCrossEntropy, lambda z: z)
    assert "are off 1 by up to" in verdict.evidence and verdict.data["max_sum_error"][1] > 1e-3
    verdict = judge(NllOnLogits, lambda z: z)
    low, high = verdict.data["logsumexp_range"][1]
    assert f"[{low:.3g}, {high:.3g}]" in verdict.evidence and low > 1
    assert "values in [" in judge(DoubleSigmoid, lambda z: z).evidence


def test_a_sequence_output_normalised_over_its_last_dim_is_read_there():
    verdict = judge(SoftmaxIntoCrossEntropy, lambda z: z.softmax(-1), shape=(5, 7, 16))
    assert verdict.status == "confirmed" and verdict.data["class_dim"] == 2
    assert judge(NllOnLogits, lambda z: z.log_softmax(-1), shape=(5, 7, 16)).data["class_dim"] == 2


def test_the_first_tensor_of_a_tuple_is_the_prediction():
    verdict = judge(SoftmaxIntoCrossEntropy, lambda z: (z.softmax(1), z))
    assert verdict.status == "confirmed" and "the first of its tuple of 2" in verdict.evidence


@pytest.mark.parametrize(
    ("then", "said"),
    [
        (lambda z: {"logits": z}, "returns a dict (keys logits)"),
        (lambda z: z.argmax(1), "torch.int64 tensor"),
        (lambda z: z.sum(), "shape ()"),
        (lambda z: "text", "returns a str"),
    ],
)
def test_an_output_that_cannot_be_read_is_unverifiable(then, said):
    verdict = judge(NllOnLogits, then)
    assert verdict.status == "unverifiable" and said in verdict.evidence


def test_a_model_that_cannot_be_built_is_unverifiable_with_why():
    verdict = judge(DoubleSigmoid, None)
    assert verdict.status == "unverifiable" and verdict.evidence == "Net cannot be built"


def test_an_activation_written_in_the_script_is_not_judged_on_the_model():
    finding = ProbeFinding("NN501", "/x/train.py", 3, "", {"built_by": "Net", "applied_by": "script"})
    verdict = SoftmaxIntoCrossEntropy.runtime_check(finding, FakeSession(Ends(lambda z: z)))
    assert verdict.status == "unverifiable" and "applied by the training code" in verdict.evidence
