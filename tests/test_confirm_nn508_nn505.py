"""NN508 judged at runtime on a configured training step, and NN505 (R-only: the loss at initialisation
of a model declared with cross-entropy over C classes, against log(C)).

fixtures/confirm/training_step: train.py detaches the output before the loss
(a static NN508); steps.py holds training steps, broken and fixed, which the
tests name in `training-step` in turn. fixtures/confirm/initial_loss: models
declared with `loss = "cross_entropy"`, `classes = 10`. The confirm runs use
the real sandbox, a few seconds each.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from nnlint.config import ConfigError
from nnlint.confirm.settings import ConfirmSettings, model_entries
from nnlint.rule import rule_by_code

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "confirm"
TRAIN_BACKWARD = 10  # `loss.backward()` in training_step/train.py


def _confirm(directory: Path):
    """`nnlint --confirm --show-refuted` run inside `directory`, in-process: its findings."""
    pytest.importorskip("torch")
    from nnlint.config import find_config, load_settings
    from nnlint.confirm.run import confirm
    from nnlint.discover import FileFinder
    from nnlint.runner import display_path, run

    settings = load_settings(find_config(directory), directory)
    files = FileFinder(settings.root, settings.exclude_spec()).find([directory])
    static = run(files, settings, directory, 1)
    display = {path: display_path(path, directory) for path in files}
    return confirm(static.findings, files, settings, display, show_refuted=True).findings


# -- configuration (torch-free) --------------------------------------------------------------


def test_training_step_is_read_and_checked_like_a_factory():
    assert ConfirmSettings.from_table({}).training_step is None
    assert ConfirmSettings.from_table({"training-step": "pkg.train:one_step"}).training_step == "pkg.train:one_step"
    with pytest.raises(ConfigError, match='training-step = "pkg.train.one_step" is not of the form "pkg.module:function"'):
        ConfirmSettings.from_table({"training-step": "pkg.train.one_step"})
    with pytest.raises(ConfigError, match="`training-step` must be a str"):
        ConfirmSettings.from_table({"training-step": ["pkg.train:one_step"]})


def test_a_misspelt_training_step_key_is_a_configuration_error(tmp_path, nnlint):
    (tmp_path / "pyproject.toml").write_text('[tool.nnlint.confirm]\ntraining_step = "steps:one"\n')
    (tmp_path / "train.py").write_text("x = 1\n")
    outcome = nnlint("train.py")
    assert outcome.exit_code == 2 and "unknown key(s) training_step" in outcome.stderr


def test_declared_loss_and_classes_are_checked():
    entry = {"Net": {"loss": "cross_entropy", "classes": 10}, "Head": {"loss": "cross_entropy"}}
    assert model_entries(entry) == entry
    bad = [
        ({"classes": 10}, "`classes` is read only with `loss`"),
        ({"loss": "mse", "classes": 10}, "loss = 'mse' is not one of: cross_entropy"),
        ({"loss": "cross_entropy", "classes": 1}, "`classes` must be a whole number of at least 2, not 1"),
        ({"loss": "cross_entropy", "classes": True}, "`classes` must be a whole number of at least 2, not True"),
        ({"loss": "cross_entropy", "classes": "10"}, "`classes` must be a int"),
    ]
    for declared, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            model_entries({"Net": declared})


# -- NN508: one backward on the configured training step --------------------------------------


def _nn508(tmp_path: Path, config: str):
    shutil.copytree(FIXTURES / "training_step", tmp_path, dirs_exist_ok=True)
    (tmp_path / "pyproject.toml").write_text(config)
    [finding] = [f for f in _confirm(tmp_path) if f.code == "NN508"]
    assert (finding.path, finding.line) == ("train.py", TRAIN_BACKWARD)
    return finding


def _step(name: str) -> str:
    return f'[tool.nnlint.confirm]\ntraining-step = "steps:{name}"\n'


def test_a_detached_step_is_confirmed_naming_the_step_the_loss_and_the_parameters(tmp_path):
    finding = _nn508(tmp_path, _step("broken_step"))
    evidence = finding.evidence
    assert finding.status == "confirmed"
    assert evidence["training_step"] == "steps:broken_step" and evidence["model"] == "Net"
    assert evidence["parameters"] == 4 and evidence["with_gradient"] == 0 and evidence["requires_grad"] is False
    assert evidence["loss"] > 0
    assert evidence["summary"] == (
        f"the loss {evidence['loss']:.4g} that steps:broken_step() returns does not require grad: it is off the "
        "autograd graph, so loss.backward() raises and none of Net's 4 parameter tensors can get a gradient"
    )


def test_a_rewrapped_loss_that_requires_grad_still_gives_no_parameter_a_gradient(tmp_path):
    finding = _nn508(tmp_path, _step("rewrapped_step"))
    assert finding.status == "confirmed"
    assert finding.evidence["requires_grad"] is True and finding.evidence["with_gradient"] == 0
    assert "none of Net's 4 parameter tensors has a gradient (each is None or zero)" in finding.evidence["summary"]


def test_the_fixed_step_is_refuted(tmp_path):
    finding = _nn508(tmp_path, _step("fixed_step"))
    assert finding.status == "refuted"
    assert finding.evidence["with_gradient"] == 4
    assert "4 of Net's 4 parameter tensors have a non-zero gradient" in finding.evidence["summary"]


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ("", 'add training-step = "pkg.module:function" to [tool.nnlint.confirm]: a function that takes no arguments'),
        (_step("failing_step"), "training-step steps:failing_step() raised FileNotFoundError: data/train.csv"),
        (_step("no_such_step"), "steps has no attribute 'no_such_step'"),
        ('[tool.nnlint.confirm]\ntraining-step = "no_such_module:step"\n', "no module named 'no_such_module'"),
    ],
    ids=["not-configured", "step-raises", "no-such-function", "no-such-module"],
)
def test_a_step_that_is_missing_or_fails_leaves_the_finding_unverifiable(tmp_path, config, reason):
    finding = _nn508(tmp_path, config + "[tool.nnlint]\n")
    assert finding.status == "unverifiable"
    assert reason in finding.evidence["summary"]


# -- NN505: the loss at initialisation -----------------------------------------------------------


@pytest.fixture(scope="module")
def initial_loss():
    return {f.evidence["model"]: f for f in _confirm(FIXTURES / "initial_loss") if f.code == "NN505"}


def test_each_declared_model_gets_its_status(initial_loss):
    assert {model: (f.path, f.line, f.status) for model, f in initial_loss.items()} == {
        "OverconfidentNet": ("models.py", 11, "confirmed"),  # head ~ N(0, 1) on 128 features
        "CalibratedNet": ("models.py", 21, "refuted"),  # torch's default init
        "KeptImageNetHead": ("models.py", 31, "confirmed"),  # 1000 outputs for 10 classes
        "NeedsConfig": ("models.py", 40, "unverifiable"),  # cannot be built without its config
        "UndeclaredClasses": ("models.py", 51, "confirmed"),  # 7 classes read from its head, logits x 20
    }


def test_the_evidence_gives_the_measured_and_the_expected_loss(initial_loss):
    far, near = initial_loss["OverconfidentNet"].evidence, initial_loss["CalibratedNet"].evidence
    assert far["expected"] == pytest.approx(math.log(10)) and far["classes"] == 10
    assert far["loss"] - far["expected"] > 0.5 > near["loss"] - near["expected"] >= 0
    assert f"{far['loss']:.3f} at initialisation, against log(10) = 2.303" in far["summary"]
    assert "far from log(10)" in initial_loss["OverconfidentNet"].message
    assert "no dim of 10 classes" in initial_loss["KeptImageNetHead"].evidence["summary"]
    assert initial_loss["KeptImageNetHead"].evidence["output_shape"] == [5, 1000]
    assert "NeedsConfig cannot be built" in initial_loss["NeedsConfig"].evidence["summary"]
    read = initial_loss["UndeclaredClasses"].evidence
    assert read["classes"] == 7 and "7 classes read from its output's last dim" in read["summary"]


def test_a_refuted_initial_loss_is_hidden_by_default(monkeypatch):
    pytest.importorskip("torch")
    from conftest import invoke

    monkeypatch.chdir(FIXTURES / "initial_loss")
    located = invoke(".", "--confirm", "--format", "json").located()
    assert located == [("models.py", line, "NN505") for line in (11, 31, 40, 51)]


def test_initial_loss_examples_at_their_marked_lines(tmp_path):
    """NN505 is R-only: its examples are checked here, each class declared with cross-entropy over 10 classes."""
    rule = rule_by_code("NN505")
    expected, config = {}, []
    for kind, examples in (("bad", rule.bad), ("good", rule.good)):
        for index, example in enumerate(examples):
            name = f"{kind}{index}.py"
            (tmp_path / name).write_text(example.code)
            expected[name] = example.expected_lines
            for cls in re.findall(r"^class (\w+)", example.code, re.M):
                config.append(f'[tool.nnlint.models.{cls}]\nloss = "cross_entropy"\nclasses = 10\n')
    (tmp_path / "pyproject.toml").write_text("\n".join(config))
    findings = [f for f in _confirm(tmp_path) if f.code == "NN505"]
    confirmed = {name: sorted(f.line for f in findings if f.path == name and f.status == "confirmed") for name in expected}
    assert confirmed == expected
    assert {f.status for f in findings} == {"confirmed", "refuted"}
    assert len(findings) == len(expected)  # every declared model judged, one finding each
