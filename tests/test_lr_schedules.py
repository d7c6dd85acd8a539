"""What the script model reads about a training run's LR schedule: the settings' values (`constants`), the
run's length and where each line runs (`length`), the schedulers and their steps (`schedules`)."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from nnlint.rule import Rule
from nnlint.script import Script, script_model
from nnlint.static import lint_source


class _Capture(Rule):
    """Not a rule: a visitor that keeps the script model the engine builds for a file."""

    code, name, severity, summary, triggers = "NN999", "capture", "info", "test only", ("",)
    captured: list[Script] = []

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        script.schedules  # built while the file's import table is complete, as a rule would
        _Capture.captured.append(script)


def model_of(source: str) -> Script:
    _Capture.captured.clear()
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [_Capture], max_file_size=10**7)
    assert not result.diagnostics, result.diagnostics
    return _Capture.captured[0]


def length_of(source: str):
    """The training length of the file's only scheduler, as (epochs, origin, line) or None."""
    script = model_of(source)
    (scheduler,) = script.schedules.schedulers
    length = script.length.of([step.where for step in scheduler.steps])
    return None if length is None else (length.epochs, length.origin, script.line(length.origin_node))


SCHEDULER = "import torch\nfrom torch.optim.lr_scheduler import StepLR\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            """
            def main(opt, loader):
                s = StepLR(opt, 30)
                for epoch in range(20):
                    s.step()
            """,
            (20, "`range(20)`", 6),
            id="range-literal",
        ),
        pytest.param(
            """
            import argparse
            parser = argparse.ArgumentParser()
            parser.add_argument("-e", "--epochs", type=int, default=20)
            args = parser.parse_args()
            s = StepLR(opt, 30)
            for epoch in range(args.start_epoch, args.epochs):
                s.step()
            """,
            (20, "`--epochs` default 20", 6),
            id="argparse-default-resumed-range",
        ),
        pytest.param(
            """
            NUM_EPOCHS = 20
            def main(opt):
                s = StepLR(opt, 30)
                for epoch in range(1, NUM_EPOCHS + 1):
                    s.step()
            """,
            (20, "`NUM_EPOCHS = 20`", 4),
            id="module-constant-one-based",
        ),
        pytest.param(
            """
            config = {"lr": 0.1, "epochs": 20}
            def main(opt):
                s = StepLR(opt, 30)
                for epoch in range(config["epochs"]):
                    s.step()
            """,
            (20, '`"epochs": 20`', 4),
            id="config-dict",
        ),
        pytest.param(
            """
            from dataclasses import dataclass
            @dataclass
            class Config:
                lr: float = 0.1
                epochs: int = 20
            def main(opt, cfg: Config):
                s = StepLR(opt, 30)
                for epoch in range(cfg.epochs):
                    s.step()
            """,
            (20, "`epochs: int = 20`", 8),
            id="dataclass-field",
        ),
        pytest.param(
            """
            class Trainer:
                def __init__(self, opt, epochs=20):
                    self.epochs = epochs
                    self.scheduler = StepLR(opt, 30)
                def fit(self):
                    for epoch in range(self.epochs):
                        self.scheduler.step()
            """,
            (20, "`epochs=20`", 5),
            id="attribute-from-parameter-default",
        ),
        pytest.param(
            """
            def main(opt, start_epoch):
                s = StepLR(opt, 30)
                for epoch in range(start_epoch, start_epoch + 200):
                    s.step()
            """,
            (200, "`range(start_epoch, start_epoch + 200)`", 6),
            id="range-from-start-plus-n",
        ),
        pytest.param(
            """
            import pytorch_lightning as pl
            class Lit(pl.LightningModule):
                def configure_optimizers(self):
                    opt = torch.optim.SGD(self.parameters(), lr=0.1)
                    return [opt], [StepLR(opt, 30)]
            pl.Trainer(max_epochs=20).fit(Lit())
            """,
            (20, "`max_epochs=20`", 9),
            id="lightning-trainer-when-no-step-is-seen",
        ),
        pytest.param(
            """
            def main(opt, max_epochs=12):
                s = StepLR(opt, 30)
                epoch = 0
                while epoch < max_epochs:
                    s.step()
                    epoch += 1
            """,
            (12, "`max_epochs=12`", 4),
            id="while-loop",
        ),
    ],
)
def test_training_length_is_read_from_the_code(source, expected):
    assert length_of(SCHEDULER + textwrap.dedent(source)) == expected


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            """
            import yaml
            cfg = yaml.safe_load(open("config.yaml"))
            s = StepLR(opt, 30)
            for epoch in range(cfg["epochs"]):
                s.step()
            """,
            id="read-from-a-file",
        ),
        pytest.param(
            """
            import argparse
            parser = argparse.ArgumentParser()
            parser.add_argument("--epochs", type=int, default=90)
            args = parser.parse_args()
            args.epochs = 5 if args.debug else 90
            s = StepLR(opt, 30)
            for epoch in range(args.epochs):
                s.step()
            """,
            id="overridden-by-an-expression",
        ),
        pytest.param(
            """
            def prepare():
                epochs = 5
                return epochs
            def main(opt, epochs):
                s = StepLR(opt, 30)
                for epoch in range(epochs):
                    s.step()
            """,
            id="another-function's-local",
        ),
        pytest.param(
            """
            def main(opt, loader, C, result):
                result["epoch"] = 0
                s = StepLR(opt, 30)
                for epoch in range(C.get()["epoch"]):
                    s.step()
            """,
            id="another-dict's-key",
        ),
        pytest.param(
            """
            def main(opt, loader):
                s = StepLR(opt, 30)
                for it, (x, y) in enumerate(loader):
                    s.step()
            """,
            id="stepped-outside-any-epoch-loop",
        ),
    ],
)
def test_training_length_is_none_when_the_code_does_not_say(source):
    assert length_of(SCHEDULER + textwrap.dedent(source)) is None


def test_scheduler_arguments_by_torch_parameter_name_with_defaults():
    schedules = model_of(
        """
        from torch.optim import lr_scheduler
        STEP = 30
        s = lr_scheduler.StepLR(opt, STEP)
        m = lr_scheduler.MultiStepLR(opt, milestones=[30, 60], gamma=0.2)
        c = lr_scheduler.CosineAnnealingLR(opt, T_max=n_epochs * len(loader))
        """
    ).schedules
    step, multistep, cosine = schedules.schedulers
    assert (step.kind, step.variable, schedules.arguments(step)) == ("StepLR", "s", {"step_size": 30, "gamma": 0.1})
    assert schedules.arguments(multistep) == {"milestones": [30, 60], "gamma": 0.2}
    assert schedules.describe(cosine, "T_max") == "CosineAnnealingLR(T_max=n_epochs * len(loader))"


def test_a_factory_or_another_class_is_not_a_scheduler():
    script = model_of(
        """
        from timm.scheduler import StepLRScheduler
        from mylib import build_scheduler
        a = StepLRScheduler(opt, decay_t=30)
        b = build_scheduler(opt)
        """
    )
    assert script.schedules.schedulers == []


def _steppings(source: str) -> list[str | None]:
    script = model_of(source)
    return [step.where.stepping for scheduler in script.schedules.schedulers for step in scheduler.steps]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            """
            s = StepLR(opt, 30)
            for epoch in range(E):
                for images, labels in train_loader:
                    s.step()
                s.step()
            """,
            ["per batch", "per epoch"],
            id="nested-loops",
        ),
        pytest.param(
            """
            def train_one_epoch(model, loader, sched):
                for x, y in loader:
                    sched.step()
            def main(model, train_loader, E):
                scheduler = StepLR(opt, 30)
                for epoch in range(E):
                    train_one_epoch(model, train_loader, scheduler)
            """,
            ["per batch"],
            id="passed-positionally-to-a-function-called-per-epoch",
        ),
        pytest.param(
            """
            def run(model, data_iter, lr_scheduler=None):
                for x, y in data_iter:
                    lr_scheduler.step()
            def main(model, train_iter, E):
                scheduler = StepLR(opt, 30)
                for epoch in range(E):
                    run(model, train_iter, lr_scheduler=scheduler)
            """,
            ["per batch"],
            id="passed-by-keyword-d2l-iterator-names",
        ),
        pytest.param(
            """
            class Trainer:
                def __init__(self, opt):
                    self.scheduler = StepLR(opt, 30)
                def step(self, batch):
                    self.scheduler.step()
                def fit(self, E):
                    for epoch in range(E):
                        for batch in self.loader:
                            self.step(batch)
            """,
            ["per batch"],
            id="in-a-method-called-per-batch",
        ),
        pytest.param(
            """
            s = StepLR(opt, 30)
            for epoch in range(E):
                for loader in (train_loader, val_loader):
                    for x, y in loader:
                        pass
                    s.step()
            """,
            ["per epoch"],
            id="a-loop-over-loaders-is-not-a-batch-loop",
        ),
        pytest.param(
            """
            s = StepLR(opt, 30)
            for epoch in range(E):
                for i, (x, y) in enumerate(train_loader):
                    if i == len(train_loader) - 1:
                        s.step()
            """,
            [None],
            id="guarded-to-the-last-batch",
        ),
        pytest.param(
            """
            s = StepLR(opt, 30)
            for step, batch in enumerate(loader):
                s.step()
            """,
            [None],
            id="no-epoch-loop-an-iteration-counted-run",
        ),
        pytest.param(
            """
            def main():
                s = StepLR(opt, 30)
                for epoch in range(E):
                    train(model)
            def other(s, loader):
                for x, y in loader:
                    s.step()
            """,
            [],
            id="a-same-named-variable-elsewhere-is-another-scheduler",
        ),
    ],
)
def test_where_the_scheduler_is_stepped(source, expected):
    assert _steppings(SCHEDULER + textwrap.dedent(source)) == expected


def test_a_variable_bound_to_two_schedulers_is_marked_rebound():
    script = model_of(
        SCHEDULER
        + textwrap.dedent(
            """
            from torch.optim.lr_scheduler import OneCycleLR
            def main(args, opt):
                if args.sched == "onecycle":
                    scheduler = OneCycleLR(opt, max_lr=0.1, total_steps=1000)
                else:
                    scheduler = StepLR(opt, 30)
            """
        )
    )
    assert [scheduler.rebound for scheduler in script.schedules.schedulers] == [True, True]


@pytest.mark.parametrize(
    ("expression", "epochs"),
    [
        ("args.epochs", True),
        ("30", True),
        ("[30, 60]", True),
        ("epochs - warmup_epochs", True),
        ("5000", False),
        ("args.epochs * len(train_loader)", False),
        ("num_training_steps", False),
        ("args.max_iter", False),
        ("decay_every", False),
    ],
)
def test_a_period_counts_epochs_or_steps(expression, epochs):
    script = model_of(f"period = {expression}\n")
    assert script.schedules.looks_like_epochs(script.constants.settings["period"][0].value, None, None) is epochs


def test_the_model_is_built_once_per_file():
    class _Twice(_Capture):
        code = "NN998"

    _Capture.captured.clear()
    lint_source(b"x = 1\n", "a.py", [_Capture, _Twice], max_file_size=10**7)
    first, second = _Capture.captured
    assert first is second and first.schedules is second.schedules


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("int(90 * 0.5)", 45),
        ("round(2.6)", 3),
        ("[30, 60, 90]", [30, 60, 90]),
        ("10 ** 10 ** 9", None),  # not computed: a hostile file must not hang the linter
        ("int(1e400)", None),
        ("1 // 0", None),
    ],
)
def test_values_are_folded_safely(expression, value):
    constants = model_of(f"x = {expression}\n").constants
    assert constants.value(constants.settings["x"][0].value, None) == value
