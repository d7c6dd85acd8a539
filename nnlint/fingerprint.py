"""What identifies the nnlint that computed a cached result: only the same one may reuse it.

The version alone is not enough: in a checkout installed in editable mode the rules change while the
version does not, so the fingerprint also hashes nnlint's own source files, the rules included (about
1 MB: a few milliseconds). Python's version is in it (CPython's parser checks every file's syntax),
and so is libcst's installation (its parser's file times: a reinstall or upgrade changes them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import nnlint


def _source_folders() -> list[Path]:
    """nnlint's package and its rules (installed as nnlint.rules, kept in `rules/` in a checkout)."""
    rules = importlib.util.find_spec("nnlint.rules")
    package = Path(nnlint.__file__).parent
    elsewhere = [Path(location) for location in (rules.submodule_search_locations or [])] if rules else []
    return [package, *(folder for folder in elsewhere if not folder.is_relative_to(package))]


def _python_files(folder: Path) -> list[Path]:
    found = []
    for parent, directories, names in os.walk(folder):
        directories[:] = [name for name in directories if name != "__pycache__"]
        found += [Path(parent, name) for name in names if name.endswith(".py")]
    return found


def _libcst_installation() -> str:
    spec = importlib.util.find_spec("libcst")
    if spec is None or spec.origin is None:
        return "no libcst"
    stat = os.stat(spec.origin)
    return f"{spec.origin} {stat.st_mtime_ns} {stat.st_size}"


def fingerprint() -> str:
    """A digest of nnlint's version and sources, Python's version and libcst's installation."""
    digest = hashlib.sha256(f"{nnlint.__version__}\n{sys.version}\n{_libcst_installation()}\n".encode())
    for path in sorted(path for folder in _source_folders() for path in _python_files(folder)):
        digest.update(f"\n{path.name} {path.stat().st_size}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
