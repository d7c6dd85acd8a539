from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.script import Script, script_model
from nnlint.script.length import StepContext, TrainingLength
from nnlint.script.schedules import PeriodicDecay, Scheduler

_PERIOD = 30  # the ImageNet recipe: LR / 10 every 30 epochs
_GAMMA = 0.1
_MILESTONES = (30, 60)
# The confirmation threshold of RULES.md: a schedule that takes the LR below this fraction of its
# start within the run trains its last epochs at an LR too small to learn anything.
_LR_FLOOR = 1e-3


@dataclass(frozen=True)
class _Schedule:
    """A step decay, however the file wrote it (StepLR, MultiStepLR, ExponentialLR, LambdaLR, by hand)."""

    written: str  # how the message names it
    node: cst.CSTNode  # where it is reported
    gamma: float
    period: int | None  # StepLR, ExponentialLR (1), LambdaLR, by hand: every `period` epochs
    milestones: tuple[int, ...]  # MultiStepLR
    stepped: list[StepContext]  # where its steps run (for a hand-written decay: where it is computed)
    source: dict  # what the runtime simulation builds: a torch scheduler and its arguments
    recipe: bool  # the ImageNet recipe itself: x0.1 every 30 epochs, or at epochs 30, 60(, 90)
    floored: bool = False  # `max(decay, min_lr)`: the LR never goes below the floor

    def decays_before(self, epoch: float) -> list[int]:
        """The epochs at which the LR drops, before `epoch` (stepped once per epoch, as the recipe does)."""
        if self.period:
            return list(range(self.period, math.ceil(epoch), self.period))
        return [milestone for milestone in self.milestones if milestone < epoch]

    def decay_epoch(self, count: int) -> int | None:
        """The epoch of the `count`-th decay (1-based), if the schedule has one."""
        if self.period:
            return count * self.period
        return self.milestones[count - 1] if count <= len(self.milestones) else None

    def first_below_floor(self) -> int | None:
        """The epoch from which the LR is below `_LR_FLOOR` of its start (0.1**3 is not below 1e-3)."""
        if self.floored:
            return None
        count = max(1, math.floor(math.log(_LR_FLOOR) / math.log(self.gamma)))
        while not (self.gamma**count < _LR_FLOOR and not math.isclose(self.gamma**count, _LR_FLOOR)):
            count += 1
        return self.decay_epoch(count)


@dataclass(frozen=True)
class _Misfit:
    """What the schedule does over the run that its author cannot have meant."""

    text: str  # "never decays in a 20-epoch run"
    idle_from: int | None = None  # the epoch from which the LR is below the floor, for a decay too deep


def _is_recipe_gamma(gamma: object) -> bool:
    return isinstance(gamma, (int, float)) and math.isclose(gamma, _GAMMA)


def _is_recipe_milestones(milestones: object) -> bool:
    """[30, 60], [30, 60, 90], [30, 60, 80]: the ImageNet milestones, however many follow."""
    return isinstance(milestones, list) and tuple(milestones[:2]) == _MILESTONES and milestones == sorted(milestones)


def _is_decay(gamma: object) -> bool:
    return isinstance(gamma, (int, float)) and 0 < gamma < 1


def _article(number: int) -> str:
    """"an 80-epoch run", "an 11-epoch run", "a 20-epoch run"."""
    digits = str(number)
    return "an" if digits[0] == "8" or (digits[:2] in ("11", "18") and len(digits) % 3 == 2) else "a"


def _over_the_run(schedule: _Schedule, epochs: int) -> _Misfit | None:
    """What the schedule does over `epochs` epochs, if that is not what its author meant; None if it fits."""
    run = f"{_article(epochs)} {epochs}-epoch run"
    decays = schedule.decays_before(epochs)
    if schedule.recipe and not decays:
        return _Misfit(f"never decays in {run}")
    if schedule.recipe and any(milestone > epochs for milestone in schedule.milestones):
        first = "the first" if len(decays) == 1 else f"the first {len(decays)}"
        return _Misfit(f"reaches only {first} of {len(schedule.milestones)} milestones in {run}")
    below = schedule.first_below_floor()
    if below is None or below >= epochs:
        return None
    how = "decays every epoch" if schedule.period == 1 else f"decays {len(decays)} times"
    return _Misfit(
        f"{how} in {run}, below {_LR_FLOOR:g}x the initial LR from epoch {below} "
        f"and at {schedule.gamma ** len(decays):.2g}x in its last epoch",
        below,
    )


