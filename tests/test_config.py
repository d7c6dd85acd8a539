"""`[tool.nnlint]` in the nearest pyproject.toml, and the command line on top of it."""

from __future__ import annotations

import pytest
from conftest import BUGGY_LINE, BUGGY_NET


def test_the_nearest_pyproject_with_a_nnlint_table_applies(nnlint, write, tmp_path, monkeypatch):
    write({
        "pyproject.toml": '[tool.nnlint]\nignore = ["NN301"]\n',
        "app/pyproject.toml": '[project]\nname = "app"\n',  # no [tool.nnlint]: keep looking upwards
        "app/net.py": BUGGY_NET,
        "lib/pyproject.toml": "[tool.nnlint]\n",  # an empty table is a config: the defaults
        "lib/net.py": BUGGY_NET,
    })  # fmt: skip
    assert nnlint("app", "--format", "json").located() == []
    assert nnlint("lib", "--format", "json").located() == [("lib/net.py", BUGGY_LINE, "NN301")]
    # The search starts at the first path, not at the current directory.
    monkeypatch.chdir(tmp_path / "lib")
    assert nnlint("../app/net.py", "--format", "json").located() == []


def test_config_extend_select_adds_to_select(nnlint, write):
    write({"pyproject.toml": '[tool.nnlint]\nselect = []\nextend-select = ["NN301"]\n', "net.py": BUGGY_NET})
    assert nnlint(".", "--format", "json").located() == [("net.py", BUGGY_LINE, "NN301")]


def test_config_select_replaces_the_default_set(nnlint, write):
    write({"pyproject.toml": '[tool.nnlint]\nselect = []\n', "net.py": BUGGY_NET})
    assert nnlint(".", "--format", "json").located() == []
    assert nnlint(".", "--format", "json", "--extend-select", "NN3").located() == [("net.py", BUGGY_LINE, "NN301")]


@pytest.mark.parametrize(
    ("config", "args", "reported"),
    [
        ('ignore = ["NN301"]', [], False),
        ('ignore = ["NN3"]', ["--select", "NN301"], True),
        # The command line wins over the file even at equal specificity (as in ruff).
        ('ignore = ["NN301"]', ["--select", "NN301"], True),
        ('ignore = ["NN301"]', ["--extend-select", "NN301"], True),
        ('select = ["NN301"]', ["--ignore", "NN301"], False),
        ('select = ["NN301"]', ["--ignore", "NN3"], False),
        ('extend-select = ["NN301"]\nignore = ["NN3"]', [], True),
    ],
)
def test_command_line_overrides_config(nnlint, write, config, args, reported):
    write({"pyproject.toml": f"[tool.nnlint]\n{config}\n", "net.py": BUGGY_NET})
    outcome = nnlint(".", "--format", "json", *args)
    assert outcome.located() == ([("net.py", BUGGY_LINE, "NN301")] if reported else [])


def test_per_file_ignores(nnlint, write):
    write({
        "pyproject.toml": '[tool.nnlint.per-file-ignores]\n"tests/**" = ["NN3"]\n"*_mc.py" = ["NN301"]\n',
        "tests/test_net.py": BUGGY_NET,
        "src/net_mc.py": BUGGY_NET,
        "src/net.py": BUGGY_NET,
    })  # fmt: skip
    assert nnlint(".", "--format", "json").located() == [("src/net.py", BUGGY_LINE, "NN301")]


def test_exclude_is_relative_to_the_config_file_but_a_named_file_is_linted(nnlint, write, tmp_path, monkeypatch):
    write({
        "pyproject.toml": '[tool.nnlint]\nexclude = ["generated/", "*_pb2.py"]\n',
        "generated/net.py": BUGGY_NET,
        "src/model_pb2.py": BUGGY_NET,
        "src/net.py": BUGGY_NET,
    })  # fmt: skip
    assert nnlint(".", "--format", "json").located() == [("src/net.py", BUGGY_LINE, "NN301")]
    monkeypatch.chdir(tmp_path / "src")
    assert nnlint(".", "--format", "json").located() == [("net.py", BUGGY_LINE, "NN301")]
    assert nnlint("model_pb2.py", "--format", "json").located() == [("model_pb2.py", BUGGY_LINE, "NN301")]


def test_max_file_size(nnlint, write):
    small = BUGGY_NET
    large = BUGGY_NET + "# padding\n" * 20
    write({"pyproject.toml": f"[tool.nnlint]\nmax-file-size = {len(small)}\n", "small.py": small, "large.py": large})
    report = nnlint(".", "--format", "json").json()
    assert [(f["path"], f["line"]) for f in report["findings"]] == [("small.py", BUGGY_LINE)]
    assert report["errors"] == [
        {"path": "large.py", "code": "NN901", "message": f"not linted: the file is larger than max-file-size ({len(small)} bytes)"}
    ]


def test_explicit_config_file(nnlint, write):
    write({"ci/nnlint.toml": '[tool.nnlint]\nignore = ["NN301"]\n', "net.py": BUGGY_NET})
    assert nnlint(".", "--format", "json").located() == [("net.py", BUGGY_LINE, "NN301")]
    assert nnlint(".", "--format", "json", "--config", "ci/nnlint.toml").located() == []


@pytest.mark.parametrize(
    ("toml", "complaint"),
    [
        ("[tool.nnlint]\nselekt = ['NN301']\n", "unknown key(s) selekt"),
        ("[tool.nnlint]\nselect = ['NN399']\n", "unknown rule code or prefix 'NN399'"),
        ("[tool.nnlint]\nignore = ['NN301', 'F401']\n", "unknown rule code or prefix 'F401'"),
        ("[tool.nnlint.per-file-ignores]\n'tests/*' = ['NN9000']\n", "'NN9000'"),
        ("[tool.nnlint]\nper-file-ignores = ['NN301']\n", "`per-file-ignores` must be a table"),
        ("[tool.nnlint]\nexclude = 'build'\n", "`exclude` must be a list of strings"),
        ("[tool.nnlint]\nmax-file-size = '2MB'\n", "`max-file-size` must be a positive number"),
        ("[tool.nnlint]\nmax-file-size = 0\n", "`max-file-size` must be a positive number"),
        ("[tool.nnlint\nselect = ['NN301']\n", "invalid TOML"),
        # The confirm pass's settings are checked by every run, not only once --confirm uses them.
        ("[tool.nnlint.confirm]\ntimout = 3\n", "[tool.nnlint.confirm]: unknown key(s) timout"),
        ("[tool.nnlint.models.Net]\nargs = 3\n", "[tool.nnlint.models.Net]: `args` must be a list"),
        ("[tool.nnlint]\nconfirm = 3\n", "`confirm` must be a table"),
    ],
)
def test_bad_config_is_a_usage_error_that_names_the_file(nnlint, write, toml, complaint):
    write({"pyproject.toml": toml, "net.py": BUGGY_NET})
    outcome = nnlint(".")
    assert outcome.exit_code == 2
    assert complaint in outcome.stderr
    assert "pyproject.toml" in outcome.stderr
    assert "Traceback" not in outcome.stderr and outcome.stdout == ""

