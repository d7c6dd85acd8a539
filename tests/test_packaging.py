"""The wheel must ship every package of the source tree (the rules and the confirm pass included)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_for_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {package: Path(directory) for package, directory in config.get("package-dir", {}).items()}
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "nnlint").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    on_disk |= set(mapped)
    assert on_disk == listed
    for package, directory in mapped.items():
        assert (ROOT / directory / "__init__.py").is_file(), package
