"""NN401 beyond its examples: where the ImageNet schedule stops fitting the run, and the cases it leaves alone."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source


def findings(source: str):
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [rule_by_code("NN401")], max_file_size=10**7)
    assert not result.diagnostics
    return result.findings


def messages(source: str) -> list[str]:
    return [finding.message for finding in findings(source)]


def run_of(epochs: int, schedule: str) -> str:
    return f"""
    import torch
    from torch.optim.lr_scheduler import MultiStepLR, StepLR

    def fit(model, loader, opt):
        scheduler = {schedule}
        for epoch in range({epochs}):
            for x, y in loader:
                opt.step()
            scheduler.step()
    """


@pytest.mark.parametrize(
    ("epochs", "schedule", "expected"),
    [
        (30, "StepLR(opt, 30)", "never decays in a 30-epoch run"),
        (80, "MultiStepLR(opt, [30, 60, 90])", "reaches only the first 2 of 3 milestones in an 80-epoch run"),
        (250, "StepLR(opt, 30, 0.1)", "decays 8 times in a 250-epoch run, below 0.001x the initial LR from epoch 120"),
        (240, "StepLR(opt, 30)", "decays 7 times in a 240-epoch run, below 0.001x the initial LR from epoch 120"),
        (60, "StepLR(opt, 5, 0.5)", "decays 11 times in a 60-epoch run, below 0.001x the initial LR from epoch 50"),
        (40, "MultiStepLR(opt, [10, 20, 30], gamma=0.05)", "below 0.001x the initial LR from epoch 30 and at 0.00013x in its last epoch"),
        (80, "torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)", "decays every epoch in an 80-epoch run"),
        (30, "StepLR(opt, step_size=1, gamma=0.7)", "below 0.001x the initial LR from epoch 20"),
    ],
)
def test_a_schedule_that_does_not_fit_the_run_is_reported(epochs, schedule, expected):
    """Never decays; milestones past the end; below 1e-3 of the start within the run."""
    (message,) = messages(run_of(epochs, schedule))
    assert expected in message
    assert f"CosineAnnealingLR(T_max={epochs})" in message


@pytest.mark.parametrize(
    ("epochs", "schedule"),
    [
        (31, "StepLR(opt, 30)"),  # decays once, at epoch 30
        (90, "MultiStepLR(opt, [30, 60, 90])"),  # the last milestone falls on the end of the run
        (120, "StepLR(opt, 30)"),  # three decays: 1e-3 of the start is not below it
        (65, "torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)"),  # 0.9 ** 64 = 1.2e-3
        (20, "StepLR(opt, step_size=1, gamma=0.7)"),  # 0.7 ** 19 = 1.1e-3
        (200, "StepLR(opt, 2000, 0.1)"),  # not the recipe, and it never decays: a period in steps, stepped per epoch
        (200, "torch.optim.lr_scheduler.ExponentialLR(opt, 1.05)"),  # not a decay
        (20, "StepLR(opt, 30, 0.5)"),  # not the ImageNet recipe
        (20, "MultiStepLR(opt, [10, 15])"),  # scaled to the run
        (20, "StepLR(opt, 30, args.gamma)"),  # gamma not in the file: not known to be the recipe's 0.1
        (20, "MultiStepLR(opt, [30, 60], gamma=cfg.gamma)"),
    ],
)
def test_a_schedule_that_fits_the_run_or_is_not_the_recipe_is_not_reported(epochs, schedule):
    assert messages(run_of(epochs, schedule)) == []


def test_two_disagreeing_training_lengths_are_not_guessed_between():
    source = """
    import argparse
    from torch.optim.lr_scheduler import StepLR

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    def main(opt):
        scheduler = StepLR(opt, 30)
        return scheduler

    main(opt, epochs=90)
    """
    assert messages(source) == []


def test_the_facts_carry_what_the_runtime_simulation_needs():
    (finding,) = findings(run_of(40, "MultiStepLR(opt, milestones=[30, 60])"))
    assert finding.facts == {
        "schedule": {"scheduler": "MultiStepLR", "milestones": [30, 60], "gamma": 0.1},
        "epochs": 40,
        "epochs_from": "`range(40)`",
        "epochs_line": 7,
        "stepping": "per epoch",
    }


def test_a_unit_test_of_a_scheduler_is_not_a_training_run():
    source = """
    import torch
    from torch.optim.lr_scheduler import StepLR

    def test_step_lr_keeps_the_lr_before_its_step_size():
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
        for epoch in range(10):
            scheduler.step()
        assert optimizer.param_groups[0]["lr"] == 1.0
    """
    assert messages(source) == []


def test_a_decay_stepped_every_batch_is_left_to_nn402_unless_it_is_the_recipe():
    source = """
    import torch

    def fit(model, loader, opt):
        scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)
        for epoch in range(200):
            for x, y in loader:
                opt.step()
                scheduler.step()
    """
    assert messages(source) == []


def test_a_module_level_scheduler_stepped_in_a_function_the_epoch_loop_calls():
    source = """
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)

    def train(epoch):
        for x, y in train_loader:
            optimizer.step()
        scheduler.step()

    if __name__ == "__main__":
        for epoch in range(20):
            train(epoch)
    """
    (message,) = messages(source)
    assert "never decays in a 20-epoch run (epochs from `range(20)` at line 13)" in message


def test_a_hand_written_iteration_decay_is_not_an_epoch_schedule():
    source = """
    def adjust_lr(optimizer, iteration, base_lr=0.1, epochs=100):
        lr = base_lr * 0.9 ** iteration
        for group in optimizer.param_groups:
            group["lr"] = lr
    """
    assert messages(source) == []
