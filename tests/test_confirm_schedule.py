"""Schedule simulation (NN401, NN402): the real torch scheduler, stepped as the code steps it, judges the finding.

The checks need no model and no session: most tests lint a training script and hand its finding to the
rule's runtime check in this process. One goes through the sandbox, for a script with no model at all.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from conftest import invoke

from nnlint.confirm.protocol import ProbeFinding
from nnlint.rule import rule_by_code
from nnlint.static import lint_source

pytest.importorskip("torch")
from nnlint.confirm import schedule as simulation  # noqa: E402  (needs torch)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCHEDULES = FIXTURES / "confirm" / "schedules"


def judged(source: str, code: str):
    """The one `code` finding of `source`, and the verdict of its runtime check."""
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [rule_by_code(code)], max_file_size=10**7)
    (finding,) = result.findings
    probe = ProbeFinding(code, "train.py", finding.line, finding.message, finding.facts)
    return finding, rule_by_code(code).runtime_check(probe, None)


def verdict(code: str, **facts):
    """The runtime check on facts the static rule never produces (a schedule that fits its run)."""
    return rule_by_code(code).runtime_check(ProbeFinding(code, "train.py", 1, "", facts), None)


# -- NN401 -------------------------------------------------------------------------------------


def test_the_imagenet_step_in_a_20_epoch_run_never_fires():
    _, result = judged((SCHEDULES / "short_run.py").read_text(), "NN401")
    assert result.status == "confirmed"
    assert "StepLR(step_size=30, gamma=0.1) stepped once per epoch over the 20-epoch run" in result.evidence
    assert "from epoch 0 to 19, so the decay never fires" in result.evidence
    assert result.data["lr"] == {"start": 1.0, "decays": [], "half": [10, 1.0], "end": [19, 1.0]}
    assert "per_batch" not in result.data


def test_a_milestone_beyond_the_run_is_confirmed_with_the_decays_it_reaches():
    _, result = judged(rule_by_code("NN401").bad[1].code, "NN401")  # MultiStepLR([30, 60]) over 40 epochs
    assert result.status == "confirmed"
    assert "falls to 0.1x at epoch 30 and stays there to epoch 39: milestone 60 lies beyond the run" in result.evidence
    assert result.data["lr"]["decays"] == [[30, pytest.approx(0.1)]]


def test_a_300_epoch_run_falls_below_a_thousandth_before_half_of_training():
    _, result = judged(rule_by_code("NN401").bad[5].code, "NN401")
    assert result.status == "confirmed"
    assert "below 0.001x from epoch 120, before half of training (epoch 150)" in result.evidence
    assert [epoch for epoch, _ in result.data["lr"]["decays"]] == list(range(30, 300, 30))
    assert result.data["lr"]["half"] == [150, pytest.approx(1e-5)]


def test_a_decay_below_a_thousandth_late_in_the_run_is_confirmed():
    source = next(e.code for e in rule_by_code("NN401").bad if "ExponentialLR(optimizer, gamma=0.9)" in e.code)
    _, result = judged(source, "NN401")
    assert result.status == "confirmed"
    assert "below 0.001x from epoch 66, for the last 34 epochs, and at 2.95e-05x in the last epoch" in result.evidence


def test_a_lambda_decay_is_simulated_as_the_step_lr_it_equals():
    _, result = judged(rule_by_code("NN401").bad[3].code, "NN401")
    assert result.status == "confirmed"
    assert "LambdaLR(`0.1 ** (epoch // 30)`) as StepLR(step_size=30, gamma=0.1)" in result.evidence


@pytest.mark.parametrize(
    ("schedule", "epochs", "half", "end"),
    [
        ({"scheduler": "StepLR", "step_size": 30, "gamma": 0.1}, 90, 0.1, 0.01),  # the ImageNet reference script
        ({"scheduler": "MultiStepLR", "milestones": [30, 60, 90], "gamma": 0.1}, 100, 0.1, 0.001),
    ],
)
def test_a_schedule_that_fits_its_run_is_refuted(schedule, epochs, half, end):
    result = verdict("NN401", schedule=schedule, epochs=epochs, epochs_from="`range(90)`", stepping="per epoch")
    assert result.status == "refuted"
    assert result.evidence.endswith("in the last epoch: the schedule fits the run")
    assert result.data["lr"]["half"] == [epochs // 2, pytest.approx(half)]
    assert result.data["lr"]["end"] == [epochs - 1, pytest.approx(end)]


def test_stepped_every_batch_the_evidence_also_says_what_the_code_does():
    _, result = judged((FIXTURES / "buggy_vit" / "train.py").read_text(), "NN401")
    assert result.status == "confirmed"  # judged once per epoch, as the recipe is meant: it never fires in 20
    assert "the decay never fires; stepped every batch as the code does (assumed 100 batches/epoch)" in result.evidence
    assert "it is at 0.1x after 30 batches and 0.001x after one epoch (NN402)" in result.evidence
    assert result.data["per_batch"]["after_one_epoch"] == pytest.approx(1e-3)
    assert result.data["per_batch"]["below_floor_after_batches"] == 120  # 0.1**3 is not below 1e-3


# -- NN402 -------------------------------------------------------------------------------------


def test_a_step_lr_stepped_every_batch_decays_after_30_batches():
    _, result = judged((FIXTURES / "buggy_vit" / "train.py").read_text(), "NN402")
    assert result.status == "confirmed"
    assert "after 30 batches the LR is at 0.1x (stepped once per epoch: 1x)" in result.evidence
    assert result.data["lr"]["after_one_epoch"] == {
        "batches": 100, "per_batch": pytest.approx(1e-3), "per_epoch": 1.0,
    }  # fmt: skip
    assert result.data["batches_per_epoch_assumed"] is True


def test_a_cosine_over_epochs_stepped_every_batch_reaches_its_minimum_in_the_first_epoch():
    _, result = judged((SCHEDULES / "cosine_per_batch.py").read_text(), "NN402")
    assert result.status == "confirmed"
    parting = result.data["lr"]["parting"]
    assert parting["batches"] == 16  # T_max=30: (1 + cos(pi * 16 / 30)) / 2 < 0.5
    assert parting["per_batch"] == pytest.approx((1 + math.cos(math.pi * 16 / 30)) / 2)
    assert parting["per_epoch"] == 1.0


def test_a_lambda_decay_stepped_every_batch_parts_at_its_period():
    source = """
    import torch
    from torch.optim import lr_scheduler

    def main(args, model, train_loader, opt):
        scheduler = lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** (e // 10))
        for epoch in range(args.epochs):
            for x, y in train_loader:
                opt.step()
                scheduler.step()
    """
    finding, result = judged(source, "NN402")
    assert finding.facts["schedule"]["scheduler"] == "StepLR"
    assert result.status == "confirmed"
    assert "LambdaLR(`0.5 ** (e // 10)`) as StepLR(step_size=10, gamma=0.5)" in result.evidence
    assert result.data["lr"]["parting"] == {"batches": 20, "per_batch": 0.25, "per_epoch": 1.0}


def test_a_gentle_decay_over_a_one_epoch_run_is_refuted():
    _, result = judged((SCHEDULES / "finetune_one_epoch.py").read_text(), "NN402")
    assert result.status == "refuted"
    assert "stays within 2x of stepping once per epoch over the 1-epoch run" in result.evidence
    assert result.data["lr"]["last_batch"]["per_batch"] == pytest.approx(0.994**99)


def test_a_gentle_decay_over_an_unknown_length_is_unverifiable():
    source = (SCHEDULES / "finetune_one_epoch.py").read_text().replace("range(EPOCHS)", "range(args.epochs)")
    source = source.replace("def finetune(model, train_loader)", "def finetune(args, model, train_loader)")
    finding, result = judged(source, "NN402")
    assert finding.facts["epochs"] is None
    assert result.status == "unverifiable"
    assert "the run's length is not in the source" in result.evidence


def test_an_argument_with_no_number_makes_it_unverifiable_but_a_resume_point_does_not():
    source = """
    import torch
    from torch.optim.lr_scheduler import CosineAnnealingLR

    EPOCHS = 30

    def main(args, model, train_loader, opt):
        scheduler = CosineAnnealingLR(opt, T_max=EPOCHS, eta_min=args.min_lr, last_epoch=args.start_epoch - 1)
        for epoch in range(EPOCHS):
            for x, y in train_loader:
                opt.step()
                scheduler.step()
    """
    _, result = judged(source, "NN402")
    assert result.status == "unverifiable"
    assert result.evidence.startswith("the source gives no number for eta_min (`args.min_lr`)")
    _, result = judged(source.replace("eta_min=args.min_lr, ", ""), "NN402")
    assert result.status == "confirmed"


# -- the simulation itself -----------------------------------------------------------------------


def test_simulate_steps_the_real_torch_scheduler_from_an_lr_of_one():
    lrs = simulation.simulate({"scheduler": "MultiStepLR", "milestones": [2, 4], "gamma": 0.5}, 5)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert simulation.changes(lrs) == [2, 4]
    assert simulation.first_below(lrs, 0.5) == 4  # 0.5 itself is not below 0.5


def test_what_cannot_be_simulated_says_why():
    with pytest.raises(simulation.ScheduleError, match="torch rejects StepLR"):
        simulation.simulate({"scheduler": "StepLR", "gamma": 0.1}, 3)  # no step_size
    with pytest.raises(simulation.ScheduleError, match="too many to simulate"):
        simulation.simulate({"scheduler": "StepLR", "step_size": 3}, simulation.MAX_STEPS + 1)


def test_a_schedule_slower_than_an_epoch_does_not_part():
    run = simulation.per_batch_run({"scheduler": "StepLR", "step_size": 150, "gamma": 0.1}, epochs=1)
    assert run.parting() is None  # 100 batches never reach its 150-step period
    assert simulation.first_epoch(run.per_batch, run.batches_per_epoch) == "it stays at 1x for the whole first epoch"
    assert simulation.differ_materially(0.0, 1e-3) and not simulation.differ_materially(0.0, 1e-15)


# -- through the sandbox ---------------------------------------------------------------------------


UNBUILDABLE_MODEL_AND_SCHEDULE = """
import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR

EPOCHS = 20


def gpu_only_layer(*args):
    raise RuntimeError("needs a GPU")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = gpu_only_layer(10, 2)


def main(model, train_loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = StepLR(optimizer, 30, 0.1)
    for epoch in range(EPOCHS):
        for x, y in train_loader:
            optimizer.step()
        scheduler.step()
"""


def test_schedules_are_judged_in_scripts_without_a_model_or_whose_model_cannot_be_built(tmp_path, monkeypatch):
    (tmp_path / "train.py").write_text((FIXTURES / "buggy_vit" / "train.py").read_text())  # imports absent modules
    (tmp_path / "single_file.py").write_text(UNBUILDABLE_MODEL_AND_SCHEDULE)
    monkeypatch.chdir(tmp_path)
    report = invoke(".", "--confirm", "--format", "json").json()
    assert {(f["path"], f["line"], f["code"]): f["status"] for f in report["findings"]} == {
        ("single_file.py", 21, "NN401"): "confirmed",
        ("train.py", 46, "NN401"): "confirmed",
        ("train.py", 57, "NN402"): "confirmed",
    }
    assert report["errors"] == []
