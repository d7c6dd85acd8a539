from __future__ import annotations

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.script import Script, script_model
from nnlint.script.length import TrainingLength
from nnlint.script.schedules import Scheduler

# An ExponentialLR gamma this close to 1 is a per-step decay (0.9999 ** 10_000 = 0.37); a per-epoch one
# (0.9, 0.95, 0.98) applied every batch takes the LR to nothing within an epoch or two.
_PER_STEP_GAMMA = 0.995
_PER_BATCH_ALTERNATIVE = {"CosineAnnealingLR": ", or count T_max in batches (epochs * len(loader))"}


class EpochSchedulerSteppedPerBatch(Rule):
    """
    ## What it does
    Flags `scheduler.step()` inside the batch loop for a scheduler whose
    period is counted in epochs: `StepLR`, `MultiStepLR`, `ExponentialLR`,
    `CosineAnnealingLR(T_max=epochs)`, and a `LambdaLR` decaying every N
    epochs (`lambda epoch: 0.1 ** (epoch // 30)`). The batch loop is a loop
    over a loader nested in the epoch loop, or the loop of a function called
    once per epoch (`train_one_epoch(..., scheduler)`, or `train(epoch)`
    stepping a scheduler built at module level or under `__main__`).

    ## Why is this bad?
    Each `step()` advances the schedule by one of its units. Stepped every
    batch, a schedule written in epochs runs `len(loader)` times too fast:
    `StepLR(step_size=30)` divides the LR by 10 every 30 *batches*, and after
    a few hundred batches the LR is zero for the rest of training. The loss
    plateaus early and nothing says why.

    ## Example
    ```python
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(args.epochs):
        for images, labels in train_loader:
            ...
            optimizer.step()
            scheduler.step()
    ```

    ## Use instead
    Step it once per epoch, after the batch loop:
    ```python
    for epoch in range(args.epochs):
        for images, labels in train_loader:
            ...
            optimizer.step()
        scheduler.step()
    ```
    or, to change the LR every batch, give the scheduler its length in
    batches: `CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))`.

    ## Known problems
    Only schedulers built in the same file, bound to one variable, and
    stepped through it (as a global, on `self`, or through the parameter of a
    function of the file it is passed to) are checked; a scheduler from a factory or another
    module is not. Schedulers meant per batch are not flagged: `OneCycleLR`,
    `CyclicLR`, warmup schedulers, transformers' and timm's schedulers, a
    period counted in steps (`T_max=total_steps`, `epochs * len(loader)`,
    `step_size=5000`), `ReduceLROnPlateau` (its patience counts whatever its
    caller steps it by, and a per-batch metric is a deliberate choice), and
    `step(epoch + i / len(loader))`, which sets the epoch explicitly. A
    period the file gives no size for and whose name does not say epochs
    (`step_size=cfg.step`) is left alone, and so is a loop over a loader
    with no epoch loop around it: that may be an iteration-counted run.
    When the scheduler is also the ImageNet recipe in a shorter run, NN401
    reports its construction and points at this step.

    ## Runtime confirmation
    `--confirm` builds the real torch scheduler on a dummy optimizer with the
    arguments found (a `LambdaLR` decay as the `StepLR` it equals) and steps
    it every batch beside once per epoch, over the run's length when the
    source gives it, else over one epoch. An epoch is assumed to be 100
    batches: a loader's length is not in the source. Confirmed at the first
    batch where the two LRs differ by more than 2x (`StepLR(30)` is at 0.1x
    after 30 batches; `T_max=epochs` has reached its minimum within the
    first epoch); refuted when they stay within 2x over the whole run;
    unverifiable when they do for one epoch of a run of unknown length, or
    when an argument has no number in the source (`eta_min=cfg.min_lr`).

    ## From the recipe
    Karpathy, "A Recipe for Training Neural Networks" (step 3, overfit):
    "don't trust learning rate decay defaults ... If you're not careful your
    code could secretly be driving your learning rate to zero too early, not
    allowing your model to converge." A schedule written in epochs and
    stepped every batch is the fastest way there.
    """

    code = "NN402"
    name = "epoch-scheduler-stepped-per-batch"
    severity = "error"
    summary = "An epoch-based LR scheduler stepped inside the batch loop runs len(loader) times too fast"
    triggers = ("StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR")

    bad = [
        Example(
            """
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import StepLR

def main(args, model, train_loader):
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, 30, 0.1)
    for epoch in range(args.epochs):
        model.train()
        for step, (images, labels) in enumerate(train_loader):
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()  # <--
""",
            message=(
                "StepLR(step_size=30) is stepped every batch (loop `for step, (images, labels) in "
                "enumerate(train_loader)` at line 11): it decays after 30 batches, not 30 epochs; "
                "call scheduler.step() once per epoch, after the batch loop"
            ),
        ),
        Example(
            """
import torch
from torch import optim

EPOCHS = 50

def train_one_epoch(model, loader, optimizer, lr_scheduler, criterion):
    model.train()
    for batch_idx, (data, target) in enumerate(loader):
        optimizer.zero_grad()
        criterion(model(data), target).backward()
        optimizer.step()
        lr_scheduler.step()  # <--

def main(model, train_loader, criterion):
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    for epoch in range(EPOCHS):
        train_one_epoch(model, train_loader, optimizer, scheduler, criterion)
""",
            note="stepped in a function called once per epoch, the scheduler passed as an argument",
            message="CosineAnnealingLR(T_max=50) is stepped every batch",
        ),
        Example(
            """
import torch
from torch.optim import lr_scheduler

class Trainer:
    def __init__(self, model, train_loader, epochs=30):
        self.model, self.train_loader, self.epochs = model, train_loader, epochs
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        self.scheduler = lr_scheduler.MultiStepLR(self.optimizer, milestones=[10, 20], gamma=0.1)

    def train_epoch(self):
        for inputs, targets in self.train_loader:
            self.optimizer.zero_grad()
            self.loss(inputs, targets).backward()
            self.optimizer.step()
            if self.warmup_done:
                self.scheduler.step()  # <--

    def fit(self):
        for epoch in range(self.epochs):
            self.train_epoch()
""",
            note="a trainer class: the scheduler on self, the batch loop in a method named for one epoch",
            message="its milestones fall after 10 and 20 batches, not epochs",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import ExponentialLR

def train(model, loader, epochs):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = ExponentialLR(optimizer, gamma=0.95)
    for epoch in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
            scheduler.step()  # <--
""",
            message="it multiplies the LR by 0.95 every batch (5.9e-03 of the starting LR after 100 batches)",
        ),
        Example(
            """
import argparse

import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import StepLR

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=14)
args = parser.parse_args()

model = Net()
optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)


