"""NN402 beyond its examples: which schedulers count in epochs when stepped inside the batch loop."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source


def messages(source: str) -> list[str]:
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [rule_by_code("NN402")], max_file_size=10**7)
    assert not result.diagnostics
    return [finding.message for finding in result.findings]


def stepped_per_batch(construction: str, step: str = "scheduler.step()") -> str:
    return f"""
    import torch
    from torch.optim import lr_scheduler

    def main(args, model, train_loader, opt):
        scheduler = {construction}
        for epoch in range(args.epochs):
            for i, (x, y) in enumerate(train_loader):
                opt.step()
                if (i + 1) % args.accumulation_steps == 0:
                    {step}
    """


@pytest.mark.parametrize(
    ("construction", "expected"),
    [
        (
            "lr_scheduler.StepLR(opt, step_size=args.decay_epochs)",
            "it decays after `args.decay_epochs` batches, not `args.decay_epochs` epochs",
        ),
        ("lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** (e // 10))", "it decays every 10 batches, not every 10 epochs"),
        ("lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)", "count T_max in batches (epochs * len(loader))"),
        ("lr_scheduler.ExponentialLR(opt, 0.9)", "ExponentialLR(gamma=0.9) is stepped every batch"),
    ],
)
def test_an_epoch_schedule_stepped_per_optimizer_step_is_reported(construction, expected):
    (message,) = messages(stepped_per_batch(construction))
    assert expected in message
    assert "(loop `for i, (x, y) in enumerate(train_loader)` at line 8)" in message


@pytest.mark.parametrize(
    "construction",
    [
        "lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=args.epochs * len(train_loader))",
        "lr_scheduler.CyclicLR(opt, base_lr=1e-4, max_lr=1e-2)",
        "lr_scheduler.ExponentialLR(opt, gamma=0.9999)",
        "lr_scheduler.StepLR(opt, step_size=5000)",
        "lr_scheduler.StepLR(opt, step_size=args.decay_every)",  # a size the file does not give
        "lr_scheduler.MultiStepLR(opt, milestones=[30000, 60000])",
        "lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * len(train_loader))",
        "lr_scheduler.LambdaLR(opt, lambda step: min(1.0, step / 1000))",
        "lr_scheduler.ReduceLROnPlateau(opt, patience=1000)",
    ],
)
def test_a_schedule_meant_per_step_is_not_reported(construction):
    assert messages(stepped_per_batch(construction)) == []


def test_a_step_with_an_explicit_epoch_or_metric_is_not_reported():
    assert messages(stepped_per_batch("lr_scheduler.StepLR(opt, 30)", "scheduler.step(epoch + i / 100)")) == []


def test_a_variable_that_may_hold_a_per_step_scheduler_is_not_reported():
    source = """
    from torch.optim.lr_scheduler import OneCycleLR, StepLR

    def main(args, opt, train_loader):
        if args.sched == "onecycle":
            scheduler = OneCycleLR(opt, max_lr=0.1, total_steps=args.steps)
        else:
            scheduler = StepLR(opt, 30)
        for epoch in range(args.epochs):
            for x, y in train_loader:
                opt.step()
                scheduler.step()
    """
    assert messages(source) == []


@pytest.mark.parametrize(
    ("step_in_batch_loop", "reported"),
    [(True, True), (False, False)],
)
def test_a_module_level_scheduler_stepped_in_a_function_called_once_per_epoch(step_in_batch_loop, reported):
    indent = " " * 8 if step_in_batch_loop else " " * 4
    source = f"""
import torch
from torch.optim.lr_scheduler import StepLR

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = StepLR(optimizer, step_size=30, gamma=0.1)

def train(epoch):
    for batch_idx, (data, target) in enumerate(train_loader):
        optimizer.zero_grad()
        criterion(model(data), target).backward()
        optimizer.step()
{indent}scheduler.step()

for epoch in range(1, 91):
    train(epoch)
"""
    found = messages(source)
    assert bool(found) is reported
    if reported:
        assert "StepLR(step_size=30) is stepped every batch" in found[0]


def test_a_trainer_method_called_per_batch_from_an_epoch_loop_two_calls_up():
    source = """
    import torch
    from torch.optim.lr_scheduler import CosineAnnealingLR

    class Trainer:
        def __init__(self, model, loader, epochs=50):
            self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            self.scheduler = CosineAnnealingLR(self.optimizer, T_max=epochs)
            self.loader, self.epochs = loader, epochs

        def training_step(self, batch):
            self.optimizer.step()
            self.scheduler.step()

        def run_epoch(self):
            for batch in self.loader:
                self.training_step(batch)

        def fit(self):
            for epoch in range(self.epochs):
                self.run_epoch()
    """
    (message,) = messages(source)
    assert "CosineAnnealingLR(T_max=50) is stepped every batch (loop `for batch in self.loader`" in message
