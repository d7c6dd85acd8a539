"""`nnlint probe MODULE:CALLABLE` and the `factory` form of `[tool.nnlint.models]`.

Each probe runs the real sandbox (a child process importing torch), a few
seconds per invocation, so the cases share one small project.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from nnlint.config import ConfigError
from nnlint.confirm.settings import model_entries
from nnlint.confirm.safe_load import SafeImporter

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the probe runs models")

NETS = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    LAYERS = 3


    class Clean(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.head = nn.Linear(8, 4)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


    def to_tokens(x):
        b, c = x.shape[:2]
        return x.reshape(b, -1, c)  # reorder: (b, c, h, w) read as (b, h*w, c)


    class Tokens(nn.Module):
        def __init__(self, width=8):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self.mix = nn.Linear(width, width)

        def forward(self, x):
            return self.mix(to_tokens(self.conv(x)))


    class Wide(Tokens):
        def __init__(self, width):
            super().__init__(width)


    class Bag(nn.Module):
        \"\"\"No layer to infer its input from.\"\"\"

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(6, 4))

        def forward(self, x):
            return x @ self.weight


    class NoGrad(Tokens):
        # Refuses gradients: the init probe, which needs them, fails; the others still report.

        def __init__(self):
            super().__init__()
            nn.init.zeros_(self.mix.weight)

        def forward(self, x):
            if torch.is_grad_enabled():
                raise RuntimeError("this model runs under no_grad only")
            return super().forward(x)


    class Noisy(nn.Module):
        def __init__(self, features, p):
            super().__init__()
            self.fc = nn.Linear(features, features)
            self.p = p

        def forward(self, x):
            return F.dropout(self.fc(x), self.p)  # noisy
    """
).lstrip()
REORDER_LINE = next(n for n, line in enumerate(NETS.splitlines(), 1) if "# reorder" in line)
NOISY_LINE = next(n for n, line in enumerate(NETS.splitlines(), 1) if "# noisy" in line)
FACTORY = """
from pkg.nets import Noisy, Tokens


def make_tokens(width, scale=1):
    return Tokens(width * scale)


def make_noisy(features):
    return Noisy(features, p=0.5)
"""
CONFIG = """
[tool.nnlint.models.make_tokens]
args = [4]
kwargs = { scale = 2 }

[tool.nnlint.models.Noisy]
factory = "pkg.factory:make_noisy"
args = [6]
"""


@pytest.fixture
def project(write):
    return write({"pkg/__init__.py": "", "pkg/nets.py": NETS, "pkg/factory.py": FACTORY, "pyproject.toml": CONFIG})


