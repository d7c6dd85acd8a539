"""NN103 with `causal = "strict"`: output t may see inputs before t only (MADE, PixelCNN, WaveNet).

fixtures/confirm/causal/wavenet.py holds a WaveNet whose first conv is shifted
one step (correct under strict) and the same model without the shift (correct
as a next-step model, a leak under strict). Each `--confirm` run takes a few
seconds (the sandbox imports torch), so each project is confirmed once.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

import pytest
from conftest import invoke

from nnlint.config import ConfigError
from nnlint.confirm.settings import model_entries

CAUSAL = Path(__file__).resolve().parent.parent / "fixtures" / "confirm" / "causal"
WAVENET_FORWARD = 24  # the subclass inherits WaveNet.forward: findings are reported there


def _confirm(directory: Path):
    with contextlib.chdir(directory):
        outcome = invoke("--confirm", ".", "--show-refuted", "--format", "json")
    assert outcome.exit_code in (0, 1), outcome.stderr
    return outcome.json()


@pytest.fixture(scope="module")
def causal_fixtures():
    pytest.importorskip("torch")
    return _confirm(CAUSAL)


def test_strict_model_that_sees_its_own_step_is_confirmed_naming_the_step(causal_fixtures):
    [leak] = [f for f in causal_fixtures["findings"] if f["evidence"].get("model") == "UnshiftedWaveNet"]
    assert (leak["code"], leak["path"], leak["line"], leak["status"]) == (
        "NN103", "wavenet.py", WAVENET_FORWARD, "confirmed"
    )  # fmt: skip
    evidence = leak["evidence"]
    step = evidence["output_step"]
    assert evidence["input_step"] == step and evidence["causal"] == "strict"
    assert f"output at step {step} sees step {step} itself" in evidence["summary"]
    assert 'causal = "strict": output t may see inputs before t only' in evidence["summary"]
    steps = int(re.fullmatch(r"float\[(\d+), 4, (\d+)\]", evidence["input"])[2])
    assert f"{steps} of {steps} input steps" in evidence["summary"]  # every step sees itself, the first too
    assert leak["message"].startswith(
        'UnshiftedWaveNet is declared causal = "strict", but its output at a step sees that step\'s input'
    )


def test_next_step_models_are_judged_as_before_beside_strict_ones(causal_fixtures):
    """The decoders stay under `causal = true`: the leaky one is confirmed, naming that setting."""
    models = sorted(f["evidence"]["model"] for f in causal_fixtures["findings"])
    assert models == ["LeakyDecoder", "UnshiftedWaveNet"]
    [decoder] = [f for f in causal_fixtures["findings"] if f["evidence"]["model"] == "LeakyDecoder"]
    assert decoder["evidence"]["causal"] is True
    assert "(causal = true: output t may see inputs up to t)" in decoder["evidence"]["summary"]


def test_shifted_wavenet_is_clean_under_strict_and_unshifted_one_under_true(tmp_path):
    pytest.importorskip("torch")
    shutil.copy(CAUSAL / "wavenet.py", tmp_path)
    config = '[tool.nnlint.models.WaveNet]\ncausal = "strict"\n\n[tool.nnlint.models.UnshiftedWaveNet]\ncausal = true\n'
    (tmp_path / "pyproject.toml").write_text(config)
    assert _confirm(tmp_path)["findings"] == []


def test_the_strict_check_costs_one_forward_and_one_backward():
    pytest.importorskip("torch")
    from nnlint.config import find_config, load_settings
    from nnlint.confirm.run import confirm
    from nnlint.discover import FileFinder
    from nnlint.runner import display_path, run

    settings = load_settings(find_config(CAUSAL), CAUSAL)
    files = FileFinder(settings.root, settings.exclude_spec()).find([CAUSAL / "wavenet.py"])
    result = run(files, settings, CAUSAL, 1)
    display = {path: display_path(path, CAUSAL) for path in files}
    costs = confirm(result.findings, files, settings, display).costs["wavenet.py"]
    for model in ("WaveNet", "UnshiftedWaveNet"):
        assert costs[model]["by_check"]["NN103"] == {"forward": 1, "backward": 1}, model


@pytest.mark.parametrize("value", ['"Strict"', '"yes"', "1", '["strict"]'])
def test_causal_accepts_true_false_or_strict_only(value, tmp_path):
    pytest.importorskip("torch")  # --confirm asks for torch before reading the models
    (tmp_path / "pyproject.toml").write_text(f"[tool.nnlint.models.WaveNet]\ncausal = {value}\n")
    shutil.copy(CAUSAL / "wavenet.py", tmp_path)
    with contextlib.chdir(tmp_path):
        outcome = invoke("--confirm", ".")
    assert outcome.exit_code == 2
    assert '[tool.nnlint.models.WaveNet]: `causal` must be true, false or "strict"' in outcome.stderr


@pytest.mark.parametrize("value", [True, False, "strict"])
def test_the_three_settings_are_accepted(value):
    assert model_entries({"WaveNet": {"causal": value}}) == {"WaveNet": {"causal": value}}


def test_a_near_miss_is_refused_with_the_accepted_values():
    with pytest.raises(ConfigError, match=r'`causal` must be true, false or "strict", not \'strict \''):
        model_entries({"WaveNet": {"causal": "strict "}})