def train(epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        scheduler.step()  # <--


for epoch in range(1, args.epochs + 1):
    train(epoch)
    test()
""",
            note="module-level optimizer and scheduler, stepped in `train(epoch)`, which the epoch loop calls",
            message="StepLR(step_size=1) is stepped every batch (loop `for batch_idx, (data, target) in enumerate",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import MultiStepLR


def train(epoch):
    net.train()
    for inputs, targets in trainloader:
        optimizer.zero_grad()
        criterion(net(inputs), targets).backward()
        optimizer.step()
        scheduler.step()  # <--


if __name__ == "__main__":
    net = ResNet18()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    scheduler = MultiStepLR(optimizer, milestones=[100, 150], gamma=0.1)
    for epoch in range(200):
        train(epoch)
""",
            note="built under the __main__ guard",
            message="its milestones fall after 100 and 150 batches, not epochs",
        ),
    ]
    good = [
        Example(
            """
import torch
from torch.optim.lr_scheduler import OneCycleLR

EPOCHS = 5

def finetune(model, train_loader):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = OneCycleLR(optimizer, max_lr=1e-3, epochs=EPOCHS, steps_per_epoch=len(train_loader))
    for epoch in range(EPOCHS):
        for images, labels in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
""",
            note="trap: OneCycleLR is meant to be stepped every batch",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

def main(args, model, train_loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))
    for epoch in range(args.epochs):
        for images, labels in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
""",
            note="trap: CosineAnnealingLR whose T_max counts batches",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR
from transformers import get_linear_schedule_with_warmup

def main(args, model, train_loader, num_training_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    scheduler = get_linear_schedule_with_warmup(optimizer, 500, num_training_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=num_training_steps)
    for epoch in range(args.epochs):
        for batch in train_loader:
            model(**batch).loss.backward()
            optimizer.step()
            scheduler.step()
            cosine.step()
""",
            note="trap: transformers' warmup schedule, and T_max named in steps",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import LambdaLR, StepLR

def main(args, model, train_loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    warmup = LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / args.warmup_steps))
    decay = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(args.epochs):
        for images, labels in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            warmup.step()
        decay.step()
""",
            note="trap: a per-step warmup lambda in the batch loop, the step decay once per epoch",
        ),
        Example(
            """
import torch
from timm.scheduler import create_scheduler

