"""`[tool.nnlint]` in the nearest pyproject.toml, merged with command-line options.

CLI `--select` replaces the configured selection; CLI `--ignore` and
`--extend-select` add to the configured ones (as in ruff). Unknown keys and
unknown rule codes are errors: a typo must not silently switch a rule off.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from nnlint.rule import Rule, all_rules

DEFAULT_MAX_FILE_SIZE = 2_000_000
KNOWN_KEYS = {
    "select", "ignore", "extend-select", "per-file-ignores", "exclude", "max-file-size", "confirm", "models",
}  # fmt: skip


class ConfigError(Exception):
    """A problem in the user's configuration or options; reported with exit code 2."""


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

    def selected_rules(self) -> list[type[Rule]]:
        return select_rules(self.select, self.extend_select, self.ignore)

    def exclude_spec(self) -> pathspec.PathSpec:
        return pathspec.PathSpec.from_lines("gitwildmatch", self.exclude)

    def rules_for(self, relative_path: str, selected: list[type[Rule]]) -> list[type[Rule]]:
        """The selected rules minus those `per-file-ignores` switches off for this path."""
        ignored: list[str] = []
        for pattern, codes in self.per_file_ignores.items():
            if pathspec.PathSpec.from_lines("gitwildmatch", [pattern]).match_file(relative_path):
                ignored.extend(codes)
        if not ignored:
            return selected
        return [rule for rule in selected if not any(rule.code.startswith(prefix) for prefix in ignored)]


def validate_selectors(selectors: list[str], where: str) -> list[str]:
    """Upper-cased selectors; raises ConfigError for one that matches no rule."""
    codes = [rule.code for rule in all_rules()]
    cleaned = []
    for selector in selectors:
        upper = str(selector).strip().upper()
        if upper != "ALL" and not any(code.startswith(upper) for code in codes):
            raise ConfigError(f"{where}: unknown rule code or prefix {selector!r} (see `nnlint rules`)")
        cleaned.append(upper)
    return cleaned


def select_rules(select: list[str] | None, extend_select: list[str], ignore: list[str]) -> list[type[Rule]]:
    """ruff's resolution: for each rule the most specific matching selector decides; ignore wins ties.

    With no `select`, the default set is every rule not marked off-by-default.
    """

    def specificity(selectors: list[str], code: str) -> int:
        lengths = [0 if s == "ALL" else len(s) for s in selectors if s == "ALL" or code.startswith(s)]
        return max(lengths, default=-1)

    chosen = []
    for rule in all_rules():
        on = specificity((select or []) + extend_select, rule.code)
        if select is None and rule.default_enabled:
            on = max(on, 0)
        if on >= 0 and on > specificity(ignore, rule.code):
            chosen.append(rule)
    return chosen


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
