"""Imports of packages that are not installed get stand-ins in the confirm pass (nnlint.confirm.safe_load):
a model that never uses them is probed as usual; one that does is an NN902 naming the package and the line."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from conftest import invoke

from nnlint.confirm import safe_load
from nnlint.confirm.safe_load import MissingModuleUsed, _guarded_import, _stand_in, _StandInFinder, loading_user_modules

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PACKAGE = "not_installed_pkg_xyz"
pytest.importorskip("torch")


def confirm_project(directory: Path, files: dict[str, str]) -> dict:
    """`nnlint --confirm --format json` on the files written in `directory`, a project of its own."""
    (directory / "pyproject.toml").write_text("[tool.nnlint]\n")
    for name, text in files.items():
        (directory / name).write_text(text)
    previous = Path.cwd()
    try:
        os.chdir(directory)
        return invoke(*files, "--confirm", "--format", "json").json()
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def report():
    previous = Path.cwd()
    try:
        os.chdir(FIXTURES)
        return invoke("confirm/missing_imports", "--confirm", "--show-refuted", "--format", "json").json()
    finally:
        os.chdir(previous)


def test_a_model_that_never_uses_the_missing_package_is_probed_and_says_what_was_stood_in(report):
    found = {(f["path"], f["line"], f["code"]): f for f in report["findings"]}
    assert {key: f["status"] for key, f in found.items()} == {
        ("confirm/missing_imports/plain_model.py", 36, "NN301"): "confirmed",
        ("confirm/missing_imports/uses_missing.py", 15, "NN301"): "unverifiable",
        ("confirm/missing_imports/backends/not_installed_pkg_xyz.py", 16, "NN301"): "confirmed",
        ("confirm/missing_imports/project_module.py", 16, "NN301"): "confirmed",
    }
    evidence = found["confirm/missing_imports/plain_model.py", 36, "NN301"]["evidence"]
    # the optional import inside `try: ... except ImportError:` keeps its own fallback: not stood in
    assert evidence["stand_ins"] == [PACKAGE]
    assert evidence["model"] == "Net"
    assert evidence["summary"].endswith(f"(stand-ins for `{PACKAGE}`: not installed)")


def test_a_model_that_uses_the_missing_package_is_an_nn902_naming_it_and_the_line(report):
    errors = {e["path"]: e for e in report["errors"]}
    assert {path: e["code"] for path, e in errors.items()} == {
        "confirm/missing_imports/uses_missing.py": "NN902",
    }
    uses = errors["confirm/missing_imports/uses_missing.py"]["reason"]
    assert uses == (
        f"model Backbone needs `{PACKAGE}` (not installed), used at uses_missing.py:12 (`{PACKAGE}.models`); "
        f"model Scaled needs `{PACKAGE}` (not installed), used at uses_missing.py:24 (`{PACKAGE}.SCALE`)"
    )
    unverifiable = next(f for f in report["findings"] if f["path"].endswith("uses_missing.py"))
    assert f"model Backbone needs `{PACKAGE}` (not installed), used at uses_missing.py:12" in unverifiable["evidence"]["summary"]


def test_a_module_of_the_project_not_importable_from_here_is_loaded_from_where_it_lies(report):
    # project_module.py imports vendored/shared_layers_xyz.py as `shared_layers_xyz`: not a stand-in
    head = next(f for f in report["findings"] if f["path"].endswith("project_module.py"))
    assert head["status"] == "confirmed" and head["evidence"]["model"] == "Head"
    assert "shared_layers_xyz" not in head["evidence"].get("stand_ins", [])


def test_a_module_of_the_project_found_in_several_places_elsewhere_stays_an_import_error(tmp_path, monkeypatch):
    here = Path(__file__).resolve().parent
    for place in ("a", "b"):
        (tmp_path / place).mkdir()
        (tmp_path / place / "helpers_xyz.py").write_text("")
    monkeypatch.setattr(_StandInFinder, "roots", [here])
    monkeypatch.setattr(_StandInFinder, "project_names", {"helpers_xyz": {tmp_path / "a", tmp_path / "b"}})
    assert _StandInFinder().find_spec("helpers_xyz") is None
    monkeypatch.setattr(_StandInFinder, "project_names", {"helpers_xyz": {tmp_path / "a"}})
    assert _StandInFinder().find_spec("helpers_xyz").origin == str(tmp_path / "a" / "helpers_xyz.py")


def test_a_module_inside_a_package_does_not_shadow_the_package_it_is_named_after(report):
    # backends/not_installed_pkg_xyz.py (d2l's d2l/jax.py) imports the package it is named after
    wrapped = next(f for f in report["findings"] if f["path"].endswith("backends/not_installed_pkg_xyz.py"))
    assert wrapped["status"] == "confirmed" and wrapped["evidence"]["stand_ins"] == [PACKAGE]
    names = safe_load._top_level_names(FIXTURES / "confirm/missing_imports/backends/not_installed_pkg_xyz.py", FIXTURES)
    assert [name for name, _ in names] == ["backends"]  # not `not_installed_pkg_xyz`: backends/ is a package
    # a directory of scripts named after a package (ignite's examples/transformers/) does not shadow it either
    [(name, _)] = safe_load._top_level_names(FIXTURES / "confirm/missing_imports/plain_model.py", FIXTURES)
    assert name == "plain_model"


def test_stats_count_the_files_probed_and_the_models_found_built_and_probed(report):
    # 4 files probed; 5 model classes (Net, Head, Backbone, Scaled, Wrapped); Net, Head and Wrapped built
    # and probed; Backbone and Scaled use the missing package
    assert report["stats"]["confirm"] == {"files": 4, "models": 5, "built": 3, "probed": 3}


def test_an_installed_module_that_needs_a_missing_package_is_stood_in_naming_that_package(tmp_path):
    """`from torch.utils.tensorboard import SummaryWriter` without tensorboard installed: the import
    fails inside torch; a model that never writes a log is probed, one that builds a writer is an NN902."""
    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed here")
    model = (
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        "from torch.utils.tensorboard import SummaryWriter\n"
        "\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(16, 4)\n"
        "\n"
        "    def forward(self, x):\n"
        "        return F.dropout(self.fc(x), 0.5)\n"
        "\n\n"
        "class Logged(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.writer = SummaryWriter()\n"
        "        self.fc = nn.Linear(16, 4)\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
    )
    report = confirm_project(tmp_path, {"model.py": model})
    [finding] = report["findings"]
    assert (finding["line"], finding["code"], finding["status"]) == (12, "NN301", "confirmed")
    assert finding["evidence"]["stand_ins"] == ["tensorboard"]
    [error] = report["errors"]
    assert error["reason"] == (
        "model Logged needs `tensorboard` (not installed), used at model.py:18 (`torch.utils.tensorboard.SummaryWriter`)"
    )
    assert report["stats"]["confirm"] == {"files": 1, "models": 2, "built": 1, "probed": 1}


def test_a_stand_in_can_be_named_and_subclassed_but_not_used():
    with loading_user_modules():
        mnist = _stand_in(f"{PACKAGE}.datasets").MNIST
        assert mnist.__name__ == "MNIST"

        class Digits(mnist):  # a base class while the file loads
            pass

        assert _stand_in(f"{PACKAGE}.datasets").MNIST is mnist  # one stand-in per name
    for use in (lambda: Digits(), lambda: mnist("root"), lambda: isinstance(1, mnist), lambda: list(mnist),
                lambda: mnist * 2, lambda: 2.0 + mnist, lambda: mnist.train):  # fmt: skip
        with pytest.raises(MissingModuleUsed) as raised:
            use()
        assert raised.value.module == PACKAGE
    with pytest.raises(AttributeError):
        mnist.__wrapped__  # noqa: B018 (introspection sees a plain class)


def test_only_the_projects_own_unguarded_imports_of_a_missing_top_level_package_get_a_stand_in(tmp_path, monkeypatch):
    here = Path(__file__).resolve().parent
    finder = _StandInFinder()
    monkeypatch.setattr(_StandInFinder, "project_names", {"my_helpers": {tmp_path / "elsewhere"}})
    monkeypatch.setattr(safe_load, "STOOD_IN", [])
    monkeypatch.setattr(_StandInFinder, "roots", [tmp_path])  # the importer (this file) is not the project's
    assert finder.find_spec(PACKAGE) is None  # torch's or an installed package's optional import
    monkeypatch.setattr(_StandInFinder, "roots", [here])
    assert finder.find_spec("torch") is None
    assert finder.find_spec("torchvision_like.sub") is None  # a submodule missing from a package that exists
    assert finder.find_spec("my_helpers") is None  # the project's own module
    assert finder.find_spec(PACKAGE).name == PACKAGE
    assert finder.find_spec(f"{PACKAGE}.datasets").name == f"{PACKAGE}.datasets"  # its submodules too
    assert safe_load.STOOD_IN == [PACKAGE]


def test_an_import_guarded_by_except_import_error_is_left_to_fail(tmp_path):
    source = tmp_path / "train.py"
    source.write_text("try:\n    import apex\nexcept ImportError:\n    apex = None\nimport numpy\n")
    assert _guarded_import(str(source), 2)
    assert not _guarded_import(str(source), 5)


def test_what_a_model_file_imports_or_computes_at_load_time_is_run_on_demand_or_stood_in(tmp_path):
    """`from config import opt` runs the skipped `opt = Config()`; a value computed from a stand-in is a
    stand-in: the class that only stores it is built, the one that uses it is an NN902 naming the package."""
    config = (
        f"from {PACKAGE}.version import Version\n"
        "\n\n"
        "class Config:\n"
        "    width = 16\n"
        "\n\n"
        "opt = Config()\n"
        "NEW_TORCH = Version('2.13') > Version('1.12')\n"  # imported by model.py: a stand-in, unused
    )
    model = (
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        f"import {PACKAGE} as tv\n"
        "from config import NEW_TORCH, opt\n"
        "\n"
        "MODES = list(tv.InterpolationMode)\n"
        "\n\n"
        "class Crop(nn.Module):\n"
        "    modes = MODES\n"
        "\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(opt.width, 4)\n"
        "\n"
        "    def forward(self, x):\n"
        "        return F.dropout(self.fc(x), 0.5)\n"
        "\n\n"
        "class UsesModes(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(16, len(MODES))\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
    )
    report = confirm_project(tmp_path, {"config.py": config, "model.py": model})
    [finding] = report["findings"]
    assert (finding["line"], finding["code"], finding["status"]) == (17, "NN301", "confirmed")
    assert finding["evidence"]["model"] == "Crop" and "float[5, 16]" in finding["evidence"]["summary"]
    [error] = report["errors"]
    assert error["reason"] == (
        f"model UsesModes needs `{PACKAGE}` (not installed), used at model.py:23 (`{PACKAGE}.InterpolationMode`)"
    )


def test_a_constructor_call_whose_arguments_come_from_a_missing_package_is_not_used_to_build(tmp_path):
    """`NBoW(300, PAD)` with `PAD = vocab["<pad>"]` of a torchtext vocabulary (bentrevett's notebooks):
    the model itself needs nothing missing, so no NN902; the call gives it no usable arguments, so it is
    not built, as when the project passes names nnlint cannot see."""
    model = (
        "from torch import nn\n"
        f"import {PACKAGE} as torchtext\n"
        "\n"
        "vocab = torchtext.vocab.build_vocab_from_iterator([])\n"
        "PAD = vocab['<pad>']\n"
        "\n\n"
        "class NBoW(nn.Module):\n"
        "    def __init__(self, dim, pad_index):\n"
        "        super().__init__()\n"
        "        self.embedding = nn.Embedding(1000, dim, padding_idx=pad_index)\n"
        "\n"
        "    def forward(self, ids):\n"
        "        return self.embedding(ids).mean(dim=1)\n"
        "\n\n"
        "model = NBoW(300, PAD)\n"
    )
    report = confirm_project(tmp_path, {"model.py": model})
    assert report["errors"] == []
    assert report["stats"]["confirm"] == {"files": 1, "models": 1, "built": 0, "probed": 0}