def main(args, model, loader_train):
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    lr_scheduler, num_epochs = create_scheduler(args, optimizer)
    num_updates = 0
    for epoch in range(num_epochs):
        for batch_idx, (input, target) in enumerate(loader_train):
            optimizer.step()
            num_updates += 1
            lr_scheduler.step_update(num_updates=num_updates)
        lr_scheduler.step(epoch + 1)
""",
            note="trap: timm's scheduler, updated per batch with step_update(num_updates)",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import StepLR

def main(model, train_loader, make_scheduler, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = make_scheduler(optimizer)
    for epoch in range(epochs):
        for x, y in train_loader:
            optimizer.step()
            scheduler.step()
""",
            note="trap: the scheduler comes from elsewhere: its kind is unknown, so nothing is said",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts, StepLR

def main(model, train_loader, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = StepLR(optimizer, step_size=30)
    iters = len(train_loader)
    for epoch in range(epochs):
        for i, (x, y) in enumerate(train_loader):
            optimizer.step()
            scheduler.step(epoch + i / iters)
            if i == len(train_loader) - 1:
                scheduler.step()
""",
            note="an explicit epoch passed to step(), and a step guarded to the last batch: both per epoch",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import StepLR

def main(model, train_loader, max_iters):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = StepLR(optimizer, step_size=30)
    for it, (x, y) in enumerate(train_loader):
        optimizer.step()
        scheduler.step()
        if it == max_iters:
            break
""",
            note="no epoch loop: an iteration-counted run, where a period in batches may be meant",
        ),
        Example(
            """
import torch
from torch.optim.lr_scheduler import MultiStepLR


def train(epoch):
    print(f"Epoch {epoch}")
    for batch_idx, (inputs, targets) in enumerate(trainloader):
        loss = criterion(net(inputs.cuda()), targets.cuda())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scheduler.step()


if __name__ == "__main__":
    net = ResNet18().cuda()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = MultiStepLR(optimizer, milestones=[100, 150], gamma=0.1)
    for epoch in range(200):
        train(epoch)
        test(epoch)
""",
            note="a module-level scheduler stepped in `train(epoch)` after its batch loop: once per epoch",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        for scheduler in script.schedules.schedulers:
            # A variable bound to two schedulers (`if args.sched == "onecycle": ... else: ...`) may hold either.
            if scheduler.rebound:
                continue
            # step(epoch) sets the epoch explicitly; step(metric) is ReduceLROnPlateau's.
            per_batch = [step for step in scheduler.steps if step.where.stepping == "per batch" and not step.call.args]
            if not per_batch:
                continue
            length = script.length.of([step.where for step in scheduler.steps if step.where.stepping])
            too_fast = self._too_fast(script, scheduler, length)
            if too_fast is None:
                continue
            written, consequence = too_fast
            for step in per_batch:
                loop = step.where.batch_loop
                header = f"for {script.code(loop.target)} in {script.code(loop.iter)}"
                holder = script.code(step.call.func.value)
                fix = f"call {holder}.step() once per epoch, after the batch loop"
                self.report(
                    step.site,
                    f"{written} is stepped every batch{script.elsewhere(step.call, step.entry)} (loop `{header}` at {script.at(loop)}): {consequence}; "
                    f"{fix}{_PER_BATCH_ALTERNATIVE.get(scheduler.kind, '')}",
                    facts={
                        "schedule": _simulated(script, scheduler),
                        "stepping": "per batch",
                        "batch_loop_line": script.line(loop),
                        "epochs": length.epochs if length else None,
                    },
                )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Step the real torch scheduler every batch (an assumed number per epoch: a loader's length is not
        in the source) beside once per epoch: confirmed where the two LRs part by more than 2x."""
        from nnlint.confirm import schedule as simulation  # torch: only the confirm pass's child gets here

        facts = finding.facts
        schedule, epochs = facts["schedule"], facts["epochs"]
        try:
            run = simulation.per_batch_run(schedule, epochs)
        except simulation.ScheduleError as error:
            return unverifiable(str(error))
        batches, parting, last = run.batches_per_epoch, run.parting(), run.compared - 1
        points = {"start": 0, "parting": parting, "after_one_epoch": batches, "last_batch": last if epochs else None}
        data = {
            "simulated": simulation.describe(schedule),
            "batches_per_epoch": batches,
            "batches_per_epoch_assumed": True,
            "epochs": epochs,
            "lr": {
                name: {"batches": k, "per_batch": run.per_batch[k], "per_epoch": run.intended(k)}
                for name, k in points.items()
                if k is not None
            },
            "lr_curves": [
                simulation.curve(run.per_batch[: run.compared], "stepped every batch", "batch"),
                simulation.curve([run.intended(k) for k in range(run.compared)], "stepped once per epoch", "batch"),
            ],
        }

        def lr_at(k: int) -> str:
            return f"{simulation.lr(run.per_batch[k])} (stepped once per epoch: {simulation.lr(run.intended(k))})"

        stepped = f"stepped every batch (assumed {batches} batches/epoch), {data['simulated']}"
        if parting is not None:
            return confirmed(
                f"{stepped}: after {parting} batches the LR is at {lr_at(parting)}, "
                f"after one epoch at {lr_at(batches)}",
                **data,
            )
        within = f"{stepped} stays within {simulation.MATERIAL_FACTOR:g}x of stepping once per epoch"
        if epochs:
            return refuted(f"{within} over the {epochs}-epoch run: its last batch trains at {lr_at(last)}", **data)
        # Longer runs decay further: with no length in the source, one calm epoch proves nothing.
        return unverifiable(
            f"{within} for one epoch, after which the LR is at {lr_at(batches)}; the run's length is not in the "
            "source, so later epochs cannot be compared",
            **data,
        )

    @staticmethod
    def _too_fast(script: Script, scheduler: Scheduler, length: TrainingLength | None) -> tuple[str, str] | None:
        """(the scheduler as written, what it does when stepped every batch), for a schedule counted in epochs."""
        schedules, arguments = script.schedules, scheduler.arguments
        resolved = schedules.arguments(scheduler)

        def in_epochs(expr: cst.BaseExpression) -> bool:
            return schedules.looks_like_epochs(expr, scheduler.function, length)

        if scheduler.kind == "StepLR" and "step_size" in arguments:
            if in_epochs(arguments["step_size"]):
                size = resolved.get("step_size", f"`{script.code(arguments['step_size'])}`")
                return schedules.describe(scheduler, "step_size"), f"it decays after {size} batches, not {size} epochs"
        elif scheduler.kind == "MultiStepLR" and "milestones" in arguments:
            milestones = resolved.get("milestones")
            if isinstance(milestones, list) and in_epochs(arguments["milestones"]):
                after = " and ".join(map(str, milestones))
                return schedules.describe(scheduler, "milestones"), f"its milestones fall after {after} batches, not epochs"
        elif scheduler.kind == "ExponentialLR":
            gamma = resolved.get("gamma")
            if isinstance(gamma, (int, float)) and 0 < gamma < _PER_STEP_GAMMA:
                after_100 = f"{gamma**100:.1e} of the starting LR after 100 batches"
                return schedules.describe(scheduler, "gamma"), f"it multiplies the LR by {gamma} every batch ({after_100})"
        elif scheduler.kind == "CosineAnnealingLR" and "T_max" in arguments:
            if in_epochs(arguments["T_max"]):
                period = resolved.get("T_max", f"`{script.code(arguments['T_max'])}`")
                return (
                    schedules.describe(scheduler, "T_max"),
                    f"its cosine reaches the minimum after {period} batches, not {period} epochs, and climbs back",
                )
        elif scheduler.kind == "LambdaLR":
            decay = schedules.lambda_decay(scheduler)
            if decay is not None and schedules.looks_like_epochs(decay.period_written, decay.function, length):
                return (
                    f"LambdaLR(`{script.code(decay.node)}`)",
                    f"it decays every {decay.period} batches, not every {decay.period} epochs",
                )
        return None


def _simulated(script: Script, scheduler: Scheduler) -> dict:
    """What the runtime simulation builds: the torch scheduler with the numbers the source gives (a LambdaLR
    decay as the StepLR it equals), and the code of the arguments it gives no number for."""
    schedules = script.schedules
    decay = schedules.lambda_decay(scheduler) if scheduler.kind == "LambdaLR" else None
    if decay is not None:
        written = f"LambdaLR(`{script.code(decay.node)}`)"
        return {"scheduler": "StepLR", "step_size": decay.period, "gamma": decay.gamma, "written": written}
    unresolved = {
        name: script.code(expr)
        for name, expr in scheduler.arguments.items()
        if script.constants.value(expr, scheduler.function) is None
    }
    # An argument the file writes without a number is unknown, not torch's default.
    arguments = {name: value for name, value in schedules.arguments(scheduler).items() if name not in unresolved}
    return {"scheduler": scheduler.kind, **arguments, **({"unresolved": unresolved} if unresolved else {})}