@needs_torch
def test_a_clean_model_has_no_findings_and_exits_0(project, nnlint):
    outcome = nnlint("probe", "pkg.nets:Clean", "--format", "json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["findings"] == [] and outcome.json()["errors"] == []


@needs_torch
def test_a_reorder_no_finding_pointed_at_is_confirmed_at_the_users_line(project, nnlint):
    outcome = nnlint("probe", "pkg.nets:Tokens", "--format", "json")
    assert outcome.exit_code == 1, outcome.stderr
    assert outcome.located() == [("pkg/nets.py", REORDER_LINE, "NN101")]
    [finding] = outcome.json()["findings"]
    assert finding["status"] == "confirmed"
    assert finding["evidence"]["permutation"] == [0, 2, 3, 1]
    assert finding["evidence"]["summary"] in finding["message"]


@needs_torch
def test_a_probe_the_model_fails_is_an_nn902_and_the_other_probes_still_report(project, nnlint):
    outcome = nnlint("probe", "pkg.nets:NoGrad", "--format", "json")
    assert outcome.exit_code == 1
    assert outcome.located() == [("pkg/nets.py", REORDER_LINE, "NN101")]
    [error] = outcome.json()["errors"]
    assert error["code"] == "NN902" and "stuck constant init probe raised RuntimeError" in error["message"]
    assert "this model runs under no_grad only" in error["message"]


@needs_torch
def test_the_configured_selection_applies_as_in_check(project, nnlint, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.nnlint]\nignore = ["NN101"]\n')
    outcome = nnlint("probe", "pkg.nets:Tokens", "--format", "json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["findings"] == []


@needs_torch
def test_a_factory_is_built_with_the_arguments_of_its_config_entry(project, nnlint):
    outcome = nnlint("probe", "pkg.factory:make_tokens")
    assert outcome.exit_code == 1, outcome.stderr
    # The reorder is in another file than the factory: the probe reports it where it is.
    assert outcome.stdout.startswith(f"pkg/nets.py:{REORDER_LINE}:1: NN101 [confirmed]")
    assert "(5, 8, 37, 29)" in outcome.stdout  # width 4 * scale 2 channels
    assert "make_tokens(4, scale=2) from [tool.nnlint.models.make_tokens]" in outcome.stderr


@needs_torch
def test_a_model_without_a_first_layer_is_probed_on_the_input_its_first_parameter_takes(project, nnlint):
    inferred = nnlint("probe", "pkg.nets:Bag")
    assert inferred.exit_code == 0, inferred.stderr
    assert "input float[5, 6] (from the first parameter its input meets: `self.weight` (6, 4) in its `@`" in inferred.stderr
    given = nnlint("probe", "pkg.nets:Bag", "--input", "float[B,6]", "--format", "json")  # the input given still wins
    assert given.exit_code == 0, given.stderr
    assert given.json()["findings"] == []


@needs_torch
@pytest.mark.parametrize(
    ("target", "complaint"),
    [
        ("pkg.nets", "is not of the form pkg.module:ClassOrFactory"),
        ("nope.nets:Clean", "no module named 'nope'"),
        ("pkg.nets:Missing", "pkg.nets has no attribute 'Missing'"),
        ("pkg.nets:LAYERS", "pkg.nets:LAYERS is not a class or a function that builds a model (its type is int)"),
        ("pkg.nets:Wide", "add [tool.nnlint.models.Wide] with args"),
    ],
)
def test_a_target_that_cannot_be_probed_exits_2_with_a_message(project, nnlint, target, complaint):
    outcome = nnlint("probe", target)
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("nnlint: error:") and complaint in outcome.stderr
    assert "Traceback" not in outcome.stderr and outcome.stdout == ""


@needs_torch
def test_a_src_layout_is_importable_by_its_package_name(write, nnlint):
    write({"pyproject.toml": "[tool.nnlint]\n", "src/pkg/__init__.py": "", "src/pkg/nets.py": NETS})
    outcome = nnlint("probe", "pkg.nets:Tokens", "--format", "json")
    assert outcome.located() == [("src/pkg/nets.py", REORDER_LINE, "NN101")]


RESNET = """
from torch import nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


class ResNet(nn.Module):
    def __init__(self, block, depth, width=8):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.Sequential(*[block(width) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(self.stem(x)).mean(dim=(2, 3))


def resnet_small(num_blocks):
    return ResNet(block, num_blocks)  # local names: not a construction the probe can repeat


def resnet2():
    return ResNet(Block, 2, width=4)
"""


@needs_torch
def test_a_class_passed_by_name_in_the_projects_own_call_is_looked_up_in_the_models_module(write, nnlint):
    write({"pyproject.toml": "[tool.nnlint]\n", "pkg/__init__.py": "", "pkg/resnet.py": RESNET})
    outcome = nnlint("probe", "pkg.resnet:ResNet")
    assert outcome.exit_code == 0, outcome.stderr
    assert "probed ResNet(Block, 2, width=4), as in pkg/resnet.py:28" in outcome.stderr


def test_a_package_installed_in_a_virtualenv_inside_the_project_is_not_loaded_definitions_only(write, tmp_path):
    site = "venv/lib/python3.11/site-packages"
    write({f"{site}/installed/__init__.py": "LOGGER = print('runs')\n", "local.py": "X = 1\n"})
    importer = SafeImporter([tmp_path])
    assert importer.find_spec("installed", [str(tmp_path / site)]) is None  # imported whole, as installed
    assert importer.find_spec("local", [str(tmp_path)]) is not None  # the project's own: definitions only


@needs_torch
def test_a_crash_while_probing_is_an_nn902(write, nnlint):
    write(
        {
            "crash.py": """
            import ctypes
            from torch import nn

            class Crashing(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(4, 4)

                def forward(self, x):
                    ctypes.string_at(0)
                    return self.fc(x)
            """
        }
    )
    outcome = nnlint("probe", "crash:Crashing", "--format", "json")
    assert outcome.exit_code == 1
    [error] = outcome.json()["errors"]
    assert error["code"] == "NN902" and "SIGSEGV" in error["message"]


@needs_torch
def test_check_confirm_builds_a_model_with_its_configured_factory(project, tmp_path):
    from nnlint.config import find_config, load_settings
    from nnlint.confirm.run import confirm
    from nnlint.discover import FileFinder
    from nnlint.runner import display_path, run

    settings = load_settings(find_config(tmp_path), tmp_path)
    files = FileFinder(settings.root, settings.exclude_spec()).find([tmp_path / "pkg" / "nets.py"])
    static = run(files, settings, tmp_path, 1)
    confirmation = confirm(static.findings, files, settings, {path: display_path(path, tmp_path) for path in files})
    noisy = next(f for f in confirmation.findings if f.line == NOISY_LINE)
    assert (noisy.code, noisy.status) == ("NN301", "confirmed"), noisy.message  # Noisy(features, p) needs arguments
    # The passes of every check add up to the model's total.
    costs = confirmation.costs["pkg/nets.py"]["Noisy"]
    assert costs["by_check"]["NN301"] == {"forward": 2, "backward": 0}
    assert costs["fit_forwards"] >= 1
    for kind in ("forward", "backward"):
        total = sum(passes[kind] for passes in costs["by_check"].values())
        assert total == confirmation.passes["pkg/nets.py"]["Noisy"][kind]


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"kwarg": {"width": 2}}, "unknown key(s) kwarg"),
        ({"args": 3}, "`args` must be a list"),
        ({"kwargs": [1]}, "`kwargs` must be a table"),
        ({"factory": "pkg.factory.make"}, 'factory = "pkg.factory.make" is not of the form'),
        ({"factory": 7}, "`factory` must be a str"),
    ],
)
def test_model_entries_are_checked(entry, complaint):
    with pytest.raises(ConfigError) as error:
        model_entries({"Net": entry})
    assert complaint in str(error.value) and "[tool.nnlint.models.Net]" in str(error.value)


@needs_torch  # --confirm asks for torch before reading the config's models
def test_a_factory_entry_with_a_bad_form_stops_the_confirm_pass_with_exit_2(write, nnlint):
    write({"net.py": NETS, "pyproject.toml": '[tool.nnlint.models.Tokens]\nfactory = "make_tokens"\n'})
    outcome = nnlint("--confirm", "net.py")
    assert outcome.exit_code == 2
    assert 'factory = "make_tokens" is not of the form "pkg.module:make_model"' in outcome.stderr


def test_probe_without_torch_says_what_to_install(tmp_path):
    blocked = "import sys; sys.modules['torch'] = None; from nnlint.cli import main; main()"
    command = [sys.executable, "-c", blocked, "probe", "pkg.nets:Clean"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "nnlint[runtime]" in done.stderr, done.stderr
