"""`[tool.nnlint]` in the nearest pyproject.toml, merged with command-line options.

The command line is applied on top of the file, as in ruff: `--select`
replaces the configured selection (its ignores included); `--ignore` and
`--extend-select` adjust the configured result, so `--extend-select NN301`
turns on a rule the file ignores. Unknown keys and unknown rule codes are
errors: a typo must not silently switch a rule off.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pathspec

from nnlint.confirm.settings import ConfirmSettings, model_entries
from nnlint.errors import ConfigError  # raised here, and imported from here by the CLI
from nnlint.registry import RuleInfo, rule_infos

DEFAULT_MAX_FILE_SIZE = 2_000_000
KNOWN_KEYS = {
    "select", "ignore", "extend-select", "per-file-ignores", "exclude", "max-file-size", "confirm", "models",
}  # fmt: skip


@dataclass
class Selection:
    """Rule selectors from one source (the config file or the command line)."""

    select: list[str] | None = None
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)


@dataclass
class Settings:
    root: Path
    config_file: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    extend_select: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    confirm: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    # Applied after the config file's selectors, so that the command line wins.
    command_line: Selection = field(default_factory=Selection)

    def selected_rules(self) -> list[RuleInfo]:
        return select_rules([Selection(self.select, self.extend_select, self.ignore), self.command_line])

    def exclude_spec(self) -> pathspec.PathSpec:
        return pathspec.GitIgnoreSpec.from_lines(self.exclude)

    def rules_for(self, relative_path: str, selected: list[RuleInfo]) -> list[RuleInfo]:
        """The selected rules minus those `per-file-ignores` switches off for this path."""
        ignored: list[str] = []
        for pattern, codes in self.per_file_ignores.items():
            if _glob(pattern).match_file(relative_path):
                ignored.extend(codes)
        if not ignored:
            return selected
        return [rule for rule in selected if not any(rule.code.startswith(prefix) for prefix in ignored)]


@cache
def _glob(pattern: str) -> pathspec.PathSpec:
    return pathspec.GitIgnoreSpec.from_lines([pattern])


def validate_selectors(selectors: list[str], where: str) -> list[str]:
    """Upper-cased selectors; raises ConfigError for one that matches no rule."""
    codes = [rule.code for rule in rule_infos()]
    cleaned = []
    for selector in selectors:
        upper = str(selector).strip().upper()
        if upper != "ALL" and not any(code.startswith(upper) for code in codes):
            raise ConfigError(f"{where}: unknown rule code or prefix {selector!r} (see `nnlint rules`)")
        cleaned.append(upper)
    return cleaned


def select_rules(layers: list[Selection]) -> list[RuleInfo]:
    """ruff's resolution, layer by layer: the config file's selectors, then the command line's.

    Within a layer the most specific matching selector decides each rule it
    names, and `ignore` wins ties. A layer with `select` replaces the selection
    so far; a layer without one adjusts it. Before the first layer the
    selection is every rule not marked off-by-default.
    """

    def specificity(selectors: list[str], code: str) -> int:
        lengths = [0 if s == "ALL" else len(s) for s in selectors if s == "ALL" or code.startswith(s)]
        return max(lengths, default=-1)

    rules = rule_infos()
    chosen = {rule.code for rule in rules if rule.default_enabled}
    for layer in layers:
        if layer.select is not None:
            chosen = set()
        for rule in rules:
            on = specificity((layer.select or []) + layer.extend_select, rule.code)
            off = specificity(layer.ignore, rule.code)
            if on > off:
                chosen.add(rule.code)
            elif off >= 0:
                chosen.discard(rule.code)
    return [rule for rule in rules if rule.code in chosen]


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.nnlint] table, from `start` upwards."""
    for directory in [start, *start.parents]:
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and "nnlint" in _read_toml(candidate).get("tool", {}):
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None


def _string_list(table: dict[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: `{key}` must be a list of strings")
    return value


def load_settings(config_file: Path | None, cwd: Path) -> Settings:
    """Settings from a config file (or the defaults, rooted at cwd, when there is none)."""
    if config_file is None:
        return Settings(root=cwd)
    table = _read_toml(config_file).get("tool", {}).get("nnlint", {})
    where = f"{config_file} [tool.nnlint]"
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{where}: `per-file-ignores` must be a table of glob = [codes]")
    max_size = table.get("max-file-size", DEFAULT_MAX_FILE_SIZE)
    if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size <= 0:
        raise ConfigError(f"{where}: `max-file-size` must be a positive number of bytes")
    for key in ("confirm", "models"):
        if not isinstance(table.get(key, {}), dict):
            raise ConfigError(f"{where}: `{key}` must be a table ([tool.nnlint.{key}])")
    try:
        ConfirmSettings.from_table(table.get("confirm", {}))
        model_entries(table.get("models", {}))
    except ConfigError as error:
        raise ConfigError(f"{config_file} {error}") from None
    return Settings(
        root=config_file.parent,
        config_file=config_file,
        select=validate_selectors(_string_list(table, "select", where), where) if "select" in table else None,
        ignore=validate_selectors(_string_list(table, "ignore", where), where),
        extend_select=validate_selectors(_string_list(table, "extend-select", where), where),
        per_file_ignores={
            glob: validate_selectors(_string_list(per_file, glob, where), where) for glob in per_file
        },
        exclude=_string_list(table, "exclude", where),
        max_file_size=max_size,
        confirm=table.get("confirm", {}),
        models=table.get("models", {}),
    )
