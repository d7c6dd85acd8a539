"""The confirm pass on fixtures/confirm and fixtures/buggy_vit: each planted case gets its status.

These run the real sandbox (a child process importing torch), so each
`nnlint --confirm` invocation costs a few seconds; they are grouped.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
pytest.importorskip("torch")

EXPECTED_STATUS = {
    ("confirm/dropout_eval.py", 15, "NN301"): "confirmed",  # F.dropout(x, 0.3) in NoisyHead
    ("confirm/dropout_eval.py", 30, "NN301"): "refuted",  # p defaults to 0.0
    ("confirm/needs_args/model.py", 20, "NN301"): "confirmed",  # built as train.py builds it
    ("confirm/hostile/train_at_import.py", 15, "NN301"): "confirmed",  # the training loop is not run
    ("confirm/hostile/exit_at_import.py", 19, "NN301"): "confirmed",  # nor the sys.exit
    ("confirm/hostile/wait_at_import.py", 19, "NN301"): "confirmed",  # nor the endless wait
    ("confirm/hostile/huge_model.py", 13, "NN301"): "unverifiable",  # over the memory cap
    ("confirm/hostile/huge_model.py", 28, "NN101"): "confirmed",  # too big too, but shapes need no memory
    ("confirm/hostile/crash_in_forward.py", 16, "NN301"): "unverifiable",  # segfault: NN902
    ("confirm/schedules/short_run.py", 12, "NN401"): "confirmed",  # StepLR(30) never fires in 20 epochs
    ("confirm/schedules/cosine_per_batch.py", 23, "NN402"): "confirmed",  # T_max=30 reached after 30 batches
    ("confirm/schedules/finetune_one_epoch.py", 19, "NN402"): "refuted",  # 0.994 per batch, 1 epoch: within 2x
    ("confirm/batch_mixing.py", 19, "NN102"): "confirmed",  # softmax(dim=0) on batch-major logits
    ("confirm/batch_mixing.py", 31, "NN102"): "confirmed",  # runtime only: norm over dim 0 of a conv output
    ("confirm/batch_mixing.py", 45, "NN102"): "confirmed",  # runtime only: MultiheadAttention, batch_first=False
    ("confirm/batch_mixing.py", 77, "NN102"): "refuted",  # a batch mean kept for logging, detached
    ("confirm/batch_mixing.py", 91, "NN102"): "confirmed",  # (b, t) folded, split as (t, b); input (B, T, F)
    ("confirm/model_wide.py", 10, "NN201"): "confirmed",  # runtime only: constant weights set by a helper
    ("confirm/model_wide.py", 15, "NN301"): "confirmed",  # runtime only: dropout in a helper of forward()
    ("confirm/eval_mode/train_regularised.py", 18, "NN302"): "confirmed",  # BatchNorm1d and Dropout, named
    ("confirm/eval_mode/train_plain.py", 18, "NN302"): "refuted",  # reads self.training, same output in both modes
    ("confirm/new_layer/finetune.py", 20, "NN407"): "confirmed",  # head.weight, head.bias in no param group
    ("confirm/new_layer/finetune.py", 30, "NN407"): "unverifiable",  # nn.Linear(hidden, 5): hidden unknown
    ("confirm/frozen_bn/train_linear_probe.py", 21, "NN305"): "confirmed",  # backbone.1's statistics move
    ("confirm/frozen_bn/train_fixed_statistics.py", 21, "NN305"): "refuted",  # BatchNorm2d(momentum=0.0)
    # blind_spots: a (B, F) input is judged; look-alikes (BatchNorm1d, attention or a GRU over one unbatched
    # sequence, a correct head split, a zero head, MC dropout) give nothing
    ("confirm/blind_spots/batch_stats.py", 16, "NN102"): "confirmed",  # runtime only: x.mean(0) / x.std(0)
    ("confirm/blind_spots/batch_stats.py", 27, "NN102"): "confirmed",  # runtime only: torch.softmax(..., dim=0)
    ("confirm/blind_spots/batch_stats.py", 32, "NN102"): "confirmed",  # runtime only: .softmax(dim=0)
    ("confirm/blind_spots/heads.py", 18, "NN101"): "confirmed",  # runtime only: (b, t, c) read as (b, heads, t, dh)
    ("confirm/blind_spots/heads.py", 19, "NN101"): "confirmed",
    ("confirm/blind_spots/init_writes.py", 9, "NN201"): "confirmed",  # .data.fill_ in a function given to apply()
    ("confirm/blind_spots/init_writes.py", 30, "NN201"): "confirmed",  # runtime only: copy_ in a modules() loop
    ("confirm/blind_spots/raw_params.py", 11, "NN201"): "confirmed",  # input traced from `x @ self.W1`
    ("confirm/blind_spots/dropouts.py", 16, "NN301"): "confirmed",
    ("confirm/blind_spots/dropouts.py", 17, "NN301"): "confirmed",  # the second, with the first replayed
    ("confirm/blind_spots/dropouts.py", 18, "NN301"): "refuted",  # p=0.0, after two random ones
    ("confirm/structure/unregistered.py", 10, "NN203"): "confirmed",  # 3 Linears in a plain list
    ("confirm/structure/unregistered.py", 23, "NN203"): "refuted",  # the listed heads are registered too
    ("confirm/structure/fresh_layer.py", 13, "NN204"): "confirmed",  # a new random Linear every forward
    ("confirm/structure/fresh_layer.py", 23, "NN204"): "refuted",  # a constant kernel: the same every call
    ("confirm/training_step/train.py", 10, "NN508"): "unverifiable",  # no training-step configured from here
    ("confirm/activations/train.py", 15, "NN501"): "confirmed",  # SoftmaxNet's rows sum to 1 along dim 1
    ("confirm/activations/train.py", 16, "NN503"): "confirmed",  # SigmoidNet's outputs lie in (0, 1)
    ("confirm/activations/train.py", 17, "NN504"): "confirmed",  # LogitsNet's logsumexp is ~2.4, not 0
    ("confirm/activations/train.py", 19, "NN503"): "unverifiable",  # ConfiguredSigmoidNet(config): not buildable
    ("confirm/activations/train.py", 21, "NN501"): "unverifiable",  # softmax written in the script, not the model
    ("confirm/missing_imports/plain_model.py", 36, "NN301"): "confirmed",  # its imports not installed: stood in
    ("confirm/missing_imports/uses_missing.py", 15, "NN301"): "unverifiable",  # Backbone needs the missing package
    ("confirm/missing_imports/backends/not_installed_pkg_xyz.py", 16, "NN301"): "confirmed",  # named after it, stood in
    ("confirm/missing_imports/project_module.py", 16, "NN301"): "confirmed",  # its vendored module found where it lies
    ("confirm/forks/model.py", 47, "NN301"): "confirmed",  # its processes and thread are ended with the probe
}


@pytest.fixture(scope="module")
def confirmed_report():
    previous = Path.cwd()
    try:
        import os

        os.chdir(FIXTURES)
        outcome = invoke("confirm", "--confirm", "--show-refuted", "--format", "json")
    finally:
        os.chdir(previous)
    return outcome


def test_each_planted_case_gets_its_status(confirmed_report):
    findings = confirmed_report.json()["findings"]
    statuses = {(f["path"], f["line"], f["code"]): f["status"] for f in findings}
    assert statuses == EXPECTED_STATUS
    for finding in findings:
        assert finding["evidence"]["summary"] in finding["message"]


def test_a_crash_is_an_nn902_naming_the_signal_and_the_users_frame(confirmed_report):
    errors = {e["path"]: e for e in confirmed_report.json()["errors"]}
    assert {path: e["code"] for path, e in errors.items()} == {
        "confirm/hostile/crash_in_forward.py": "NN902",
        "confirm/hostile/huge_model.py": "NN902",  # the probes that need numbers did not run
        "confirm/missing_imports/uses_missing.py": "NN902",  # its models use a package not installed
    }
    crash = errors["confirm/hostile/crash_in_forward.py"]
    assert "SIGSEGV" in crash["message"]
    assert "crash_in_forward.py" in crash["output_tail"]


def test_a_model_over_the_memory_cap_gets_its_shapes_checked_on_the_meta_device(confirmed_report):
    huge = {f["code"]: f for f in confirmed_report.json()["findings"] if f["path"].endswith("huge_model.py")}
    why = huge["NN301"]["evidence"]["summary"]
    assert "Giant has 10,000,100,000 parameters (37.3 GiB), over the probe's memory cap of 4096 MiB" in why
    assert "raise `memory` in [tool.nnlint.confirm]" in why
    assert huge["NN101"]["evidence"]["permutation"] == [0, 2, 3, 1]  # GiantPatches, 596 GiB of parameters
    skipped = next(e for e in confirmed_report.json()["errors"] if e["path"].endswith("huge_model.py"))
    assert "only its shapes were checked, on the meta device" in skipped["message"]


def test_refuted_findings_are_hidden_by_default(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    located = invoke("confirm/dropout_eval.py", "--confirm", "--format", "json").located()
    assert located == [("confirm/dropout_eval.py", 15, "NN301")]


def test_runtime_only_findings_follow_the_rule_selection(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    assert {code for _, _, code in invoke("confirm/batch_mixing.py", "--confirm", "--format", "json").located()} == {
        "NN102"
    }
    assert invoke("confirm/batch_mixing.py", "--confirm", "--select", "NN3", "--format", "json").located() == []


MODEL_WITH_BROKEN_IMPORT = '''\
import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR

from torch import not_a_real_name_xyz  # an ImportError, not a missing package: never stood in

EPOCHS = 20


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(x)


def main(model, loader, optimizer):
    scheduler = StepLR(optimizer, 30, 0.1)
    for epoch in range(EPOCHS):
        for x, y in loader:
            optimizer.step()
        scheduler.step()
'''


def test_a_failing_import_keeps_the_verdicts_that_needed_no_model(tmp_path, monkeypatch):
    """The schedule is simulated without the model; the import failure is still an NN902."""
    (tmp_path / "train.py").write_text(MODEL_WITH_BROKEN_IMPORT)
    monkeypatch.chdir(tmp_path)
    report = invoke("train.py", "--confirm", "--format", "json").json()
    assert [(f["code"], f["status"]) for f in report["findings"]] == [("NN401", "confirmed")]
    [error] = report["errors"]
    assert error["code"] == "NN902" and "not_a_real_name_xyz" in error["message"]


def test_buggy_vit_dropout_and_reshape_are_confirmed(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    report = invoke("buggy_vit/model.py", "--confirm", "--format", "json").json()
    statuses = {(f["line"], f["code"]): f["status"] for f in report["findings"]}
    assert statuses[(49, "NN301")] == "confirmed"  # behind all-zero Linear weights, re-drawn for the probe
    assert statuses[(18, "NN101")] == "confirmed"
    reshape = next(f for f in report["findings"] if f["code"] == "NN101")
    assert reshape["evidence"]["permutation"] == [0, 2, 3, 1]
    assert statuses[(84, "NN201")] == "confirmed"
    learning = next(f for f in report["findings"] if f["code"] == "NN201")["evidence"]["parameters"]
    assert learning["head.weight"] == "learns"  # the final head is the trap: it breaks symmetry
    assert learning["blocks.0.mlp.fc1.weight"] == "no gradient"


def test_traps_give_no_runtime_finding(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    assert invoke("traps", "--confirm", "--format", "json").located() == []


def test_full_import_turns_hangs_and_exits_into_nn902(tmp_path, monkeypatch):
    for name in ("wait_at_import.py", "exit_at_import.py"):
        shutil.copy(FIXTURES / "confirm" / "hostile" / name, tmp_path / name)
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint.confirm]\nfull-import = true\ntimeout = 4\n")
    monkeypatch.chdir(tmp_path)
    report = invoke(".", "--confirm", "--format", "json").json()
    reasons = {e["path"]: e["reason"] for e in report["errors"] if e["code"] == "NN902"}
    assert "did not finish within 4 s" in reasons["wait_at_import.py"]
    assert "sys.exit('usage: exit_at_import.py DATA OUT')" in reasons["exit_at_import.py"]
    assert {f["status"] for f in report["findings"]} == {"unverifiable"}


def test_the_static_pass_and_the_cli_need_no_torch():
    blocked = "import sys; sys.modules['torch'] = None; from nnlint.cli import main; main()"
    static = subprocess.run([sys.executable, "-c", blocked, "buggy_vit"], cwd=FIXTURES, capture_output=True, text=True)
    assert static.returncode == 1 and "NN301" in static.stdout, static.stderr
    confirm = subprocess.run([sys.executable, "-c", blocked, "buggy_vit", "--confirm"], cwd=FIXTURES, capture_output=True, text=True)
    assert confirm.returncode == 2 and "nnlint[runtime]" in confirm.stderr


def _confirmation(directory: Path, progress: bool = False):
    """The confirm pass run in-process on `directory`, as `nnlint --confirm` inside it would (for its pass counts)."""
    from nnlint.config import find_config, load_settings
    from nnlint.confirm.run import confirm
    from nnlint.discover import FileFinder
    from nnlint.runner import display_path, run

    settings = load_settings(find_config(directory), directory)
    files = FileFinder(settings.root, settings.exclude_spec()).find([directory])
    static = run(files, settings, directory, 1)
    display = {path: display_path(path, directory) for path in files}
    return confirm(static.findings, files, settings, display, progress=progress)


def test_model_wide_probes_judge_weights_the_users_helpers_set(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    report = invoke("confirm/model_wide.py", "--confirm", "--format", "json").json()
    stuck = next(f for f in report["findings"] if f["code"] == "NN201")["evidence"]["parameters"]
    # The hidden layer's units stay interchangeable; the output layer after it learns (its rows see
    # different errors), so one line can hold a stuck weight and a learning one.
    assert stuck == {"hidden.weight": "identical gradient rows", "out.weight": "learns"}


def test_every_fixture_model_stays_within_the_pass_budget():
    from nnlint.confirm.models import PROBE_BATCHES

    budget = 2 * math.ceil(math.log2(PROBE_BATCHES[0])) + 6
    for directory in (FIXTURES, FIXTURES / "confirm" / "causal"):
        confirmation = _confirmation(directory)
        for path, models in confirmation.passes.items():
            for model, passes in models.items():
                assert passes["forward"] + passes["backward"] <= budget, (path, model, confirmation.costs[path][model])
    # A stuck-looking LoRA B behind a zero head is judged again alone: one more pass, and it learns.
    wide = _confirmation(FIXTURES / "confirm")
    assert wide.costs["model_wide.py"]["ZeroStart"]["by_check"]["NN201"] == {"forward": 2, "backward": 2}
    assert wide.costs["model_wide.py"]["ConstantHelperNet"]["by_check"]["NN201"] == {"forward": 1, "backward": 1}
    causal = _confirmation(FIXTURES / "confirm" / "causal").costs["decoder.py"]["LeakyDecoder"]["by_check"]
    assert causal["NN103"] == {"forward": 1, "backward": 1}


def test_progress_names_each_model_as_it_is_probed(capsys):
    _confirmation(FIXTURES / "confirm" / "needs_args", progress=True)
    shown = capsys.readouterr().err
    assert "probing KeywordNet (model.py)" in shown
    assert shown.endswith("\r\x1b[K")  # the line is cleared before the report


def test_a_first_linear_that_rejects_b_f_is_probed_as_a_sequence(confirmed_report):
    tagger = next(f for f in confirmed_report.json()["findings"] if (f["path"], f["line"]) == ("confirm/batch_mixing.py", 91))
    assert "FrameTagger's output for sample" in tagger["evidence"]["summary"]
    assert "float[5, 37, 12]" in tagger["evidence"]["summary"]  # Linear(12) first: (B, 12) rejected, (B, T, 12) taken


def test_blind_spots_say_what_they_read(confirmed_report):
    """The evidence says how a 2-d input was read, what split the heads, and what input was traced."""
    found = {(f["path"].rpartition("/")[2], f["line"]): f["evidence"] for f in confirmed_report.json()["findings"]}
    assert "float[5, 16] read as (batch, features)" in found["batch_stats.py", 16]["summary"]
    heads = found["heads.py", 18]
    assert heads["split_shape"] == [5, 37, 4, 8] and heads["permutation"] == [0, 2, 1, 3]
    assert "reshape(5, 37, 4, 8).transpose(1, 2)" in heads["summary"]
    assert "`self.W1` (16, 32) in its `@` with the input at raw_params.py:16" in found["raw_params.py", 11]["summary"]
    assert "with the random calls before it (first at line 16) replayed" in found["dropouts.py", 17]["summary"]