class ImagenetLrSchedule(Rule):
    """
    ## What it does
    Flags the ImageNet learning-rate schedule — divide the LR by 10 every 30
    epochs: `StepLR(optimizer, 30, 0.1)`, `MultiStepLR(optimizer, [30, 60])`,
    `LambdaLR(optimizer, lambda epoch: 0.1 ** (epoch // 30))`, or by hand,
    `lr = base_lr * 0.1 ** (epoch // 30)` — in a script whose own training
    length does not fit it: it never decays or reaches only some of its
    milestones. Flags too any step decay that takes the LR below 1e-3 of
    its start within the run — `StepLR`, `MultiStepLR`, `ExponentialLR`, a
    `LambdaLR` or hand-written `lr = base_lr * gamma ** (epoch // n)` or
    `gamma ** epoch` — with the factor it reaches and the epoch it falls
    below 1e-3 (the ImageNet step in a 200-epoch run ends at 1e-6).

    The training length is read from the code: the epoch loop that steps the
    scheduler (`for epoch in range(20)`, `range(start_epoch, args.epochs)`
    with `add_argument("--epochs", default=20)`, `num_epochs = 20`,
    `{"epochs": 20}`, a dataclass field `epochs: int = 20`), or, when the
    steps are not in the file, its one epoch count (`Trainer(max_epochs=20)`).

    ## Why is this bad?
    The schedule was tuned for 90 epochs of ImageNet. Copied into a 20-epoch
    run it never fires, so the model trains at its initial LR throughout and
    never gets the late low-LR phase where most of the accuracy is won. A
    decay that goes on past 1e-3 of the starting LR (a fourth x0.1 step,
    `ExponentialLR(0.9)` over 100 epochs) leaves the last epochs training
    at an LR too small to move the weights: that compute is wasted.
    Nothing fails, the result is just worse.

    ## Example
    ```python
    parser.add_argument("--epochs", type=int, default=20)
    ...
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(args.epochs):
        train_one_epoch(model, train_loader, optimizer)
        scheduler.step()
    ```

    ## Use instead
    Scale the milestones to the run, or use a schedule defined by it:
    ```python
    scheduler = CosineAnnealingLR(optimizer, T_max=args.epochs)
    ```

    ## Known problems
    When the code does not say how long it trains (the epoch count comes
    from a YAML file or another module, or two places disagree), nothing is
    reported: the ImageNet reference scripts use exactly this schedule, and
    a linter that cannot tell a copy from the original must stay silent.
    The ImageNet schedule stepped every batch is reported here only when it
    does not fit the run in epochs either; the stepping itself is NN402's
    finding, and any other decay stepped every batch is left to NN402 (its
    period may count batches). A decay under a floor (`max(lr * 0.1 **
    (epoch // 30), min_lr)`) is not judged too deep, nor is a cosine or
    linear schedule, which ends near zero by design. A hand-written decay
    other than the recipe counts only when it computes an LR (`lr = ...`,
    `group["lr"] = ...`, returned by `adjust_learning_rate`).

    ## Runtime confirmation
    `--confirm` builds the real torch scheduler (`StepLR`/`MultiStepLR`/
    `ExponentialLR`, or the `StepLR` a `LambdaLR` or hand-written decay is
    equal to) on a dummy
    optimizer with the arguments found, steps it once per epoch over the
    training length found, and reports the LR (as a multiple of the initial
    LR) at each decay, at half of training and in the last epoch. Confirmed
    when the decay never fires within the run, when a milestone lies beyond
    it, or when the LR falls below 1e-3 of its start within the run;
    refuted otherwise. When the code steps it every batch, the
    evidence also says what that does, assuming 100 batches per epoch (a
    loader's length is not in the source); that is NN402's finding.

    ## From the recipe
    Karpathy, "A Recipe for Training Neural Networks" (step 3, overfit):
    "don't trust learning rate decay defaults ... E.g. ImageNet would decay
    by 10 on epoch 30. If you're not training ImageNet then you almost
    certainly do not want this." He disables decay until the very end and
    tunes it then; the lecture in the sources gives "multiply the LR by 0.1
    every 30 epochs" as the step schedule's example, for ImageNet's length.
    """

    code = "NN401"
    name = "imagenet-lr-schedule"
    severity = "warning"
    summary = "The ImageNet LR schedule in a run it does not fit, or a step decay that ends below 1e-3 of the LR"
    triggers = ("StepLR", "LambdaLR", "ExponentialLR", "0.1 **", "0.1**", "** (epoch", "**(epoch", "** epoch", "**epoch")

    bad = [
        Example(
            """
import argparse

import torch
from torch.optim.lr_scheduler import StepLR

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
args = parser.parse_args()

model = torch.nn.Linear(10, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
scheduler = StepLR(optimizer, step_size=30, gamma=0.1)  # <--

for epoch in range(args.epochs):
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    scheduler.step()
""",
            note="the training length from an argparse default",
            message=(
                "StepLR(step_size=30, gamma=0.1) never decays in a 20-epoch run "
                "(epochs from `--epochs` default 20 at line 8)"
            ),
        ),
        Example(
            """
from torch import optim

def fit(model, train_loader, criterion):
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[30, 60])  # <--
    for epoch in range(40):
        for images, labels in train_loader:
            optimizer.zero_grad()
            criterion(model(images), labels).backward()
            optimizer.step()
        scheduler.step()
""",
            message="reaches only the first of 2 milestones in a 40-epoch run (epochs from `range(40)` at line 7)",
        ),
        Example(
            """
import torch

BASE_LR = 0.1
NUM_EPOCHS = 25

def adjust_learning_rate(optimizer, epoch):
    lr = BASE_LR * (0.1 ** (epoch // 30))  # <--
    for group in optimizer.param_groups:
        group["lr"] = lr

def main(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=BASE_LR)
    for epoch in range(NUM_EPOCHS):
        adjust_learning_rate(optimizer, epoch)
        train(model, loader, optimizer)
""",
            note="decay written by hand, in a function called once per epoch",
            message="never decays in a 25-epoch run (epochs from `NUM_EPOCHS = 25`",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import LambdaLR

config = {"lr": 0.1, "epochs": 15}

def main(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"])
    scheduler = LambdaLR(optimizer, lambda epoch: 0.1 ** (epoch // 30))  # <--
    for epoch in range(config["epochs"]):
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="LambdaLR doing the same; the length from a config dict",
            message="never decays in a 15-epoch run",
        ),
        Example(
            """
import pytorch_lightning as pl
import torch
from torch.optim.lr_scheduler import StepLR

class LitClassifier(pl.LightningModule):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        return [optimizer], [StepLR(optimizer, 30)]  # <--

if __name__ == "__main__":
    trainer = pl.Trainer(max_epochs=20)
    trainer.fit(LitClassifier())
""",
            note="Lightning steps the scheduler per epoch; the length from Trainer(max_epochs=...)",
            message="never decays in a 20-epoch run (epochs from `max_epochs=20` at line 12)",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import StepLR

def train(model, train_loader, epochs=300):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = StepLR(optimizer, 30)  # <--
    for epoch in range(epochs):
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        scheduler.step()
""",
            note="a run so long that the schedule ends training early",
            message="decays 9 times in a 300-epoch run, below 0.001x the initial LR from epoch 120",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import StepLR

EPOCHS = 20

def main(model, train_loader):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    scheduler = StepLR(optimizer, 30, 0.1)  # <--
    for epoch in range(EPOCHS):
        for step, (images, labels) in enumerate(train_loader):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
""",
            note="also stepped every batch (NN402 reports the step): the message says both",
            message="stepped every batch (loop at line 11) it decays 10x every 30 batches (NN402)",
        ),
        Example(
            """
import torch.nn.functional as F
import torch.optim as optim

start_epoch = 0
optimizer = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)  # <--

def train(epoch):
    net.train()
    for batch_idx, (inputs, targets) in enumerate(trainloader):
        optimizer.zero_grad()
        F.cross_entropy(net(inputs), targets).backward()
        optimizer.step()

for epoch in range(start_epoch, start_epoch + 200):
    train(epoch)
    test(epoch)
    scheduler.step()
""",
            note="the recipe's step with more decays than its three: a CIFAR script's 200 epochs",
            message=(
                "decays 6 times in a 200-epoch run, below 0.001x the initial LR from epoch 120 and at 1e-06x in "
                "its last epoch (epochs from `range(start_epoch, start_epoch + 200)` at line 16): its last 80 epochs"
            ),
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import MultiStepLR

def fit(model, loader, num_epochs=250):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = MultiStepLR(optimizer, milestones=[50, 100, 150, 200], gamma=0.1)  # <--
    for epoch in range(num_epochs):
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="four x0.1 milestones",
            message="decays 4 times in a 250-epoch run, below 0.001x the initial LR from epoch 200",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import ExponentialLR

EPOCHS = 100

def main(model, train_loader):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = ExponentialLR(optimizer, gamma=0.9)  # <--
    for epoch in range(EPOCHS):
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        scheduler.step()
""",
            message=(
                "ExponentialLR(gamma=0.9) decays every epoch in a 100-epoch run, below 0.001x the initial LR from "
                "epoch 66 and at 3e-05x in its last epoch"
            ),
        ),
        Example(
            """
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=150)
args = parser.parse_args()

def adjust_learning_rate(optimizer, epoch):
    lr = args.lr * (0.5 ** (epoch // 10))  # <--
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr

for epoch in range(args.epochs):
    adjust_learning_rate(optimizer, epoch)
    train(epoch)
""",
            note="a hand-written decay halving every 10 epochs",
            message="`0.5 ** (epoch // 10)` decays 14 times in a 150-epoch run, below 0.001x the initial LR from epoch 100",
        ),
        Example(
            """
BASE_LR = 0.01
NUM_EPOCHS = 200

def lr_at(epoch):
    return BASE_LR * 0.95 ** epoch  # <--

def main(model, optimizer, loader):
    for epoch in range(NUM_EPOCHS):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch)
        train(model, loader, optimizer)
""",
            note="a hand-written exponential decay",
            message="decays every epoch in a 200-epoch run, below 0.001x the initial LR from epoch 135",
        ),
        Example(
            """
import torch

def main(model, loader, epochs=300):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.96 ** epoch)  # <--
    for epoch in range(epochs):
        train(model, loader, optimizer)
        scheduler.step()
""",
            message="LambdaLR(`0.96 ** epoch`) decays every epoch in a 300-epoch run, below 0.001x the initial LR from epoch 170",
        ),
    ]
    good = [
        Example(
            """
import argparse

import torch
import torchvision


def get_args_parser():
    parser = argparse.ArgumentParser(description="PyTorch Classification Training")
    parser.add_argument("--model", default="resnet50", type=str)
    parser.add_argument("--epochs", default=90, type=int, metavar="N")
    parser.add_argument("--lr", default=0.1, type=float)
    parser.add_argument("--lr-step-size", default=30, type=int, help="decrease lr every step-size epochs")
    parser.add_argument("--lr-gamma", default=0.1, type=float, help="decrease lr by a factor of lr-gamma")
    parser.add_argument("--start-epoch", default=0, type=int, metavar="N")
    return parser


def main(args):
    model = torchvision.models.get_model(args.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step_size, gamma=args.lr_gamma)
    for epoch in range(args.start_epoch, args.epochs):
        train_one_epoch(model, criterion, optimizer, data_loader, device, epoch, args)
        lr_scheduler.step()
        evaluate(model, criterion, data_loader_test, device=device)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
""",
            note="trap: the ImageNet reference script itself (90 epochs, stepped per epoch)",
        ),
        Example(
            """
import torch
import yaml
from torch.optim.lr_scheduler import StepLR

cfg = yaml.safe_load(open("config.yaml"))

def main(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(cfg["epochs"]):
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="trap: the training length is not in the code, so the recipe may be right: nothing is reported",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import MultiStepLR

def fit(model, loader, num_epochs=100):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = MultiStepLR(optimizer, milestones=[30, 60, 90], gamma=0.1)
    for epoch in range(num_epochs):
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="the schedule fits a 100-epoch run",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import StepLR

def fit(model, loader, epochs=20):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = StepLR(optimizer, step_size=7, gamma=0.1)
    for epoch in range(epochs):
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="a step decay scaled to the run",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import StepLR

EPOCHS = 90

def main(model, train_loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = StepLR(optimizer, 30, 0.1)
    for epoch in range(EPOCHS):
        for images, labels in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
""",
            note="the schedule fits 90 epochs; stepping it every batch is NN402's finding, not this rule's",
        ),
        Example(
            """
BASE_LR = 0.01
MAX_ITERS = 90000
EPOCHS = 12

def lr_at(iteration):
    return BASE_LR * 0.1 ** (iteration // 30)
""",
            note="a decay counted in iterations, not epochs",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import StepLR

def train_model(model, dataloaders, criterion, optimizer, num_epochs=25):
    scheduler = StepLR(optimizer, step_size=7, gamma=0.1)
    for epoch in range(num_epochs):
        for phase in ["train", "val"]:
            for inputs, labels in dataloaders[phase]:
                pass
            if phase == "train":
                scheduler.step()
""",
            note="the transfer-learning tutorial's schedule: 7 epochs, scaled to 25",
        ),
        Example(
            """
import pytorch_lightning as pl
import torch
from torch.optim.lr_scheduler import StepLR

class LitClassifier(pl.LightningModule):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

trainer = pl.Trainer(max_epochs=20)
""",
            note="trap: Lightning steps it every optimizer step, as asked: 30 means 30 steps, not epochs",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import ExponentialLR, StepLR

def fit(model, loader, epochs=200):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = StepLR(optimizer, step_size=50, gamma=0.1)
    smooth = ExponentialLR(optimizer, gamma=0.97)
    for epoch in range(epochs):
        train(model, loader, optimizer)
        scheduler.step()
        smooth.step()
""",
            note="trap: decays that stay at or above 1e-3 of the start (0.1**3 at epoch 150; 0.97**199 = 2.3e-3)",
        ),
        Example(
            """
import torch

def adjust_learning_rate(optimizer, epoch, args):
    lr = max(args.lr * 0.1 ** (epoch // 30), 1e-5)
    for group in optimizer.param_groups:
        group["lr"] = lr

def main(model, loader, args, epochs=300):
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: max(0.95 ** e, 0.01))
    for epoch in range(epochs):
        adjust_learning_rate(optimizer, epoch, args)
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="trap: a floor under the decay (min_lr, a minimum factor) keeps the LR from vanishing",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

EPOCHS = 200

def main(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = CosineAnnealingLR(optimizer, T_max=EPOCHS, eta_min=1e-6)
    for epoch in range(EPOCHS):
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="trap: a cosine schedule ends at its eta_min by design",
        ),
        Example(
            """
import torch
import yaml
from torch.optim.lr_scheduler import ExponentialLR

cfg = yaml.safe_load(open("config.yaml"))

def main(model, loader):
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    scheduler = ExponentialLR(optimizer, gamma=0.9)
    for epoch in range(cfg["epochs"]):
        train(model, loader, optimizer)
        scheduler.step()
""",
            note="trap: the run length is not in the code, so how deep the decay goes is unknown",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import ExponentialLR

def main(model, train_loader, epochs=100):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    scheduler = ExponentialLR(optimizer, gamma=0.9999)
    for epoch in range(epochs):
        for images, labels in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
""",
            note="trap: a decay stepped every batch counts batches, not epochs",
        ),
        Example(
            """
def kl_weight(epoch):
    return 0.5 ** (epoch // 10)

def main(model, loader, optimizer):
    for epoch in range(200):
        beta = 0.9 ** epoch
        train(model, loader, optimizer, kl_weight(epoch), beta)
""",
            note="trap: a decay of something other than the LR",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = [_from_scheduler(script, scheduler) for scheduler in script.schedules.schedulers]
        for schedule in [*found, *_written_by_hand(script)]:
            if schedule is None:
                continue
            per_batch = any(where.stepping == "per batch" for where in schedule.stepped)
            if per_batch and not schedule.recipe:
                continue  # a period counted in batches is NN402's to judge; 30 and 0.1 are the epoch recipe's
            length = script.length.of(schedule.stepped)
            misfit = _over_the_run(schedule, length.epochs) if length else None
            if misfit is not None:
                self._report(script, schedule, length, misfit)

    def _report(self, script: Script, schedule: _Schedule, length: TrainingLength, misfit: _Misfit) -> None:
        origin = f"epochs from {length.origin} at line {script.line(length.origin_node)}"
        batch_loops = [where.batch_loop for where in schedule.stepped if where.stepping == "per batch"]
        fix = f"CosineAnnealingLR(T_max={length.epochs})"
        if batch_loops:
            # Stepped every batch, 30 means 30 batches (NN402 reports the step): say both what it does
            # here and why the recipe would not fit the run either.
            if schedule.period:
                per_batch = f"every {schedule.period} batches"
            else:
                per_batch = f"after {' and '.join(map(str, schedule.milestones))} batches"
            what = (
                f"is the ImageNet schedule ({origin}): stepped every batch (loop at line "
                f"{script.line(batch_loops[0])}) it decays 10x {per_batch} (NN402), and stepped once per epoch "
                f"it {misfit.text}; scale the milestones to your run or use {fix}"
            )
        elif misfit.idle_from is not None:
            remedy = "fewer milestones" if schedule.milestones else "a gamma nearer 1" if schedule.period == 1 else "a longer step"
            what = (
                f"{misfit.text} ({origin}): its last {length.epochs - misfit.idle_from} epochs train at an LR "
                f"too small to learn; decay less ({remedy}) or use {fix}"
            )
        else:
            what = (
                f"{misfit.text} ({origin}): the ImageNet schedule (LR / 10 at epochs 30 and 60 of 90) was copied; "
                f"scale the milestones to your run or use {fix}"
            )
        self.report(
            schedule.node,
            f"{schedule.written} {what}",
            facts={
                "schedule": schedule.source,
                "epochs": length.epochs,
                "epochs_from": length.origin,
                "epochs_line": script.line(length.origin_node),
                "stepping": "per batch" if batch_loops else "per epoch",
            },
        )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Step the real torch scheduler once per epoch over the run, the stepping the recipe was tuned for
        and the message judges; when the code steps it every batch, also say what that does."""
        from nnlint.confirm import schedule as simulation  # torch: only the confirm pass's child gets here

        facts = finding.facts
        schedule, epochs = facts["schedule"], facts["epochs"]
        batches = simulation.BATCHES_PER_EPOCH
        try:
            lrs = simulation.simulate(schedule, epochs)[:epochs]  # lrs[e]: the LR of epoch e
            per_batch = simulation.simulate(schedule, epochs * batches) if facts["stepping"] == "per batch" else None
        except simulation.ScheduleError as error:
            return unverifiable(str(error))
        decays, half, last = simulation.changes(lrs), epochs // 2, epochs - 1
        below = simulation.first_below(lrs, _LR_FLOOR)
        unreached = schedule.get("milestones", [])[len(decays) :]
        if not decays:
            misfit = f"the LR stays at its initial value from epoch 0 to {last}, so the decay never fires"
        elif unreached:
            beyond = f"milestone {unreached[0]} lies" if len(unreached) == 1 else f"milestones {unreached} lie"
            falls = simulation.falls(lrs, decays, "epoch")
            misfit = f"{falls} and stays there to epoch {last}: {beyond} beyond the run"
        elif below is not None:
            before = [epoch for epoch in decays if epoch <= below]
            when = f"before half of training (epoch {half})" if below < half else f"for the last {epochs - below} epochs"
            misfit = (
                f"{simulation.falls(lrs, before, 'epoch')}: below {_LR_FLOOR:g}x from epoch {below}, {when}, "
                f"and at {simulation.lr(lrs[last])} in the last epoch"
            )
        else:
            misfit = None
        data = {
            "simulated": simulation.describe(schedule),
            "stepped": "once per epoch",
            "epochs": epochs,
            "lr": {
                "start": lrs[0],
                "decays": [[epoch, lrs[epoch]] for epoch in decays],
                "half": [half, lrs[half]],
                "end": [last, lrs[last]],
            },
            "lr_curves": [simulation.curve(lrs, "stepped once per epoch", "epoch")],
        }
        run = f"the {epochs}-epoch run ({facts['epochs_from']})"
        sentence = f"simulated {data['simulated']} stepped once per epoch over {run}: "
        if misfit is not None:
            sentence += misfit
        else:
            sentence += (
                f"{simulation.falls(lrs, decays, 'epoch')}; {simulation.lr(lrs[half])} at half of training "
                f"(epoch {half}) and {simulation.lr(lrs[last])} in the last epoch: the schedule fits the run"
            )
        if per_batch is not None:
            sentence += (
                f"; stepped every batch as the code does (assumed {batches} batches/epoch), "
                f"{simulation.first_epoch(per_batch, batches)} (NN402)"
            )
            data["per_batch"] = {
                "batches_per_epoch": batches,
                "assumed": True,
                "after_one_epoch": per_batch[batches],
                "below_floor_after_batches": simulation.first_below(per_batch, _LR_FLOOR),
            }
            every_batch = simulation.curve(per_batch[: epochs * batches], "stepped every batch", "epoch", batches)
            data["lr_curves"].append(every_batch)
        return (confirmed if misfit is not None else refuted)(sentence, **data)


def _from_scheduler(script: Script, scheduler: Scheduler) -> _Schedule | None:
    """A torch scheduler that decays in steps: StepLR, MultiStepLR, ExponentialLR, LambdaLR(gamma ** (e // n))."""
    if scheduler.interval == "step":
        return None  # Lightning steps it every optimizer step, as its author asked: 30 means 30 steps
    schedules = script.schedules
    arguments = schedules.arguments(scheduler)
    gamma = arguments.get("gamma")
    stepped = [step.where for step in scheduler.steps]
    source = {"scheduler": scheduler.kind, **arguments}
    if scheduler.kind == "StepLR" and _is_decay(gamma) and isinstance(arguments.get("step_size"), int):
        period = arguments["step_size"]
        if period > 0:
            written = schedules.describe(scheduler, "step_size", "gamma")
            recipe = period == _PERIOD and _is_recipe_gamma(gamma)
            return _Schedule(written, scheduler.call, gamma, period, (), stepped, source, recipe)
    if scheduler.kind == "MultiStepLR" and _is_decay(gamma):
        milestones = arguments.get("milestones")
        if isinstance(milestones, list) and milestones and all(isinstance(m, int) for m in milestones):
            if milestones == sorted(milestones):
                written = schedules.describe(scheduler, "milestones", "gamma")
                recipe = _is_recipe_milestones(milestones) and _is_recipe_gamma(gamma)
                return _Schedule(written, scheduler.call, gamma, None, tuple(milestones), stepped, source, recipe)
    if scheduler.kind == "ExponentialLR" and _is_decay(gamma):
        written = schedules.describe(scheduler, "gamma")
        return _Schedule(written, scheduler.call, gamma, 1, (), stepped, source, False)
    if scheduler.kind == "LambdaLR":
        decay = schedules.lambda_decay(scheduler, bare=True)
        if decay is not None:
            return _from_decay(script, decay, f"LambdaLR(`{script.code(decay.node)}`)", scheduler.call, stepped)
    return None


def _from_decay(script: Script, decay: PeriodicDecay, written: str, node, stepped) -> _Schedule:
    """A decay computed from a counter, as the StepLR it equals (ExponentialLR for a period of 1)."""
    source = {"scheduler": "StepLR", "step_size": decay.period, "gamma": decay.gamma, "written": written}
    recipe = decay.period == _PERIOD and _is_recipe_gamma(decay.gamma)
    return _Schedule(written, node, decay.gamma, decay.period, (), stepped, source, recipe, decay.floored)


def _written_by_hand(script: Script):
    """`lr = base_lr * 0.1 ** (epoch // 30)`: the decay computed from the epoch counter (an iteration
    counter with the same period is not the epoch recipe). Any other decay must be the LR's."""
    for decay in script.schedules.decays:
        if "epoch" not in decay.counter.lower():
            continue
        written = f"the hand-written LR schedule `{script.code(decay.node.with_changes(lpar=[], rpar=[]))}`"
        schedule = _from_decay(script, decay, written, decay.node, [])
        if not schedule.recipe and not decay.for_lr:
            continue
        where = script.length.where(decay.node, decay.function)
        # Computed from the epoch counter, it decays per epoch wherever it is evaluated.
        stepped = dataclasses.replace(where, stepping="per epoch", batch_loop=None) if where.stepping else where
        yield dataclasses.replace(schedule, stepped=[stepped])
